/**
 * The GPT-4 review prompt of LLaVA-Med's llava/eval/eval_multimodal_chat_gpt_score.py, verbatim.
 * Source: the file as stored at microsoft/LLaVA-Med commit 8c73dc1 (v1.5 era). The reference notes
 * say v0 used the same text. INSTRUCT_PROMPT is a triple-quoted Python string whose continuation
 * lines are indented by two spaces inside the literal, so the text really contains "\n  " between
 * its three paragraphs, and "In the subsequent line" stays on the third paragraph's line (a common
 * reconstruction that puts it on its own line is not what the file says). Uncertain: whether the
 * v0 tag's copy differed in whitespace; that version was not available to compare.
 */

export const JUDGE_SYSTEM_MESSAGE = "'You are a helpful and precise assistant for checking the quality of the answer.";

export const INSTRUCT_PROMPT =
  'We would like to request your feedback on the performance of two AI assistants in response to the user question displayed above. The user asks the question on observing an image. For your reference, the visual content in the image is represented with caption describing the same image.\n' +
  '  Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each assistant receives an overall score on a scale of 1 to 10, where a higher score indicates better overall performance.\n' +
  '  Please first output a single line containing only two values indicating the scores for Assistant 1 and 2, respectively. The two scores are separated by a space. In the subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any potential bias and ensuring that the order in which the responses were presented does not affect your judgment.';

const ROLE = 'Assistant';

/** Python repr() of a JSON value (the original formats in_text_mention with an f-string, i.e. repr of a list of dicts). */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return pyFloatOrIntRepr(v);
  if (typeof v === 'string') return pyStrRepr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  }
  return String(v);
}

/**
 * JSON does not keep Python's int/float distinction once parsed in JS: integral numbers print as
 * ints (json.loads would have made 1.0 a float printing "1.0"). Non-integral numbers use Python's
 * float repr (shortest round-trip digits, exponent form like 1e-05).
 */
function pyFloatOrIntRepr(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return String(x);
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const s = String(x);
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(s);
  if (m) return `${m[1]}e${m[2]}${m[3]!.padStart(2, '0')}`;
  // Python switches to exponent form below 1e-4; JS only below 1e-6.
  if (Math.abs(x) < 1e-4 && x !== 0) {
    const e = x.toExponential();
    const [mant, exp] = e.split('e') as [string, string];
    const sign = exp.startsWith('-') ? '-' : '+';
    return `${mant}e${sign}${exp.replace(/^[+-]/, '').padStart(2, '0')}`;
  }
  return s;
}

function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (!isPrintable(ch)) {
      out += c <= 0xff ? '\\x' + c.toString(16).padStart(2, '0') : c <= 0xffff ? '\\u' + c.toString(16).padStart(4, '0') : '\\U' + c.toString(16).padStart(8, '0');
    } else out += ch;
  }
  return out + quote;
}

/** Python's str.isprintable for one character: not in categories Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs (except the ASCII space). */
function isPrintable(ch: string): boolean {
  if (ch === ' ') return true;
  return !/[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u.test(ch);
}

/** conv_to_str: the user message. */
export function convToStr(figLabel: string, figCaption: string, figContext: unknown, question: string, ans1: string, ans2: string): string {
  const ctx = typeof figContext === 'string' ? figContext : pyRepr(figContext);
  return (
    `[Context]\n` +
    `Figure Caption:\n${figLabel}: ${figCaption}\n\n` +
    `Figure Context:\n\t- ${ctx}\n\n` +
    `[Question]\n${question}\n\n` +
    `[${ROLE} 1]\n${ans1}\n\n[End of ${ROLE} 1]\n\n` +
    `[${ROLE} 2]\n${ans2}\n\n[End of ${ROLE} 2]\n\n` +
    `[System]\n${INSTRUCT_PROMPT}\n\n`
  );
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** compare_messages_gen: system + user message. */
export function compareMessages(figLabel: string, figCaption: string, figContext: unknown, question: string, ans1: string, ans2: string): ChatMessage[] {
  return [
    { role: 'system', content: JUDGE_SYSTEM_MESSAGE },
    { role: 'user', content: convToStr(figLabel, figCaption, figContext, question, ans1, ans2) },
  ];
}
