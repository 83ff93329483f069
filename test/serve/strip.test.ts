/** Streamed text is stripped exactly as the final answer (Python strip()), whatever the chunking. */
import t from 'tap';
import { StripStream } from '../../lib/serve/index.js';
import { pyStrip } from '../../lib/prompt/index.js';

t.test('concatenated output equals pyStrip of the whole text', async (t) => {
  const cases = [[' ', ' Hello', ' ', 'world ', ' \n'], ['\n\tA', 'B\u00a0', '\u3000', 'C'], ['  ', '\n'], ['x'], [' a b ']];
  for (const pieces of cases) {
    const s = new StripStream();
    t.equal(pieces.map((p) => s.push(p)).join(''), pyStrip(pieces.join('')), JSON.stringify(pieces));
  }
});
