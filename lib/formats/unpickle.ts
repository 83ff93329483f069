/**
 * A restricted unpickler. It understands the binary opcodes (protocols 2-5) that torch.save and
 * ordinary Python data pickles emit, and NEVER evaluates anything: GLOBAL/STACK_GLOBAL resolve only
 * names on an explicit allow-list, each mapped to a JS function that builds plain data. Any other
 * global (os.system, builtins.eval, ...) or an object-instantiating opcode (INST, OBJ) is refused with
 * ERR_UNSAFE_PICKLE naming it. Every length is checked against the bytes left before it is used, and
 * memory is bounded (memo entries, stack depth, container elements in total, bytes built by globals).
 *
 * Values: None -> null, bool -> boolean, int -> number (bigint beyond 2^53), float -> number,
 * str -> string, bytes -> Buffer, list/tuple -> array, dict -> Map, set/frozenset -> Set.
 */
import { llavaError } from '../errors.js';

/** What an allowed global becomes: called by REDUCE/NEWOBJ with the unpickled arguments. */
export interface PickleGlobal {
  /** Build the object from the REDUCE/NEWOBJ arguments. */
  call?: (...args: unknown[]) => unknown;
  /** Apply BUILD state to an object this global made (default: ignore the state for Maps, assign for objects). */
  build?: (obj: unknown, state: unknown) => unknown;
  /** Data attached to the global for code that receives a PickleGlobalRef (e.g. the dtype of a storage type). */
  value?: unknown;
}

export interface UnpickleOptions {
  /** Allowed globals by "module.qualname". Defaults to SAFE_GLOBALS (builtin containers only). */
  globals?: Readonly<Record<string, PickleGlobal>>;
  /** Called for BINPERSID with the persistent id; absent -> persistent ids are refused. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Memo entries allowed (default 2,000,000). */
  maxMemo?: number;
  /** Values on the stack (and open MARKs) at once (default 1,000,000). */
  maxStack?: number;
  /**
   * Container elements built in total: every item put into a list, tuple, dict or set, including the
   * copies allowed globals make (default 20,000,000). A pickle can reference one big list from the memo
   * and copy it again and again with a few bytes per copy; this bounds the memory that can cost.
   */
  maxElements?: number;
  /** Bytes of bytes objects built by allowed globals in total (default 4 x the pickle + 64 MiB). */
  maxBuiltBytes?: number;
  /** Where the bytes came from, for messages. */
  source?: string;
}

/** An instance of an allowed class whose construction we only record (name + args + state). */
export class PickleObject {
  state: unknown = undefined;
  constructor(readonly className: string, readonly args: unknown[]) {}
}

/** A reference to an allowed global, as pushed by GLOBAL (persistent loaders see these, e.g. torch.FloatStorage). */
export class PickleGlobalRef {
  constructor(readonly name: string, readonly spec: PickleGlobal) {}
}

/** Builtins that only build plain containers, safe for any data pickle. */
export const SAFE_GLOBALS: Readonly<Record<string, PickleGlobal>> = {
  'collections.OrderedDict': { call: (items?: unknown) => mapFrom(items) },
  'builtins.dict': { call: (items?: unknown) => mapFrom(items) },
  'builtins.list': { call: (items?: unknown) => (Array.isArray(items) ? [...items] : []) },
  'builtins.tuple': { call: (items?: unknown) => (Array.isArray(items) ? [...items] : []) },
  'builtins.set': { call: (items?: unknown) => new Set(Array.isArray(items) ? items : []) },
  'builtins.frozenset': { call: (items?: unknown) => new Set(Array.isArray(items) ? items : []) },
  'builtins.bytearray': { call: (b?: unknown) => bytesFrom(b) },
  // Protocol 2 names the builtins module __builtin__ (Python 2 compatibility) ...
  '__builtin__.set': { call: (items?: unknown) => new Set(Array.isArray(items) ? items : []) },
  '__builtin__.frozenset': { call: (items?: unknown) => new Set(Array.isArray(items) ? items : []) },
  '__builtin__.bytearray': { call: (b?: unknown) => bytesFrom(b) },
  // ... and stores bytes as _codecs.encode(latin1_text, 'latin1').
  '_codecs.encode': { call: (s?: unknown, enc?: unknown) => bytesFrom(s, enc) },
};

function bytesFrom(b?: unknown, enc: unknown = 'latin1'): Buffer {
  if (b === undefined) return Buffer.alloc(0);
  if (Buffer.isBuffer(b)) return Buffer.from(b);
  if (typeof b === 'string' && (enc === 'latin1' || enc === 'latin-1')) return Buffer.from(b, 'latin1');
  throw llavaError('ERR_FORMAT', `The pickle builds bytes from ${typeof b} with encoding ${String(enc)}, which is not supported.`);
}

function mapFrom(items: unknown): Map<unknown, unknown> {
  const m = new Map<unknown, unknown>();
  if (items instanceof Map) for (const [k, v] of items) m.set(k, v);
  else if (Array.isArray(items)) for (const kv of items) if (Array.isArray(kv) && kv.length === 2) m.set(kv[0], kv[1]);
  return m;
}

function unsafe(name: string, source: string): never {
  throw llavaError('ERR_UNSAFE_PICKLE', `${source} refers to the Python global '${name}', which llava-med will not load: pickles can run arbitrary code, so only known tensor/container types are allowed. Use a safetensors file or a checkpoint from a trusted source saved with torch.save(state_dict).`);
}

export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): unknown {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const source = opts.source ?? 'the pickle';
  const globals = opts.globals ?? SAFE_GLOBALS;
  const maxMemo = opts.maxMemo ?? 2_000_000;
  const maxStack = opts.maxStack ?? 1_000_000;
  const maxElements = opts.maxElements ?? 20_000_000;
  const maxBuiltBytes = opts.maxBuiltBytes ?? 4 * data.byteLength + (64 << 20);
  let elements = 0;
  let builtBytes = 0;
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;

  const bad = (msg: string): never => {
    throw llavaError('ERR_FORMAT', `${source} is not a valid pickle: ${msg} (at byte ${pos}).`);
  };
  const need = (n: number) => { if (n > buf.length - pos || n < 0) bad(`needs ${n} more bytes but only ${buf.length - pos} remain`); };
  const u8 = () => { need(1); return buf[pos++]!; };
  const u16 = () => { need(2); const v = buf.readUInt16LE(pos); pos += 2; return v; };
  const u32 = () => { need(4); const v = buf.readUInt32LE(pos); pos += 4; return v; };
  const i32 = () => { need(4); const v = buf.readInt32LE(pos); pos += 4; return v; };
  const u64 = () => {
    need(8); const v = buf.readBigUInt64LE(pos); pos += 8;
    if (v > BigInt(buf.length)) bad(`length ${v} exceeds the pickle size`);
    return Number(v);
  };
  const take = (n: number) => { need(n); const b = buf.subarray(pos, pos + n); pos += n; return b; };
  const line = () => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 4096) bad('unterminated text line');
    const s = buf.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const pop = () => { if (stack.length === 0 || stack.length <= (marks.at(-1) ?? -1)) bad('stack underflow'); return stack.pop(); };
  const top = () => { if (stack.length === 0) bad('stack underflow'); return stack[stack.length - 1]; };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) return bad('MARK expected');
    return stack.splice(m);
  };
  const memoPut = (i: number, v: unknown) => {
    if (!memo.has(i) && memo.size >= maxMemo) bad(`more than ${maxMemo} memo entries`);
    memo.set(i, v);
  };
  const charge = (n: number) => {
    elements += n;
    if (elements > maxElements) bad(`it builds more than ${maxElements} container elements`);
  };
  const chargeResult = (v: unknown): unknown => {
    if (Array.isArray(v)) charge(v.length);
    else if (v instanceof Map || v instanceof Set) charge(v.size);
    else if (Buffer.isBuffer(v)) {
      builtBytes += v.length;
      if (builtBytes > maxBuiltBytes) bad(`its globals build more than ${maxBuiltBytes} bytes`);
    }
    return v;
  };
  const memoGet = (i: number) => { if (!memo.has(i)) bad(`memo key ${i} is not defined`); return memo.get(i); };
  const resolve = (module: string, name: string) => {
    const full = `${module}.${name}`;
    const spec = globals[full];
    if (!spec) unsafe(full, source);
    return new PickleGlobalRef(full, spec);
  };
  const callGlobal = (fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof PickleGlobalRef)) bad('REDUCE on something that is not an allowed global');
    const g = fn as PickleGlobalRef;
    if (!g.spec.call) unsafe(g.name, source);
    if (!Array.isArray(args)) bad(`arguments for ${g.name} are not a tuple`);
    return chargeResult(g.spec.call!(...(args as unknown[])));
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (items.length % 2 !== 0) bad('SETITEMS with an odd number of items');
    if (!(target instanceof Map)) bad('SETITEM(S) on something that is not a dict');
    charge(items.length / 2);
    for (let i = 0; i < items.length; i += 2) (target as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]) => {
    charge(items.length);
    if (Array.isArray(target)) target.push(...items);
    else if (target instanceof Set) for (const x of items) target.add(x);
    else bad('APPEND(S) on something that is not a list');
  };

  if (buf.length === 0) bad('it is empty');
  for (;;) {
    if (stack.length > maxStack || marks.length > maxStack) bad(`its stack holds more than ${maxStack} values`);
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) bad(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: u64(); break; // FRAME: framing is only a read-ahead hint
      case 0x2e: { // STOP
        const v = pop();
        return v;
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: case 0x8b: { // LONG1, LONG4: little-endian two's complement
        const n = op === 0x8a ? u8() : u32();
        if (n > 1024) bad(`integer of ${n} bytes is unreasonably large`);
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: { need(8); stack.push(buf.readDoubleBE(pos)); pos += 8; break; } // BINFLOAT
      case 0x58: stack.push(take(u32()).toString('utf8')); break; // BINUNICODE
      case 0x8c: stack.push(take(u8()).toString('utf8')); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(take(u64()).toString('utf8')); break; // BINUNICODE8
      case 0x55: stack.push(take(u8()).toString('latin1')); break; // SHORT_BINSTRING (py2 str)
      case 0x54: { const n = i32(); if (n < 0) bad('negative BINSTRING length'); stack.push(take(n).toString('latin1')); break; } // BINSTRING
      case 0x43: stack.push(Buffer.from(take(u8()))); break; // SHORT_BINBYTES
      case 0x42: stack.push(Buffer.from(take(u32()))); break; // BINBYTES
      case 0x8e: stack.push(Buffer.from(take(u64()))); break; // BINBYTES8
      case 0x96: stack.push(Buffer.from(take(u64()))); break; // BYTEARRAY8
      case 0x85: charge(1); stack.push([pop()]); break; // TUPLE1
      case 0x86: { charge(2); const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { charge(3); const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x74: stack.push(chargeResult(popMark())); break; // TUPLE
      case 0x6c: stack.push(chargeResult(popMark())); break; // LIST
      case 0x64: { const items = popMark(); const m = new Map(); setItems(m, items); stack.push(m); break; } // DICT
      case 0x91: stack.push(chargeResult(new Set(popMark()))); break; // FROZENSET
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x90: { const items = popMark(); appendItems(top(), items); break; } // ADDITEMS
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x71: memoPut(u8(), top()); break; // BINPUT
      case 0x72: memoPut(u32(), top()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      case 0x63: { const module = line(); const name = line(); stack.push(resolve(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop(); const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') bad('STACK_GLOBAL needs two strings');
        stack.push(resolve(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(callGlobal(fn, args)); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(callGlobal(cls, args)); break; } // NEWOBJ
      case 0x92: { const kw = pop(); const args = pop(); const cls = pop(); void kw; stack.push(callGlobal(cls, args)); break; } // NEWOBJ_EX
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PickleObject) obj.state = state;
        else if (obj && typeof obj === 'object' && 'build' in (obj as object) && typeof (obj as { build?: unknown }).build === 'function') {
          (obj as { build: (s: unknown) => void }).build(state);
        }
        // Maps (OrderedDict with a __dict__ such as state_dict()._metadata) and other plain data:
        // the extra attributes carry no tensor data, so they are dropped.
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) bad('persistent id found but no persistent loader was given');
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      case 0x69: case 0x6f: // INST, OBJ: instantiate arbitrary classes
        throw llavaError('ERR_UNSAFE_PICKLE', `${source} uses the ${op === 0x69 ? 'INST' : 'OBJ'} opcode to instantiate a class; llava-med refuses such pickles.`);
      case 0x50: case 0x82: case 0x83: case 0x84: // PERSID (text), EXT1/2/4: extension registry
        throw llavaError('ERR_UNSAFE_PICKLE', `${source} uses opcode 0x${op.toString(16)}, which llava-med does not allow.`);
      default:
        bad(`unsupported opcode 0x${op.toString(16)}`);
    }
  }
}

/** Nesting deeper than this is refused by pickleToPlain (instead of overflowing the JS stack). */
export const MAX_PLAIN_DEPTH = 1000;

/** Maps with only string keys -> plain objects, recursively (for JSON-like data such as question files). */
export function pickleToPlain(v: unknown, seen = new Map<unknown, unknown>(), depth = 0): unknown {
  if (seen.has(v)) return seen.get(v);
  if (depth > MAX_PLAIN_DEPTH && (v instanceof Map || Array.isArray(v))) {
    throw llavaError('ERR_FORMAT', `The pickle nests containers more than ${MAX_PLAIN_DEPTH} deep; no data file does that.`);
  }
  if (v instanceof Map) {
    if ([...v.keys()].every((k) => typeof k === 'string')) {
      const o: Record<string, unknown> = {};
      seen.set(v, o);
      for (const [k, x] of v) o[k as string] = pickleToPlain(x, seen, depth + 1);
      return o;
    }
    const m = new Map();
    seen.set(v, m);
    for (const [k, x] of v) m.set(k, pickleToPlain(x, seen, depth + 1));
    return m;
  }
  if (Array.isArray(v)) {
    const a: unknown[] = [];
    seen.set(v, a);
    for (const x of v) a.push(pickleToPlain(x, seen, depth + 1));
    return a;
  }
  return v;
}
