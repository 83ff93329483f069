/** GGUF: the types, the bounded reader and the streaming writer, under one import. */
export * from './gguf-types.js';
export * from './gguf-read.js';
export * from './gguf-write.js';
