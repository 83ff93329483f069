/**
 * Provenance and licence metadata written into both GGUF files. The files are derived works of LLaMA
 * (v0) or Mistral (v1.5) weights plus LLaVA-Med's research-use-only release; a file that travels alone
 * must still say what it came from and under which terms.
 */
import { basename } from 'node:path';
import type { GgufWriter } from '../formats/gguf.js';
import type { LlavaMedVariant } from './types.js';

export interface SourceRef {
  /** Role of the input: "base", "delta", "model", "vision". */
  role: string;
  /** Local folder (only its last component is recorded: full paths leak user directory layouts). */
  dir: string;
  /** The config's _name_or_path, when present. */
  nameOrPath?: string | undefined;
  /** Where the folder was downloaded from (llava-med pull): repository id, the revision asked for, its commit. */
  origin?: SourceOrigin | undefined;
}

/** Where an input folder came from on the Hugging Face Hub; recorded in the GGUFs' provenance metadata. */
export interface SourceOrigin {
  /** Repository id, e.g. `microsoft/llava-med-v1.5-mistral-7b`. */
  repo: string;
  /** The revision asked for (branch, tag or commit). */
  revision: string;
  /** The commit it resolved to. */
  commit: string;
}

export interface Provenance {
  name: string;
  description: string;
  /** SPDX-ish id for general.license. */
  license: string;
  licenseName: string;
  licenseNotice: string;
  sources: readonly SourceRef[];
}

const RESEARCH_TERMS =
  'LLaVA-Med is released by Microsoft for research use only: not for clinical or other deployed use, ' +
  'and not for commercial use (see the LLaVA-Med repository\'s terms and model card).';

export function defaultProvenance(variant: LlavaMedVariant, name: string, sources: readonly SourceRef[], what: 'model' | 'mmproj'): Provenance {
  const part = what === 'model' ? 'language model' : 'CLIP vision encoder and projector';
  if (variant === 'v0') {
    return {
      name,
      description: `LLaVA-Med v0 ${part}, converted by llava-med from the LLaMA-7B base and the LLaVA-Med delta.`,
      license: 'other',
      licenseName: 'LLaMA License + LLaVA-Med research-use terms',
      licenseNotice:
        'Contains weights derived from Meta\'s LLaMA (LLaMA-1), distributed under the LLaMA licence ' +
        '(non-commercial research use). ' + RESEARCH_TERMS +
        (what === 'mmproj' ? ' The vision encoder is OpenAI CLIP ViT-L/14 (MIT licence).' : ''),
      sources,
    };
  }
  return {
    name,
    description: `LLaVA-Med v1.5 (Mistral-7B) ${part}, converted by llava-med.`,
    license: 'apache-2.0',
    licenseName: 'Apache-2.0 (model card) + LLaVA-Med research-use terms',
    licenseNotice:
      'Based on Mistral-7B-Instruct-v0.2 (Apache-2.0). ' + RESEARCH_TERMS +
      (what === 'mmproj' ? ' The vision encoder is OpenAI CLIP ViT-L/14-336 (MIT licence).' : ''),
    sources,
  };
}

export function addProvenance(w: GgufWriter, p: Provenance): void {
  w.addString('general.name', p.name);
  w.addString('general.description', p.description);
  w.addString('general.license', p.license);
  w.addString('general.license.name', p.licenseName);
  w.addString('llava_med.license_notice', p.licenseNotice);
  w.addU32('general.base_model.count', p.sources.length);
  p.sources.forEach((s, i) => {
    w.addString(`general.base_model.${i}.name`, s.nameOrPath ?? basename(s.dir));
    w.addString(`llava_med.source.${s.role}`, basename(s.dir));
    if (s.nameOrPath) w.addString(`llava_med.source.${s.role}.name_or_path`, s.nameOrPath);
    if (s.origin) {
      w.addString(`llava_med.source.${s.role}.repo`, s.origin.repo);
      w.addString(`llava_med.source.${s.role}.revision`, s.origin.revision);
      w.addString(`llava_med.source.${s.role}.commit`, s.origin.commit);
    }
  });
}
