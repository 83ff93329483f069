/**
 * A GGUF pair laid out as llama.cpp's own legacy LLaVA scripts write it (convert.py / gguf-py with the
 * delta's added_tokens.json): the added tokens ([PAD], <im_patch>, <im_start>, <im_end>) typed
 * USER_DEFINED instead of CONTROL, and no llava_med.* keys (the engine then detects the variant from the
 * CLIP input size and takes </s> as the v0 prompt BOS). Tensors are copied as they are.
 */
import { GgufValueType, GgufWriter, readGgufHeader, readGgufTensorData } from '../../lib/formats/gguf.js';

const ADDED = new Set(['[PAD]', '<im_patch>', '<im_start>', '<im_end>']);
const USER_DEFINED = 4;

export async function writeLegacyLayout(src: string, dst: string): Promise<{ userDefined: number; droppedKeys: string[] }> {
  const h = await readGgufHeader(src);
  const w = await GgufWriter.create(dst);
  const tokens = h.kv.get('tokenizer.ggml.tokens')?.value as string[] | undefined;
  let userDefined = 0;
  const droppedKeys: string[] = [];
  for (const [key, kv] of h.kv) {
    if (key.startsWith('llava_med.')) {
      droppedKeys.push(key);
      continue;
    }
    if (key === 'tokenizer.ggml.token_type' && tokens) {
      const types = (kv.value as number[]).map((t, i) => {
        if (!ADDED.has(tokens[i]!)) return t;
        userDefined++;
        return USER_DEFINED;
      });
      w.addKv(key, kv.type, types, GgufValueType.INT32);
      continue;
    }
    w.addKv(key, kv.type, kv.value, kv.elemType);
  }
  for (const t of h.tensors) w.addTensorInfo(t.name, t.type, t.shape);
  await w.writeHeader();
  for (const t of h.tensors) await w.writeTensor(t.name, await readGgufTensorData(h, t.name));
  await w.finish();
  return { userDefined, droppedKeys };
}
