/** The original LLaVA-Med prompt templates, the explicit id layout around the image, and generation defaults. */
export type { ChatTurn, PromptLayout, Tokenize } from './types.js';
export {
  V0_SYSTEM,
  V0_SEP,
  V0_ROLES,
  V0_FEW_SHOT,
  V0_PREAMBLE,
  V0_IMAGE_TOKENS,
  V0_ANSWER_PROMPTER_SUFFIX,
  IMAGE_PLACEHOLDER,
  IM_START,
  IM_PATCH,
  IM_END,
  cleanQuestion,
  v0PromptText,
  v0ChatText,
  buildV0Prompt,
  buildV0Chat,
  v0ChatTurn,
} from './v0.js';
export type { V0TokenIds } from './v0.js';
export { V15_INST_OPEN, V15_INST_CLOSE, V15_IMAGE_TOKENS, v15PromptText, v15ChatText, buildV15Prompt, buildV15Chat, v15ChatTurn } from './v15.js';
export type { V15TokenIds } from './v15.js';
export { GENERATION_DEFAULTS, postprocessV0, postprocessV15 } from './generation.js';
export type { GenerationSettings } from './generation.js';
export { MULTIMODAL_SYSTEM, answersFilePrompt } from './answers.js';
export { pyStrip, pyLstrip, pyRstrip } from './py-strip.js';
export { SPECIAL_TOKEN_TEXTS, V0_ADDED_TOKEN_TEXTS, markerTexts, findMarker, assertNoMarkers } from './markers.js';
