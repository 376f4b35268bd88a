/**
 * The conversion worker: runs convertOnnxSync off the caller's thread (convert.ts starts it) and
 * posts progress, then the result or the error, back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { cloneError } from '../errors.js';
import { convertOnnxSync, type ConvertOptions, type WorkerMessage } from './convert.js';

const { onnx, options } = workerData as { onnx: Uint8Array; options: ConvertOptions };
const post = (m: WorkerMessage, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(m, transfer);
try {
  const { bytes, report } = convertOnnxSync(onnx, {
    ...options,
    onProgress: (phase, done, total) => post({ kind: 'progress', phase, done, total }),
  });
  post({ kind: 'done', bytes, report }, [bytes.buffer as ArrayBuffer]);
} catch (e) {
  post({ kind: 'error', error: cloneError(e) });
}
