/**
 * Parses large JSON request bodies on worker threads. A JSON tensor of one 224x224 RGB image is
 * about 3 MB of text and takes some 20 ms to parse and flatten: on the event loop, that would stall
 * every other request for as long. The workers return each input's `data` already flattened into a
 * Float32Array (transferred, not copied), which `decodeInferRequest` then checks as usual.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { flatten, RequestError } from './protocol.js';

/** JSON parts at least this long are parsed off the event loop (about 1 ms of work on it). */
export const OFF_LOOP_JSON_BYTES = 64 << 10;

// The worker: JSON.parse, then every inputs[i].data flattened (null when it is not all numbers).
// A module in a data: URL, so it runs the same from lib/*.ts (tests) and from dist/.
const WORKER_SOURCE = `
import { parentPort } from 'node:worker_threads';
${flatten.toString()}
parentPort.on('message', ({ id, text }) => {
  let json;
  try {
    json = JSON.parse(Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8'));
  } catch (error) {
    return parentPort.postMessage({ id, error: error.message });
  }
  const transfer = [];
  const inputs = json !== null && typeof json === 'object' && Array.isArray(json.inputs) ? json.inputs : [];
  for (const item of inputs) {
    if (item === null || typeof item !== 'object' || !Array.isArray(item.data)) continue;
    const values = [];
    item.data = flatten(item.data, values) ? Float32Array.from(values) : null;
    if (item.data) transfer.push(item.data.buffer);
  }
  parentPort.postMessage({ id, json }, transfer);
});
`;

const WORKER_URL = new URL(`data:text/javascript,${encodeURIComponent(WORKER_SOURCE)}`);

interface Pending {
  resolve(json: unknown): void;
  reject(error: unknown): void;
}

export class JsonDecoder {
  private readonly workers: { worker: Worker; pending: Map<number, Pending> }[] = [];
  private id = 0;

  /** `threads` workers, started on first use (default: half the cores, 1 to 4). */
  constructor(private readonly threads = Math.min(4, Math.max(1, availableParallelism() >> 1))) {}

  /**
   * The parsed JSON part of `body` (its first `length` bytes).
   * @throws RequestError (400) for malformed JSON
   */
  parse(body: Buffer, length: number): Promise<unknown> {
    // The worker gets its own copy of the JSON bytes (one memcpy, well under a millisecond).
    const text = Uint8Array.prototype.slice.call(body, 0, length);
    const slot = this.slot();
    const id = this.id++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, text }, [text.buffer as ArrayBuffer]);
    });
  }

  /** Stops the workers (the requests they hold are refused). */
  async close(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((s) => s.worker.terminate()));
  }

  /** A new worker while fewer than `threads` run, else the one with the fewest requests in hand. */
  private slot(): { worker: Worker; pending: Map<number, Pending> } {
    if (this.workers.length < this.threads) {
      const slot = { worker: new Worker(WORKER_URL), pending: new Map<number, Pending>() };
      slot.worker.unref(); // an idle decoder never keeps the process alive
      slot.worker.on('message', (m: { id: number; json?: unknown; error?: string }) => {
        const p = slot.pending.get(m.id);
        slot.pending.delete(m.id);
        if (m.error !== undefined) p?.reject(new RequestError(400, `malformed JSON in the request: ${m.error}`));
        else p?.resolve(m.json);
      });
      // A worker that dies (out of memory on a huge body) fails its requests; a new one replaces it.
      const fail = (error: unknown) => {
        const at = this.workers.indexOf(slot);
        if (at >= 0) this.workers.splice(at, 1);
        for (const p of slot.pending.values()) p.reject(error);
        slot.pending.clear();
      };
      slot.worker.on('error', fail);
      slot.worker.on('exit', (code) => fail(new Error(`the JSON decoder thread exited (${code})`)));
      this.workers.push(slot);
      return slot;
    }
    let best = this.workers[0];
    for (const s of this.workers) if (s.pending.size < best.pending.size) best = s;
    return best;
  }
}
