/**
 * Dynamic batching for one model: requests wait in a bounded queue. When no run is in flight the
 * queue's head starts at once (a lone request waits for nobody); while one is, the head waits until
 * `maxBatch` samples are waiting or the oldest has waited `maxDelayMs`, so batches grow with the
 * load. The head is stacked along the batch dimension into one `model.run` and the outputs are
 * split back, so each request gets exactly what its own run would give (the model computes every
 * sample independently). The stacking happens on the pool thread (the run takes each input as a
 * list of the requests' arrays), so the event loop copies nothing however large the inputs. A request leaves the queue unrun when its deadline
 * passes (RequestError 504) or its signal aborts (its client left); a run whose clients have all
 * left is cancelled at its next node.
 */
import type { Model } from '../model/model.js';
import { RequestError, type InferRequest } from './protocol.js';

export interface BatcherOptions {
  /** samples per run; 1 turns batching off */
  maxBatch: number;
  /** how long the oldest request may wait for others while a run is in flight */
  maxDelayMs: number;
  /** requests waiting, beyond which new ones are refused (503) */
  maxQueue: number;
  /** batch runs in flight at once (one computing, one ready keeps the threads busy) */
  maxInflight: number;
}

export type Outputs = Map<string, { shape: number[]; data: Float32Array }>;

/** What the batcher tells the server's metrics. */
export interface BatcherEvents {
  batch(model: string, samples: number, requests: number): void;
  /** a run stopped because every client waiting for it left */
  cancelled(model: string): void;
}

interface Waiting {
  request: InferRequest;
  enqueued: number;
  resolve(outputs: Outputs): void;
  reject(error: unknown): void;
  timer?: NodeJS.Timeout;
  /** once running: the run's requests still waiting for it, and its cancel */
  run?: { waiting: number; cancel: AbortController };
}

export class Batcher {
  private readonly queue: Waiting[] = [];
  private inflight = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly name: string,
    readonly model: Model,
    private readonly options: BatcherOptions,
    private readonly events: BatcherEvents,
  ) {}

  /** Requests waiting (not yet running). */
  get depth(): number {
    return this.queue.length;
  }

  /** Batch runs computing now. */
  get running(): number {
    return this.inflight;
  }

  /**
   * Queues `request`; resolves with its outputs. `deadline` (a Date.now() time) and `signal` take it
   * out of the queue before it runs.
   * @throws RequestError 503 (with Retry-After) when the queue is full
   */
  submit(request: InferRequest, deadline?: number, signal?: AbortSignal): Promise<Outputs> {
    if (this.queue.length >= this.options.maxQueue)
      throw new RequestError(503, `model '${this.name}': the queue is full (${this.options.maxQueue} requests)`, {
        'retry-after': '1',
      });
    return new Promise<Outputs>((resolve, reject) => {
      const w: Waiting = { request, enqueued: Date.now(), resolve, reject };
      const leave = (error: unknown) => {
        const at = this.queue.indexOf(w);
        if (at >= 0) {
          this.queue.splice(at, 1);
          this.disarm(w);
        } else if (w.run) {
          if (--w.run.waiting === 0) {
            w.run.cancel.abort(error); // nobody waits for this run now
            this.events.cancelled(this.name);
          }
          w.run = undefined;
        } else return; // answered already
        reject(error);
      };
      if (signal?.aborted) return reject(signal.reason);
      if (deadline !== undefined) {
        const expired = new RequestError(504, `model '${this.name}': the deadline passed before the request ran`);
        const left = deadline - Date.now();
        if (left <= 0) return reject(expired);
        w.timer = setTimeout(() => leave(expired), left);
      }
      signal?.addEventListener('abort', () => leave(signal.reason), { once: true });
      this.queue.push(w);
      this.pump();
    });
  }

  /** Stops `w`'s deadline timer: it runs now, or has left the queue. */
  private disarm(w: Waiting): void {
    if (w.timer) clearTimeout(w.timer);
  }

  /** Starts what can start now, or arms the timer for when the oldest request's wait is over. */
  private pump(): void {
    while (this.queue.length > 0 && this.inflight < this.options.maxInflight) {
      const waited = Date.now() - this.queue[0].enqueued;
      const samples = this.queue.reduce((n, w) => n + w.request.batch, 0);
      if (this.inflight > 0 && samples < this.options.maxBatch && waited < this.options.maxDelayMs) {
        if (!this.timer)
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.pump();
          }, this.options.maxDelayMs - waited);
        return;
      }
      this.start(this.take());
    }
  }

  /** The queue's head: requests while their samples fit in maxBatch (at least one). */
  private take(): Waiting[] {
    const group: Waiting[] = [];
    let samples = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0].request.batch;
      if (group.length > 0 && samples + next > this.options.maxBatch) break;
      group.push(this.queue.shift()!);
      samples += next;
    }
    return group;
  }

  private start(group: Waiting[]): void {
    for (const w of group) this.disarm(w);
    const samples = group.reduce((n, w) => n + w.request.batch, 0);
    this.events.batch(this.name, samples, group.length);
    const inputs: Record<string, Float32Array[]> = {};
    this.model.inputs.forEach((t, i) => (inputs[t.name] = group.map((w) => w.request.inputs[i])));
    const run = { waiting: group.length, cancel: new AbortController() };
    for (const w of group) w.run = run;
    // Answers the requests still waiting for this run (one whose client left was rejected then).
    const answer = (settle: (w: Waiting, first: number) => void) => {
      let first = 0;
      for (const w of group) {
        if (w.run === run) {
          w.run = undefined;
          settle(w, first);
        }
        first += w.request.batch;
      }
    };
    this.inflight++;
    this.model.run(inputs, { signal: run.cancel.signal }).then(
      (out) => {
        answer((w, first) => {
          const outputs: Outputs = new Map();
          for (const t of this.model.outputs) {
            const per = t.sampleShape.reduce((a, b) => a * b, 1);
            const data = out[t.name].data as Float32Array;
            outputs.set(t.name, {
              shape: [w.request.batch, ...t.sampleShape],
              data: data.subarray(first * per, (first + w.request.batch) * per),
            });
          }
          w.resolve(outputs);
        });
        this.settled();
      },
      (error: unknown) => {
        answer((w) => w.reject(error));
        this.settled();
      },
    );
  }

  private settled(): void {
    this.inflight--;
    this.pump();
  }

  /** Refuses everything still queued (shutdown), with `error`. */
  drainQueue(error: unknown): void {
    for (const w of this.queue.splice(0)) {
      this.disarm(w);
      w.reject(error);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Resolves once nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.queue.length > 0 || this.inflight > 0) await new Promise((r) => setTimeout(r, 5));
  }
}
