/** Kept apart from parse.ts so the main thread can recognise DICOM without loading dicom-parser. */

/** "DICM" at offset 128: a DICOM Part 10 file. */
export function hasDicmMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
}
