/**
 * A stop string that cuts a generated text right after whitespace, so the text before it ends in
 * whitespace the final answer strips (the original's strip()): the first two-character word start
 * after whitespace that occurs nowhere earlier, past some non-whitespace text. Undefined when the
 * text has none.
 */
export function stopAfterSpace(raw: string): { stop: string; cut: string } | undefined {
  for (let i = 2; i < raw.length - 1; i++) {
    const stop = raw.slice(i, i + 2);
    if (/\s/u.test(raw[i - 1]!) && /\S/u.test(raw[i]!) && /\S/u.test(raw.slice(0, i - 1)) && raw.indexOf(stop) === i) return { stop, cut: raw.slice(0, i) };
  }
  return undefined;
}
