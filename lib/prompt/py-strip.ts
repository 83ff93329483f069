/**
 * Python's str.strip()/rstrip()/lstrip() with no argument. The original templates and post-processing use
 * them, and JavaScript's trim() disagrees on a few characters (Python strips \x1c-\x1f and \x85, JS strips
 * \uFEFF), so prompts that must match the original byte for byte use these instead.
 */
const PY_WS = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LEFT = new RegExp(`^[${PY_WS}]+`, 'u');
const RIGHT = new RegExp(`[${PY_WS}]+$`, 'u');

export function pyLstrip(s: string): string {
  return s.replace(LEFT, '');
}

export function pyRstrip(s: string): string {
  return s.replace(RIGHT, '');
}

export function pyStrip(s: string): string {
  return pyRstrip(pyLstrip(s));
}
