// A campaign worker: runs bad-input cases one after another through the public API of the compiled
// library (dist/) and reports each outcome over IPC. The parent (run.ts) watches the process: a
// case during which this process dies is a crash, one that does not report in time a hang.
// Cases arrive as { id, kind, ... } messages; results go back as { id, outcome, code, message }.
import { readFileSync, readdirSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const DIST = process.env.LLAVA_MED_DIST;
const lib = await import(`${DIST}/index.js`);
const engine = await import(`${DIST}/engine/index.js`);
const convert = await import(`${DIST}/convert/index.js`);
const { LlavaMed, LlavaMedError, ErrorCodes } = lib;
const { Model, Projector, Context } = engine;
const codes = new Set(ErrorCodes);

const cache = new Map(); // path -> Model, "med:<model>|<mmproj>" -> LlavaMed
async function goodModel(path) {
  if (!cache.has(path)) cache.set(path, await Model.load(path));
  return cache.get(path);
}
async function med(model, mmproj) {
  const key = `med:${model}|${mmproj}`;
  if (!cache.has(key)) cache.set(key, await LlavaMed.load({ model, mmproj, threads: 1, contextSize: 256 }));
  return cache.get(key);
}

/** A 3-channel image of the encoder's size with seeded content. */
function pixels(n) {
  const a = new Uint8Array(n * n * 3);
  for (let i = 0; i < a.length; i++) a[i] = (i * 37 + 11) & 255;
  return a;
}

/** Builds the image argument a case describes (raw objects cannot cross IPC: they are described). */
function imageArg(spec) {
  if (spec.path !== undefined) return spec.path;
  if (spec.file !== undefined) return readFileSync(spec.file);
  if (spec.raw !== undefined) {
    const r = spec.raw;
    const make = (kind, len) => {
      switch (kind) {
        case 'buffer': return Buffer.alloc(len, 127);
        case 'uint8': return new Uint8Array(len).fill(90);
        case 'clamped': return new Uint8ClampedArray(len);
        case 'float32': return new Float32Array(len);
        case 'uint16': return new Uint16Array(len);
        case 'array': return Array.from({ length: len }, () => 1);
        case 'string': return 'x'.repeat(len);
        case 'null': return null;
        case 'detached': { const a = new Uint8Array(len); structuredClone(a.buffer, { transfer: [a.buffer] }); return a; }
        default: return undefined;
      }
    };
    const o = { width: r.width, height: r.height, channels: r.channels, data: make(r.data, r.len) };
    for (const k of r.omit ?? []) delete o[k];
    for (const k of r.throwing ?? []) Object.defineProperty(o, k, { get() { throw new Error(`getter ${k} throws`); }, enumerable: true });
    if (r.proxy) return new Proxy(o, { get() { throw new Error('proxy trap throws'); } });
    return o;
  }
  if (spec.value !== undefined) return spec.value; // null, numbers, plain objects
  return undefined;
}

async function runCase(c) {
  switch (c.kind) {
    case 'model': {
      const model = await Model.load(c.path);
      try {
        const ctx = await Context.create(model, { contextSize: 64, threads: 1 });
        try {
          const n = model.info.nVocab;
          await ctx.decode([model.info.bos >= 0 ? model.info.bos : 0, 5 % n, 17 % n]);
          const s = ctx.createSampler({ temperature: 0 });
          try {
            await ctx.sample(s);
          } finally {
            s.dispose();
          }
        } finally {
          await ctx.dispose();
        }
      } finally {
        await model.dispose();
      }
      return;
    }
    case 'mmproj': {
      const model = await goodModel(c.model);
      const proj = await Projector.load(model, c.path, { threads: 1 });
      try {
        const n = proj.imageSize;
        const e = await proj.encode(pixels(n), n, n);
        const ok = e.nTokens > 0;
        e.dispose();
        if (!ok) throw new Error('no image tokens');
      } finally {
        await proj.dispose();
      }
      return;
    }
    case 'pair':
    case 'pair-model': {
      const [model, mmproj] = c.kind === 'pair' ? [c.model, c.path] : [c.path, c.mmproj];
      const m = await LlavaMed.load({ model, mmproj, threads: 1, contextSize: 256 });
      try {
        await m.ask(rawImage(), 'What is shown?', { maxTokens: 2, temperature: 0 });
      } finally {
        await m.dispose();
      }
      return;
    }
    case 'image': {
      const m = await med(c.model, c.mmproj);
      await m.ask(imageArg(c.image), 'What is shown?', { maxTokens: 1, temperature: 0 });
      return;
    }
    case 'convert': {
      rmSync(c.out, { recursive: true, force: true });
      mkdirSync(c.out, { recursive: true });
      try {
        if (c.variant === 'v1.5') await convert.convertV15({ model: c.dirs.model, vision: c.dirs.vision, out: c.out, name: 'c', outtype: 'f32' });
        else await convert.convertV0({ base: c.dirs.base, delta: c.dirs.delta, vision: c.dirs.vision, out: c.out, name: 'c', outtype: 'f32' });
      } catch (e) {
        // a refused conversion leaves no output behind
        const left = existsSync(c.out) ? readdirSync(c.out) : [];
        if (left.length > 0) e.leftovers = left;
        throw e;
      } finally {
        if (!c.keep) rmSync(c.out, { recursive: true, force: true });
      }
      return;
    }
    default:
      throw new Error(`unknown case kind ${c.kind}`);
  }
}

function rawImage() {
  return { data: pixels(28), width: 28, height: 28, channels: 3 };
}

process.on('message', async (c) => {
  if (c === 'exit') process.exit(0);
  let r;
  try {
    await runCase(c);
    r = { id: c.id, outcome: 'success' };
  } catch (e) {
    const typed = e instanceof LlavaMedError && codes.has(e.code);
    r = { id: c.id, outcome: typed ? 'typed' : 'untyped', code: e?.code, message: String(e?.message ?? e).slice(0, 400), name: e?.constructor?.name, leftovers: e?.leftovers };
  }
  process.send(r);
});
process.send({ ready: true });
