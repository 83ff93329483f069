/**
 * DICOM on the command line: `--window`, `--frame`, `--implicit` for ask/score, `llava-med image` (write what
 * the model sees as PNG) and the DICOM half of `llava-med info`.
 */
import { Command, InvalidArgumentError, Option } from 'commander';

import { openRegularFile, readRegularFile } from '../formats/file-read.js';
import { MAX_IMAGE_FILE_BYTES } from '../image/load.js';
import { writeFileAtomic } from '../eval/atomic.js';
import {
  describeDicom,
  hasDicmMagic,
  loadAndPreprocess,
  loadImage,
  parseWindowFlag,
  renderDicom,
  V0_IMAGE_SIZE,
  V15_IMAGE_SIZE,
  WINDOW_PRESETS,
  type DicomImageInfo,
  type DicomWindow,
  type ImageInput,
} from '../image/index.js';
import { isLlavaMedError } from '../errors.js';

export interface DicomFlags {
  window?: DicomWindow;
  frame?: number;
  implicit?: boolean;
}

function windowArg(v: string): DicomWindow {
  try {
    return parseWindowFlag(v);
  } catch (e) {
    if (isLlavaMedError(e)) throw new InvalidArgumentError(`--${e.message}`);
    throw e;
  }
}

function frameArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`--frame must be an integer >= 0, got "${v}".`);
  return n;
}

/** `--window`, `--frame`, `--implicit` (DICOM rendering) on a command that takes `-i`. */
export function dicomFlags(cmd: Command): Command {
  return cmd
    .option('--window <c,w>', `DICOM window CENTER,WIDTH (e.g. 40,400) or a preset: ${Object.keys(WINDOW_PRESETS).join(', ')} (default: the file's first window)`, windowArg)
    .option('--frame <n>', 'DICOM frame, from 0 (default: the middle frame)', frameArg)
    .option('--implicit', 'the DICOM file is a bare Implicit VR Little Endian dataset without the meta header');
}

/** The image argument: a path (DICOM recognised by content), or `{ dicom }` when a DICOM flag was given. */
export function imageArg(path: string, f: DicomFlags): ImageInput {
  if (f.window === undefined && f.frame === undefined && !f.implicit) return path;
  return { dicom: path, window: f.window, frame: f.frame, implicit: f.implicit };
}

async function readHead(path: string, n: number): Promise<Uint8Array> {
  const { fh } = await openRegularFile(path, { what: 'File' });
  try {
    const b = Buffer.alloc(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A DICOM file's bytes: a regular file only, under the image size limit. */
function readDicomFile(path: string): Promise<Uint8Array> {
  return readRegularFile(path, { what: 'DICOM file', maxBytes: MAX_IMAGE_FILE_BYTES, tooLargeCode: 'ERR_IMAGE_TOO_LARGE' });
}

/** Whether `info` should describe the file as DICOM (the Part 10 marker, or --implicit). */
export async function isDicomFile(path: string, implicit?: boolean): Promise<boolean> {
  return implicit === true || hasDicmMagic(await readHead(path, 132));
}

export async function describeDicomFile(path: string, implicit?: boolean): Promise<Record<string, unknown>> {
  const info: DicomImageInfo = await describeDicom(await readDicomFile(path), { implicit });
  return { file: path, kind: 'DICOM image', ...info };
}

/** `llava-med image IN --out OUT.png`: the rendered image, or the exact pixels the encoder gets. */
export function registerImageCommand(program: Command): void {
  dicomFlags(
    program
      .command('image')
      .description('write an image as the model sees it (DICOM rendered with its window; --stage model: after resize/crop/pad) to a PNG')
      .argument('<input>', 'image file (DICOM, JPEG, PNG, ...)')
      .requiredOption('-o, --out <file>', 'PNG to write')
      .addOption(new Option('--stage <stage>', 'rendered: the decoded/rendered image; model: the encoder input').choices(['rendered', 'model']).default('rendered'))
      .addOption(new Option('--variant <v>', 'preprocessing of --stage model').choices(['v0', 'v1.5']).default('v1.5'))
      .option('--image-size <n>', `encoder input side for --stage model (default ${V0_IMAGE_SIZE} for v0, ${V15_IMAGE_SIZE} for v1.5)`, (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 4096) throw new InvalidArgumentError(`--image-size must be an integer 1..4096, got "${v}".`);
        return n;
      }),
  ).action(async (input: string, o: DicomFlags & { out: string; stage: 'rendered' | 'model'; variant: 'v0' | 'v1.5'; imageSize?: number }) => {
    const sharp = (await import('sharp')).default;
    const arg = imageArg(input, o);
    let raw: { data: Uint8Array; width: number; height: number; channels: 1 | 3 };
    let info: DicomImageInfo | undefined;
    if (o.stage === 'model') {
      const px = await loadAndPreprocess({ input: arg, preprocess: { variant: o.variant, imageSize: o.imageSize } });
      raw = { data: px.data, width: px.width, height: px.height, channels: 3 };
    } else if (typeof arg !== 'string' || (await isDicomFile(input))) {
      // DICOM: keep a grey rendering grey
      const r = await renderDicom(await readDicomFile(input), { window: o.window, frame: o.frame, implicit: o.implicit, maxPixels: 100_000_000 });
      raw = { data: r.samples, width: r.width, height: r.height, channels: r.channels };
      info = r.info;
    } else {
      const img = await loadImage(arg);
      raw = { data: img.data, width: img.width, height: img.height, channels: 3 };
    }
    const img = sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels } });
    // sharp would promote 1-channel raw input to RGB on output unless told it is grey
    const png = await (raw.channels === 1 ? img.toColourspace('b-w') : img).png().toBuffer();
    await writeFileAtomic(o.out, png);
    process.stdout.write(`${o.out} ${raw.width}x${raw.height}${info ? ` frame ${info.frame} (of ${info.frames}), ${info.voi ?? 'colour'}` : ''}\n`);
  });
}
