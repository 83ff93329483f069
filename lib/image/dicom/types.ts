/** Shapes of DICOM input and rendering (lib/image/dicom). */

/** A VOI window in modality units (e.g. Hounsfield units for CT): values in [center - width/2, center + width/2] span black to white. */
export interface DicomWindow {
  center: number;
  width: number;
}

/**
 * Named CT windows (centre/width in HU), as radiology references list them. They only make sense for
 * images whose modality LUT yields HU (CT); on other images they are just numbers.
 */
export const WINDOW_PRESETS = {
  brain: { center: 40, width: 80 },
  lung: { center: -600, width: 1500 },
  mediastinum: { center: 50, width: 350 },
  abdomen: { center: 40, width: 400 },
  bone: { center: 400, width: 1800 },
} as const satisfies Record<string, DicomWindow>;

export type WindowPreset = keyof typeof WINDOW_PRESETS;

export interface DicomRenderOptions {
  /**
   * The VOI window. Default: the first Window Center/Width in the file (with its VOI LUT Function), else
   * the file's VOI LUT Sequence, else the full range (min..max) of the frame's values after the modality LUT.
   */
  window?: DicomWindow | WindowPreset;
  /** Zero-based frame of a multi-frame image. Default: the middle frame, floor(frames / 2). */
  frame?: number;
  /**
   * Accept a bare dataset without the 128-byte preamble and "DICM" meta header, read as Implicit VR Little
   * Endian (what some older archives hold). Part 10 files are detected by content and need no flag.
   */
  implicit?: boolean;
}

/** An explicit DICOM image input, accepted everywhere an image is: a file path or the file's bytes. */
export interface DicomInput extends DicomRenderOptions {
  dicom: string | Uint8Array;
}

/** What a rendering used, for `llava-med info` and `image`: no identifying tags, only rendering facts. */
export interface DicomImageInfo {
  transferSyntax: string;
  transferSyntaxName: string;
  rows: number;
  columns: number;
  frames: number;
  frame: number;
  samplesPerPixel: number;
  photometricInterpretation: string;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: 'unsigned' | 'signed';
  planarConfiguration?: number;
  modality?: string;
  rescale?: { slope: number; intercept: number };
  modalityLut?: boolean;
  /** The windows the file lists (centre/width pairs). */
  windows?: DicomWindow[];
  voiLutFunction?: string;
  voiLutSequence?: boolean;
  /** How the shown image was mapped to 8 bits. */
  voi?: string;
}

/** 8-bit rendered pixels: grey (1 channel) for MONOCHROME1/2, RGB (3 channels) otherwise. */
export interface DicomRendering {
  samples: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3;
  info: DicomImageInfo;
}
