/** Public surface of lib/formats: pure-TS model file formats (no addon needed). */
export * from './tensor.js';
export * from './half.js';
export * from './gguf.js';
export { openSafetensors, writeSafetensors, type SafetensorsReader } from './safetensors.js';
export {
  unpickle, pickleToPlain, SAFE_GLOBALS, PickleObject, PickleGlobalRef, type PickleGlobal, type UnpickleOptions,
} from './unpickle.js';
export {
  openTorchZip, writeTorchZip, TORCH_GLOBALS, TORCH_STORAGE_DTYPES,
  type TorchCheckpointReader, type TorchTensorRef, type TorchStorageRef,
} from './torch.js';
export * from './sentencepiece.js';
export { openHfCheckpoint, writeHfCheckpoint, type WriteHfCheckpointOptions } from './hf-checkpoint.js';
