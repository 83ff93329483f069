/**
 * Run by file-read.test.ts in a child process with UV_THREADPOOL_SIZE=1 (one libuv pool thread, so any
 * call that blocks the pool blocks every later fs call): every reader that opens a path is pointed at a
 * FIFO with no writer (and at /dev/zero), then an unrelated fs.readFile must still complete.
 * Progress goes to the result file after each step, so a hang names the reader that hung.
 * Usage: node --import=tsx file-read-child.ts <result.json> <fifo> <regular file> <dir with FIFO files>
 */
import { readFile, writeFile } from 'node:fs/promises';
import { loadImage } from '../../lib/image/load.js';
import { readGgufHeader } from '../../lib/formats/gguf-read.js';
import { openSafetensors } from '../../lib/formats/safetensors.js';
import { openTorchZip } from '../../lib/formats/torch.js';
import { readSentencePieceModel } from '../../lib/formats/sentencepiece.js';
import { openHfCheckpoint } from '../../lib/formats/hf-checkpoint.js';
import { readHfTokenizer } from '../../lib/convert/hf-tokenizer.js';
import { readLlmConfig } from '../../lib/convert/hf-config.js';
import { readTestFile, readAnswersFile } from '../../lib/eval/answers-file.js';
import { readJsonl } from '../../lib/eval/judge/run.js';
import { readJson } from '../../lib/eval/prepare/common.js';

const [resultPath, fifo, regular, fifoDir] = process.argv.slice(2) as [string, string, string, string];
const steps: { name: string; code?: string; message?: string; ok?: boolean }[] = [];
const save = () => writeFile(resultPath, JSON.stringify(steps));

const readers: [string, () => Promise<unknown>][] = [
  ['loadImage(fifo)', () => loadImage(fifo)],
  ['loadImage(fifo) again', () => loadImage(fifo)],
  ['loadImage(/dev/zero)', () => loadImage('/dev/zero')],
  ['loadImage(/dev/urandom)', () => loadImage('/dev/urandom')],
  ['readGgufHeader(fifo)', () => readGgufHeader(fifo)],
  ['openSafetensors(fifo)', () => openSafetensors(fifo)],
  ['openTorchZip(fifo)', () => openTorchZip(fifo)],
  ['readSentencePieceModel(fifo)', () => readSentencePieceModel(fifo)],
  ['openHfCheckpoint(dir with FIFO index)', () => openHfCheckpoint(fifoDir)],
  ['readHfTokenizer(dir with FIFO tokenizer.model)', () => readHfTokenizer(fifoDir)],
  ['readLlmConfig(dir with FIFO config.json)', () => readLlmConfig(fifoDir)],
  ['readTestFile(fifo)', () => readTestFile(fifo)],
  ['readAnswersFile(fifo)', () => readAnswersFile(fifo)],
  ['readJsonl(fifo)', () => readJsonl(fifo)],
  ['readJson(fifo)', () => readJson(fifo, 'test')],
];

for (const [name, f] of readers) {
  steps.push({ name });
  await save();
  try {
    await f();
    Object.assign(steps.at(-1)!, { ok: true });
  } catch (e) {
    Object.assign(steps.at(-1)!, { code: (e as { code?: string }).code, message: (e as Error).message });
  }
  await save();
}
steps.push({ name: 'fs.readFile(regular)' });
await save();
Object.assign(steps.at(-1)!, { ok: (await readFile(regular, 'utf8')) === 'hello' });
await save();
