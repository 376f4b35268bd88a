/** ONNX import to the canonical float graph, and its float reference executor. */
export { importOnnx, type ImportOptions } from './import.js';
export { evaluate, type EvaluateOptions, type FloatTensor } from './evaluate.js';
export { ACTIVATION_OPS } from './canon.js';
export { FOLDABLE_OPS } from './fold.js';
export type * from './ir.js';
