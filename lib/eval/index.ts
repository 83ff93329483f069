/**
 * `llava-med/eval`: the paper's evaluation, step by step — the functions the `llava-med eval` commands call.
 *
 * - prepare: {@link prepareDataset} turns VQA-RAD, SLAKE or PathVQA as published into a LLaVA test.json.
 * - answer: {@link answerQuestions} answers it with a loaded model (resumable, chunkable, parallel);
 *   {@link mergeChunks} joins the chunks' answer files.
 * - answer on many machines: {@link runQueue} puts the questions on a Redis queue (one job per image) and writes
 *   the answers file when they are all answered; {@link runQueueWorker} processes, anywhere, answer them
 *   ({@link modelIdentity} keeps one model per run).
 * - score: {@link evaluate} computes the original scripts' metrics, {@link formatScoreTable} prints them in the
 *   paper's layout, {@link writeReport} writes an HTML report.
 * - judge: {@link runJudge} and {@link summarizeReviews} run the GPT-assisted chat evaluation.
 *
 * Bad input is a `LlavaMedError` with a stable `code` (`ERR_EVAL`, `ERR_JUDGE`, `ERR_DATASET`, ...).
 * @module
 */
export { prepareDataset, type DatasetName, type PrepareOptions, type PrepareProgress, type PrepareResult } from './prepare/index.js';
export type { SplitCounts } from './prepare/common.js';
export type { TestEntry, ConversationTurn, AnswerLine } from './formats.js';
export { readTestFile, readAnswersFile, readCandidates, mergeChunks, type MergeResult } from './answers-file.js';
export { answerQuestions, type AnswerRunOptions, type AnswerRunResult, type AnswerProgress } from './answer.js';
export { selectChunk, type ChunkRequest, type ChunkSelection, type ChunkSource } from './chunks.js';
export { evaluate, scoreItems, type VqaMetrics, type EvaluateResult, type EvaluateOptions, type ItemScores } from './metrics/evaluate.js';
export { formatScoreTable, scoreJson, type PaperDataset, type ScoreTableInput, type ScoreTableOptions } from './score-table.js';
export { writeReport, type ReportOptions, type ReportResult } from './report.js';
export type { ChatClientOptions } from './judge/client.js';
export {
  runJudge, summarizeReviews, readChatQuestions, readReviews, SUMMARY_ORDER,
  type ChatQuestion, type JudgeAnswer, type JudgeOptions, type ReviewLine, type JudgeGroupScore,
} from './judge/run.js';
export { modelIdentity, identityDifferences, type ModelIdentity, type GgufIdentity, type RecordedModel } from './model-identity.js';
export {
  parseQueueUrl, runQueue, runQueueWorker, type QueueAddress, type QueueRunOptions, type QueueRunResult, type QueueProgress,
  type QueueNotice, type QueueFailure, type QueueWorkerOptions, type QueueWorkerResult, type QueueWorkerEvent, type RunGeneration,
} from './queue/index.js';
