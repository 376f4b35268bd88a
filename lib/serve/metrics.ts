/**
 * The server's counters and histograms, rendered in the Prometheus text format (version 0.0.4)
 * for `GET /metrics`: requests by model and status, batch sizes, request latency, queue depth.
 */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

const label = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.buckets.forEach((b, i) => {
      if (value <= b) this.counts[i]++;
    });
    this.sum += value;
    this.count++;
  }
  render(name: string, labels: Record<string, string>): string {
    const l = label(labels);
    const lines = this.buckets.map((b, i) => `${name}_bucket{${l},le="${b}"} ${this.counts[i]}`);
    lines.push(
      `${name}_bucket{${l},le="+Inf"} ${this.count}`,
      `${name}_sum{${l}} ${this.sum}`,
      `${name}_count{${l}} ${this.count}`,
    );
    return lines.join('\n');
  }
}

export class Metrics {
  private readonly requests = new Map<string, number>(); // `${model}\0${code}`
  private readonly latency = new Map<string, Histogram>();
  private readonly batches = new Map<string, Histogram>();
  private readonly cancelledRuns = new Map<string, number>();

  request(model: string, status: number, seconds: number): void {
    const key = `${model}\0${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    if (status === 200) {
      if (!this.latency.has(model)) this.latency.set(model, new Histogram(LATENCY_BUCKETS));
      this.latency.get(model)!.observe(seconds);
    }
  }

  batch(model: string, samples: number): void {
    if (!this.batches.has(model)) this.batches.set(model, new Histogram(BATCH_BUCKETS));
    this.batches.get(model)!.observe(samples);
  }

  cancelled(model: string): void {
    this.cancelledRuns.set(model, (this.cancelledRuns.get(model) ?? 0) + 1);
  }

  /** The text of /metrics; `gauges` are read now (queue depth, runs in flight, threads). */
  render(gauges: { queue: Map<string, number>; running: Map<string, number>; threads: number }): string {
    const out: string[] = [];
    out.push('# HELP lowbit_requests_total Inference requests answered, by model and HTTP status.');
    out.push('# TYPE lowbit_requests_total counter');
    for (const [key, n] of [...this.requests].sort()) {
      const [model, code] = key.split('\0');
      out.push(`lowbit_requests_total{${label({ model, code })}} ${n}`);
    }
    out.push('# HELP lowbit_request_duration_seconds Time from a request read to its answer (status 200).');
    out.push('# TYPE lowbit_request_duration_seconds histogram');
    for (const [model, h] of this.latency) out.push(h.render('lowbit_request_duration_seconds', { model }));
    out.push('# HELP lowbit_batch_size Samples per model run.');
    out.push('# TYPE lowbit_batch_size histogram');
    for (const [model, h] of this.batches) out.push(h.render('lowbit_batch_size', { model }));
    out.push('# HELP lowbit_runs_cancelled_total Runs stopped because every client waiting for them left.');
    out.push('# TYPE lowbit_runs_cancelled_total counter');
    for (const [model, n] of this.cancelledRuns) out.push(`lowbit_runs_cancelled_total{${label({ model })}} ${n}`);
    out.push('# HELP lowbit_queue_depth Requests waiting to run.');
    out.push('# TYPE lowbit_queue_depth gauge');
    for (const [model, n] of gauges.queue) out.push(`lowbit_queue_depth{${label({ model })}} ${n}`);
    out.push('# HELP lowbit_runs_in_flight Batch runs computing now.');
    out.push('# TYPE lowbit_runs_in_flight gauge');
    for (const [model, n] of gauges.running) out.push(`lowbit_runs_in_flight{${label({ model })}} ${n}`);
    out.push('# HELP lowbit_threads Threads per model run.');
    out.push('# TYPE lowbit_threads gauge');
    out.push(`lowbit_threads ${gauges.threads}`);
    return `${out.join('\n')}\n`;
  }
}
