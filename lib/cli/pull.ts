/** `llava-med pull`, `list`, `rm`: registered models (lib/pull). */
import { InvalidArgumentError, type Command } from 'commander';
import { createInterface } from 'node:readline/promises';
import { formatBytes } from '../hub/index.js';
import { progressBar } from './output.js';

const QUANTS = ['F16', 'Q8_0', 'Q5_K_M', 'Q4_K_M', 'Q4_0', 'IQ4_NL'] as const;
type Quant = (typeof QUANTS)[number];

function quantList(v: string): Quant[] {
  const l = v.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  for (const q of l) if (!(QUANTS as readonly string[]).includes(q)) throw new InvalidArgumentError(`--quant must be a comma-separated list of ${QUANTS.join(', ')}, got "${v}".`);
  if (l.length === 0) throw new InvalidArgumentError(`--quant must name at least one of ${QUANTS.join(', ')}.`);
  return l as Quant[];
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** Asks on the terminal; without one (a script, CI) the caller must pass --accept-license. */
async function askLicense(terms: string): Promise<boolean | undefined> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined;
  process.stderr.write(`\n${terms}\n\n`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question('Do you accept these terms? [y/N] ')).trim());
  } finally {
    rl.close();
  }
}

interface PullFlags {
  revision?: string;
  base?: string;
  baseRevision?: string;
  file?: string[];
  quant: Quant[];
  name?: string;
  acceptLicense?: boolean;
  deleteSource?: boolean;
  threads?: number;
  json?: boolean;
}

export function registerPullCommands(program: Command, h: { num: (name: string, int?: boolean, min?: number) => (v: string) => number; interruptSignal: () => AbortSignal }): void {
  program
    .command('pull')
    .description('download a released LLaVA-Med model from Hugging Face, convert, quantize and register it (recipes: v1.5, v0, v0-vqarad, v0-pathvqa; or owner/name --file <pattern> for a repo of GGUF files)')
    .argument('<source>', 'a recipe or a Hugging Face repository id')
    .option('--revision <rev>', 'branch, tag or commit of the model/delta repository (default main)')
    .option('--base <repo|dir>', 'v0: your LLaMA-7B (original, HF format) as a folder or a repository id')
    .option('--base-revision <rev>', 'branch, tag or commit of the --base repository')
    .option('--file <pattern>', 'GGUF repos: glob of the model file (repeat for the mmproj)', collect)
    .option('--quant <list>', `comma-separated quantizations to register (${QUANTS.join(', ')})`, quantList, ['Q4_K_M'] as Quant[])
    .option('--name <name>', 'registered name (namespace:tag) or tag stem')
    .option('--accept-license', 'accept the model\'s licence terms (shown otherwise, and asked on a terminal)')
    .option('--delete-source', 'delete the downloaded Hugging Face files after converting (default: keep them for reuse)')
    .option('-t, --threads <n>', 'threads for quantizing', h.num('threads', true, 1))
    .option('--json', 'print the registered models as JSON')
    .action(async (source: string, o: PullFlags) => {
      const { pull } = await import('../pull/index.js');
      const signal = h.interruptSignal();
      let bar: ReturnType<typeof progressBar> | undefined;
      let barKey = '';
      const t0 = Date.now();
      const step = (key: string, label: string, unit: string) => {
        if (barKey !== key) {
          bar?.stop();
          bar = progressBar(label, unit);
          barKey = key;
        }
        return bar!;
      };
      try {
        const r = await pull({
          source,
          revision: o.revision,
          base: o.base,
          baseRevision: o.baseRevision,
          files: o.file,
          quant: o.quant,
          name: o.name,
          acceptLicense: o.acceptLicense,
          confirmLicense: askLicense,
          keepSource: !o.deleteSource,
          threads: o.threads,
          signal,
          onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
          onProgress: (p) => {
            if (p.phase === 'download' && p.bytesTotal > 0) {
              const rate = p.bytesDone / Math.max(0.001, (Date.now() - t0) / 1000);
              step('download', 'downloading', ' MB').update(Math.round(p.bytesDone / 1e6), Math.max(1, Math.round(p.bytesTotal / 1e6)), `${p.filesDone}/${p.filesTotal} files, ${formatBytes(rate)}/s`);
            } else if (p.phase === 'convert' && p.tensorsTotal > 0) {
              step(`convert-${p.step}`, p.step === 'mmproj' ? 'converting projector' : 'converting language model', ' tensors').update(p.tensorsDone, p.tensorsTotal);
            } else if (p.phase === 'quantize') {
              step(`quantize-${p.quant}`, `quantizing ${p.quant}`, ' tensors').update(p.done, p.total);
            }
          },
        });
        bar?.stop();
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ upToDate: r.upToDate, bytesFetched: r.bytesFetched, models: r.models.map((m) => ({ name: m.name, model: m.model, mmproj: m.mmproj, bytes: m.bytes })) }, null, 2)}\n`);
          return;
        }
        if (r.upToDate) process.stderr.write('already up to date: nothing downloaded\n');
        for (const m of r.models) process.stdout.write(`${m.name}\n`);
      } finally {
        bar?.stop();
      }
    });

  program
    .command('list')
    .description('list the registered models (from `llava-med pull`)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { listModels } = await import('../pull/index.js');
      const models = await listModels();
      if (o.json) {
        process.stdout.write(`${JSON.stringify(models.map((m) => ({ name: m.name, variant: m.manifest.variant, quant: m.manifest.quant, bytes: m.bytes, model: m.model, mmproj: m.mmproj, sources: m.manifest.sources, created: m.manifest.created })), null, 2)}\n`);
        return;
      }
      for (const m of models) {
        const src = m.manifest.sources.map((s) => (s.repo ? `${s.repo}@${(s.commit ?? '').slice(0, 7)}` : s.dir)).join(' + ');
        process.stdout.write(`${m.name.padEnd(32)} ${formatBytes(m.bytes).padStart(9)}  ${src}\n`);
      }
    });

  program
    .command('rm')
    .description('remove registered models (files pulled into the Hugging Face cache stay there)')
    .argument('<names...>', 'registered names')
    .action(async (names: string[]) => {
      const { removeModel } = await import('../pull/index.js');
      for (const n of names) {
        const m = await removeModel(n);
        process.stdout.write(`removed ${m.name}\n`);
      }
    });
}
