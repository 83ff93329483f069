/**
 * One DICOM job, start to end: parse, check limits, take the frame, decompress, render to 8 bits. Runs in the
 * DICOM worker thread (worker.ts); nothing here touches the caller's event loop.
 */
import { llavaError } from '../../errors.js';
import { decodeCompressed } from './codecs.js';
import { parseDicom, frameBytes, TS_NAMES, type DicomHeader } from './parse.js';
import { renderFrame, type ColourLayout } from './render.js';
import type { DicomImageInfo, DicomRendering, DicomWindow } from './types.js';

export interface DicomJob {
  window?: DicomWindow;
  frame?: number;
  implicit?: boolean;
  /** Refuse images with more pixels per frame than this (checked from the header, before decoding). */
  maxPixels: number;
}

export function describeHeader(h: DicomHeader): DicomImageInfo {
  return {
    transferSyntax: h.transferSyntax,
    transferSyntaxName: TS_NAMES[h.transferSyntax] ?? 'unknown',
    rows: h.rows,
    columns: h.columns,
    frames: h.frames,
    frame: h.frame,
    samplesPerPixel: h.samplesPerPixel,
    photometricInterpretation: h.photometric,
    bitsAllocated: h.bitsAllocated,
    bitsStored: h.bitsStored,
    highBit: h.highBit,
    pixelRepresentation: h.signed ? 'signed' : 'unsigned',
    planarConfiguration: h.samplesPerPixel === 3 ? h.planar : undefined,
    modality: h.modality,
    rescale: h.rescale,
    modalityLut: h.modalityLut ? true : undefined,
    windows: h.windows.length ? h.windows : undefined,
    voiLutFunction: h.windows.length ? h.voiFunction : undefined,
    voiLutSequence: h.voiLut ? true : undefined,
  };
}

export async function renderDicomBytes(bytes: Uint8Array, job: DicomJob): Promise<DicomRendering> {
  const parsed = parseDicom(bytes, { implicit: job.implicit, frame: job.frame });
  const h = parsed.header;
  if (h.rows * h.columns > job.maxPixels) {
    throw llavaError(
      'ERR_IMAGE_TOO_LARGE',
      `DICOM image is ${h.columns}x${h.rows} = ${h.rows * h.columns} pixels, above the limit of ${job.maxPixels}; raise maxPixels if this is expected.`,
    );
  }
  const stream = frameBytes(parsed);
  let data = stream;
  let littleEndian = h.littleEndian;
  let planar = h.planar;
  let layout: ColourLayout = h.photometric === 'YBR_FULL' ? 'ybr' : h.photometric === 'YBR_FULL_422' ? 'ybr422' : 'rgb';
  if (h.encapsulated) {
    const d = await decodeCompressed(stream, h);
    data = d.data;
    littleEndian = true;
    planar = d.planar;
    layout = d.ybr ? 'ybr' : 'rgb';
  }
  const r = renderFrame(data, h, { littleEndian, planar, layout, window: job.window });
  const info = describeHeader(h);
  info.voi = r.voi;
  return { samples: r.samples, width: h.columns, height: h.rows, channels: r.channels, info };
}

/** The header facts only (for `llava-med info`): parses the dataset, decodes no pixel. */
export function describeDicomBytes(bytes: Uint8Array, opts: { implicit?: boolean }): DicomImageInfo {
  const parsed = parseDicom(bytes, { implicit: opts.implicit });
  return describeHeader(parsed.header);
}
