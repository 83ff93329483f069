/** Public API of the evaluation toolkit (metrics, formats, datasets, reports, GPT judge). */
export { normalizeWord, CONTRACTIONS, MANUAL_MAP, ARTICLES, PUNCT } from './metrics/glossary.js';
export { splitSentence, calculateF1score, calculateExactmatch, calculateAppearanceWithNormalization, type F1Result } from './metrics/scores.js';
export { sentenceBleu, DEFAULT_BLEU_WEIGHTS } from './metrics/bleu.js';
export { evaluate, scoreItems, type VqaMetrics, type EvaluateResult, type EvaluateOptions, type ItemScores } from './metrics/evaluate.js';
export { pyFixed } from './metrics/pystr.js';
export {
  TestEntrySchema, TestFileSchema, AnswerLineSchema, type TestEntry, type AnswerLine,
  testEntryQuestion, testEntryAnswer, answerPrompt, makeAnswerLine, shortUuid, SHORTUUID_ALPHABET,
  parseTestFile, parseAnswerLine, parseAnswersJsonl,
} from './formats.js';
export { AnswersFile, mergeChunks, readAnswersFile, readTestFile, idKey } from './answers-file.js';
export { splitChunks } from './chunks.js';
export { writeFileAtomic } from './atomic.js';
export { prepareDataset, type DatasetName, type PrepareOptions, type PrepareProgress, type PrepareResult } from './prepare/index.js';
export type { SplitCounts } from './prepare/common.js';
export { formatScoreTable, scoreJson, PAPER_RESULTS, DATASET_LABELS, type PaperDataset, type ScoreTableInput, type ScoreTableOptions } from './score-table.js';
export { writeReport, escapeHtml, type ReportOptions, type ReportResult } from './report.js';
export { JUDGE_SYSTEM_MESSAGE, INSTRUCT_PROMPT, convToStr, compareMessages, pyRepr, type ChatMessage } from './judge/prompt.js';
export { chatComplete, type ChatClientOptions } from './judge/client.js';
export {
  runJudge, summarizeReviews, parseScores, getDomain, readJsonl, ChatQuestionSchema, DOMAINS, SUMMARY_ORDER,
  type ChatQuestion, type JudgeOptions, type ReviewLine, type JudgeGroupScore,
} from './judge/run.js';
export { answerQuestions, type AnswerRunOptions, type AnswerRunResult, type AnswerProgress } from './answer.js';
