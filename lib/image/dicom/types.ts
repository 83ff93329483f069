/** Shapes of DICOM input and rendering (lib/image/dicom). */

/** A VOI window in modality units (e.g. Hounsfield units for CT): values in [center - width/2, center + width/2] span black to white. */
export interface DicomWindow {
  /** Window centre (level), in modality units. */
  center: number;
  /** Window width, in modality units (> 0). */
  width: number;
}

/**
 * Named CT windows (centre/width in HU), as radiology references list them. They only make sense for
 * images whose modality LUT yields HU (CT); on other images they are just numbers.
 */
export const WINDOW_PRESETS = {
  /** Brain: centre 40 HU, width 80 HU. */
  brain: {
    /** Window centre, HU. */
    center: 40,
    /** Window width, HU. */
    width: 80,
  },
  /** Lung: centre -600 HU, width 1500 HU. */
  lung: {
    /** Window centre, HU. */
    center: -600,
    /** Window width, HU. */
    width: 1500,
  },
  /** Mediastinum: centre 50 HU, width 350 HU. */
  mediastinum: {
    /** Window centre, HU. */
    center: 50,
    /** Window width, HU. */
    width: 350,
  },
  /** Abdomen (soft tissue): centre 40 HU, width 400 HU. */
  abdomen: {
    /** Window centre, HU. */
    center: 40,
    /** Window width, HU. */
    width: 400,
  },
  /** Bone: centre 400 HU, width 1800 HU. */
  bone: {
    /** Window centre, HU. */
    center: 400,
    /** Window width, HU. */
    width: 1800,
  },
} as const satisfies Record<string, DicomWindow>;

/** Name of a {@link WINDOW_PRESETS} entry, accepted wherever a {@link DicomWindow} is. */
export type WindowPreset = keyof typeof WINDOW_PRESETS;

/** How a DICOM image is rendered to 8 bits before preprocessing. */
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
  /** The DICOM file's path, or its bytes. */
  dicom: string | Uint8Array;
}

/** What a rendering used, for `llava-med info` and `image`: no identifying tags, only rendering facts. */
export interface DicomImageInfo {
  /** Transfer Syntax UID (0002,0010). */
  transferSyntax: string;
  /** Its readable name (e.g. 'JPEG 2000 Lossless'). */
  transferSyntaxName: string;
  /** Image height in pixels (0028,0010). */
  rows: number;
  /** Image width in pixels (0028,0011). */
  columns: number;
  /** Number of frames (1 for a single-frame image). */
  frames: number;
  /** The zero-based frame that was rendered. */
  frame: number;
  /** Samples per pixel (1 grey, 3 colour). */
  samplesPerPixel: number;
  /** Photometric Interpretation (MONOCHROME1, MONOCHROME2, RGB, YBR_FULL, …). */
  photometricInterpretation: string;
  /** Bits Allocated per sample (8 or 16). */
  bitsAllocated: number;
  /** Bits Stored per sample. */
  bitsStored: number;
  /** High Bit. */
  highBit: number;
  /** Pixel Representation: unsigned or two's-complement samples. */
  pixelRepresentation: 'unsigned' | 'signed';
  /** Planar Configuration of colour images (0 interleaved, 1 planar). */
  planarConfiguration?: number;
  /** Modality (CT, MR, CR, …). */
  modality?: string;
  /** Rescale Slope / Intercept applied to stored values (modality LUT), when present. */
  rescale?: {
    /** Rescale Slope. */
    slope: number;
    /** Rescale Intercept. */
    intercept: number;
  };
  /** Whether a Modality LUT Sequence was applied instead of a rescale. */
  modalityLut?: boolean;
  /** The windows the file lists (centre/width pairs). */
  windows?: DicomWindow[];
  /** VOI LUT Function (LINEAR, LINEAR_EXACT, SIGMOID), when present. */
  voiLutFunction?: string;
  /** Whether the file holds a VOI LUT Sequence. */
  voiLutSequence?: boolean;
  /** How the shown image was mapped to 8 bits. */
  voi?: string;
}

/** 8-bit rendered pixels: grey (1 channel) for MONOCHROME1/2, RGB (3 channels) otherwise. */
export interface DicomRendering {
  /** Interleaved, row-major 8-bit samples: `width × height × channels` bytes. */
  samples: Uint8Array;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
  /** What was read from the file and how it was mapped. */
  info: DicomImageInfo;
}
