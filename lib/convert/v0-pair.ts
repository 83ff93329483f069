/**
 * The LLaMA-7B base + LLaVA-Med v0 delta pair, as both v0 outputs (GGUF in convertV0, an HF folder
 * in foldDelta) read it: configs and the delta's tokenizer first, then both checkpoints, checked
 * (HF LLaMA embeddings on both sides, an original LLaMA-1 base) and planned per apply_delta.py.
 */
import { join } from 'node:path';
import { llavaError } from '../errors.js';
import { openHfCheckpoint } from '../formats/hf-checkpoint.js';
import type { CheckpointReader } from '../formats/tensor.js';
import { checkV0Base } from './base-check.js';
import { planFold, type FoldEntry } from './delta-fold.js';
import { readLlmConfig, readOptionalJson, type LlmConfig } from './hf-config.js';
import { extraTokens, readHfTokenizer, type HfTokenizer } from './hf-tokenizer.js';

export interface V0Configs {
  baseCfg: LlmConfig;
  deltaCfg: LlmConfig;
  tokenizer: HfTokenizer;
  baseAdded: Record<string, unknown>;
}

export async function readV0Configs(baseDir: string, deltaDir: string): Promise<V0Configs> {
  const baseCfg = await readLlmConfig(baseDir);
  const deltaCfg = await readLlmConfig(deltaDir);
  const tokenizer = await readHfTokenizer(deltaDir);
  const baseAdded = ((await readOptionalJson(join(baseDir, 'added_tokens.json'))) ?? {}) as Record<string, unknown>;
  return { baseCfg, deltaCfg, tokenizer, baseAdded };
}

export interface V0Checkpoints {
  base: CheckpointReader;
  delta: CheckpointReader;
  plan: FoldEntry[];
}

/** Opens and checks both checkpoints; on any error the readers opened so far are closed. */
export async function openV0Checkpoints(baseDir: string, deltaDir: string, c: V0Configs): Promise<V0Checkpoints> {
  let base: CheckpointReader | undefined;
  let delta: CheckpointReader | undefined;
  try {
    const b = (base = await openHfCheckpoint(baseDir));
    const d = (delta = await openHfCheckpoint(deltaDir));
    const embed = 'model.embed_tokens.weight';
    if (!b.has(embed)) throw llavaError('ERR_WRONG_BASE', `${baseDir} has no ${embed}; it is not a LLaMA checkpoint in HF format.`);
    if (!d.has(embed)) throw llavaError('ERR_CONVERT', `${deltaDir} has no ${embed}; it is not a LLaVA-Med delta.`);
    checkV0Base(
      { dir: baseDir, config: c.baseCfg, embedRows: b.get(embed).shape[0]!, addedTokens: Object.keys(c.baseAdded).length },
      { dir: deltaDir, config: c.deltaCfg, embedRows: d.get(embed).shape[0]!, extraTokens: extraTokens(c.tokenizer).length },
    );
    return { base: b, delta: d, plan: planFold(b, d) };
  } catch (e) {
    await Promise.all([base?.close(), delta?.close()].map((p) => p?.catch(() => undefined)));
    throw e;
  }
}
