/**
 * Each sequence must hold an image: with several sequences (separate KV buffers) contextSize is
 * split between them, and load refuses a split that leaves a sequence too small for one image.
 */
import t from 'tap';
import { LlavaMed } from '../../lib/llava-med.js';
import { makeTinyLlamaGguf, makeTinyMmproj } from '../helpers/tiny-gguf.js';
import { BIG_LLM, BIG_MMPROJ } from '../engine/util.js';
import { rejectsCode } from './util.js';

const llm = await makeTinyLlamaGguf(undefined, BIG_LLM);
const mm = await makeTinyMmproj(undefined, BIG_MMPROJ); // 336 px / 14: 576 image tokens

t.test('a contextSize whose per-sequence share cannot hold an image is refused at load', async (t) => {
  const base = { model: llm.path, mmproj: mm.path, threads: 1, contextSize: 1024 };
  const one = await LlavaMed.load(base);
  t.equal(one.imageTokens, 576, '1024 positions hold one 576-token image');
  await one.dispose();
  const e = await rejectsCode(t, LlavaMed.load({ ...base, sequences: 2 }), 'ERR_INVALID_ARGUMENT', 'two sequences of 512');
  t.match(e?.message ?? '', /each of the 2 sequence\(s\) 512 positions.*at least 1280/, 'the message gives the share and the size to use');
  const two = await LlavaMed.load({ ...base, contextSize: 1280, sequences: 2 });
  t.equal(two.sequences, 2, 'the suggested size loads');
  await two.dispose();
});
