/**
 * SVG and other XML are refused before sharp sees them: Pillow (the original pipeline) opens no
 * vector format, and librsvg expands XML entities without bound, so an entity bomb never returned
 * (found by the bad-input campaign, test/campaign/).
 */
import t from 'tap';
import { loadImage } from '../../lib/image/index.js';
import { LlavaMedError } from '../../lib/errors.js';

const svgs: [string, string][] = [
  ['a plain SVG', '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>'],
  ['an SVG with an XML declaration and a BOM', '\ufeff<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'],
  ['an entity bomb', '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&d;&d;&d;</text></svg>'],
  ['leading whitespace, then SVG', '\n\n   <svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'],
];
for (const [name, text] of svgs) {
  t.test(name, async (t) => {
    const e = await loadImage(Buffer.from(text, 'utf8')).then(() => undefined, (x: unknown) => x);
    t.ok(e instanceof LlavaMedError, `refused with a LlavaMedError (${String(e)})`);
    t.equal((e as LlavaMedError).code, 'ERR_IMAGE_FORMAT');
    t.match((e as Error).message, /SVG or other XML/);
  });
}
