import t, { type Test } from 'tap';
import { readClipConfig, readLlmConfig, contextLength, type LlmConfig } from '../../lib/convert/hf-config.js';
import { checkV0Base } from '../../lib/convert/base-check.js';
import { isLlavaMedError } from '../../lib/errors.js';

async function rejects(t: Test, p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  try {
    await p;
    t.fail(`expected ${code}`);
  } catch (e) {
    t.ok(isLlavaMedError(e) && e.code === code, `${code}: ${(e as Error).message}`);
    if (re) t.match((e as Error).message, re);
  }
}

const llama1: LlmConfig = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 64, intermediate_size: 128,
  num_hidden_layers: 2, num_attention_heads: 4, rms_norm_eps: 1e-6, max_position_embeddings: 2048, vocab_size: 320,
};
const delta: LlmConfig = {
  architectures: ['LlavaLlamaForCausalLM'], model_type: 'llava', hidden_size: 64, intermediate_size: 128,
  num_hidden_layers: 2, num_attention_heads: 4, rms_norm_eps: 1e-6, max_sequence_length: 2048, vocab_size: 324,
  bos_token_id: 0, eos_token_id: 1, pad_token_id: -1, mm_vision_tower: 'openai/clip-vit-large-patch14',
};
const deltaFacts = { dir: 'delta', config: delta, embedRows: 324, extraTokens: 4 };

t.test('v0 delta config with stale ids and max_sequence_length parses', async (t) => {
  const dir = t.testdir({ 'config.json': JSON.stringify({ ...delta, unknown_field: { x: 1 } }) });
  const c = await readLlmConfig(dir);
  t.equal(c.pad_token_id, -1);
  t.equal(contextLength(c), 2048);
  t.equal(c.rope_theta, undefined);
  await rejects(t, readLlmConfig(t.testdir({ 'config.json': JSON.stringify({ hidden_size: 64 }) })), 'ERR_FORMAT', /config\.json/);
  await rejects(t, readLlmConfig(t.testdir({})), 'ERR_FILE_NOT_FOUND');
});

t.test('the right base passes; Llama-2 and Vicuna are refused with ERR_WRONG_BASE', async (t) => {
  checkV0Base({ dir: 'base', config: llama1, embedRows: 320, addedTokens: 0 }, deltaFacts);
  t.pass('LLaMA-1 accepted');
  const cases: [string, Partial<LlmConfig>, number, number, RegExp][] = [
    ['llama2 ctx', { max_position_embeddings: 4096 }, 320, 0, /4096|Llama-2/],
    ['llama2 eps', { rms_norm_eps: 1e-5 }, 320, 0, /1e-5|Llama-2/],
    ['llama2 name', { _name_or_path: 'meta-llama/Llama-2-7b-hf' }, 320, 0, /Llama-2/],
    ['vicuna rows', { vocab_size: 321 }, 321, 1, /Vicuna/],
    ['vicuna name', { _name_or_path: 'lmsys/vicuna-7b-v1.3' }, 320, 0, /Vicuna/],
    ['size', { hidden_size: 128 }, 320, 0, /hidden_size/],
  ];
  for (const [what, patch, rows, added, re] of cases) {
    try {
      checkV0Base({ dir: 'base', config: { ...llama1, ...patch }, embedRows: rows, addedTokens: added }, deltaFacts);
      t.fail(`${what}: accepted`);
    } catch (e) {
      t.ok(isLlavaMedError(e, 'ERR_WRONG_BASE'), what);
      t.match((e as Error).message, re, what);
      t.match((e as Error).message, /LLaMA-7B \(LLaMA-1\)/, `${what}: says which base to use`);
    }
  }
});

t.test('CLIP folder: vision_config read, non-CLIP refused', async (t) => {
  const vision = { hidden_size: 32, intermediate_size: 64, num_attention_heads: 4, num_hidden_layers: 3, image_size: 28, patch_size: 14, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 };
  const dir = t.testdir({
    'config.json': JSON.stringify({ model_type: 'clip', vision_config: vision, text_config: {} }),
    'preprocessor_config.json': JSON.stringify({ image_mean: [0.1, 0.2, 0.3], image_std: [0.4, 0.5, 0.6], crop_size: 28 }),
  });
  const c = await readClipConfig(dir);
  t.equal(c.vision.num_hidden_layers, 3);
  t.same(c.imageMean, [0.1, 0.2, 0.3]);
  t.same(c.imageStd, [0.4, 0.5, 0.6]);
  const siglip = t.testdir({ 'config.json': JSON.stringify({ model_type: 'siglip', vision_config: vision }) });
  await rejects(t, readClipConfig(siglip), 'ERR_CONVERT', /not a CLIP/);
  const llama = t.testdir({ 'config.json': JSON.stringify(llama1) });
  await rejects(t, readClipConfig(llama), 'ERR_CONVERT', /language model/);
  const badCrop = t.testdir({
    'config.json': JSON.stringify({ model_type: 'clip', vision_config: vision }),
    'preprocessor_config.json': JSON.stringify({ crop_size: 224 }),
  });
  await rejects(t, readClipConfig(badCrop), 'ERR_FORMAT', /crop_size/);
});
