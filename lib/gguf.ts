/**
 * `llava-med/gguf`: read what a GGUF file holds without loading it — header, metadata and tensor
 * table through a bounded reader (a hostile or truncated file is a typed error, never a huge
 * allocation or a hang), and the summary `llava-med info` prints.
 */
export { describeGguf, type GgufSummary, type LanguageModelSummary, type MmprojSummary } from './formats/gguf-describe.js';
export {
  readGgufHeader,
  ggufHas,
  ggufString,
  ggufNumber,
  ggufBool,
  ggufArray,
  ggufStringArray,
  ggufNumberArray,
  ggufValue,
  ggufTensor,
  readGgufTensorData,
  type ReadGgufOptions,
} from './formats/gguf-read.js';
export { GgufValueType, GgmlType, ggmlTypeName, type GgufHeader, type GgufKv, type GgufCompactArray, type GgufTensorInfo, type GgufValue, type GgufScalar } from './formats/gguf-types.js';
