/** Shown by the CLI and the README: LLaVA-Med is a research model. */
export const RESEARCH_USE_NOTICE =
  'Research use only. LLaVA-Med is a research model: its answers can be wrong and must never be used for diagnosis, treatment or any other clinical decision.';
