/**
 * Fields of the original answers .jsonl and the web demo's system prompt, kept verbatim because downstream
 * scripts (run_eval, the GPT judge) read them.
 */
import { cleanQuestion, IMAGE_PLACEHOLDER } from './v0.js';

/** The "multimodal" template's system prompt (web demo). The sentences really have no spaces between them. */
export const MULTIMODAL_SYSTEM =
  'You are LLaVA-Med, a large language and vision assistant trained by a group of researchers at Microsoft, based on the general domain LLaVA architecture.' +
  'You are able to understand the visual content that the user provides, and assist the user with a variety of medical and clinical tasks using natural language.' +
  'Follow the instructions carefully and explain your answers in detail.';

/** The answers-file `prompt` field (cur_prompt): question without "<image>", stripped, + "\n<image>" when there is an image. */
export function answersFilePrompt(question: string, hasImage = true): string {
  const q = cleanQuestion(question);
  return hasImage ? `${q}\n${IMAGE_PLACEHOLDER}` : q;
}
