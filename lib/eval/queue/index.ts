/** Queued evaluation over Redis (BullMQ): one producer, any number of workers on any machines. */
export { parseQueueUrl, type QueueAddress } from './connection.js';
export { runQueue, type QueueRunOptions, type QueueRunResult, type QueueProgress, type QueueNotice, type QueueFailure } from './producer.js';
export { runQueueWorker, type QueueWorkerOptions, type QueueWorkerResult, type QueueWorkerEvent } from './worker.js';
export type { RunGeneration } from './protocol.js';
