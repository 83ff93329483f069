/**
 * The pad colour of LLaVA-1.5's expand2square (llava/mm_utils.py), used by LLaVA-Med v1.5 with
 * image_aspect_ratio 'pad'. The padding itself happens in native/image.cpp (geometry 'v1.5').
 *
 * The canvas is created in the source's Pillow mode with background (122, 116, 104) = int(255 * CLIP mean),
 * or int(255 * mean(mean)) = 114 for mode 'L'. Because model_vqa.py pads before any convert('RGB'), the
 * mode decides the colour the model saw:
 *  - 'RGB', 'RGBA': (122, 116, 104) (the RGBA canvas gets alpha 255, later dropped);
 *  - 'L': grey 114;
 *  - 'CMYK': the 3-tuple becomes C=122 M=116 Y=104 K=255, which converts to black (0, 0, 0);
 *  - 'P': the original pastes palette indices into a fresh one-colour palette, scrambling the picture;
 *    we do not reproduce that bug and pad with (122, 116, 104);
 *  - 'LA', 'I' (16-bit grey): the original raises TypeError in Image.new; we pad with grey 114.
 *
 * Paste offset: the original draws random.randint(d // 2, d // 2 + 1), a 0/1 px jitter even at inference.
 * We always use d // 2 (what LLaVA-1.5 itself does), so results are deterministic; a 1 px shift is within
 * the original's own run-to-run variation.
 */
import type { PillowMode } from './types.js';

export const V15_PAD_RGB: readonly [number, number, number] = [122, 116, 104];
export const V15_PAD_GREY = 114;

export function padColourFor(mode: PillowMode | undefined): [number, number, number] {
  switch (mode) {
    case 'L':
    case 'LA':
    case 'I':
      return [V15_PAD_GREY, V15_PAD_GREY, V15_PAD_GREY];
    case 'CMYK':
      return [0, 0, 0];
    default:
      return [...V15_PAD_RGB];
  }
}
