// serve-child.mjs LIB OPTIONS: a lowbit server in its own process, for test/serve-load.test.ts, so
// that what it measures (event-loop delay, memory) is the server's alone, not the load generator's.
// LIB is the compiled lib/index.js (test/helpers/compile-lib.ts); OPTIONS a JSON object:
// { models: { name: path }, ...createServer's other options }, or { bare: true }: a bare node:http
// server that reads every body and answers {} (what node:http itself costs the event loop). It
// prints one JSON line { port } once listening, then answers each line on stdin with one on stdout:
//   monitor  restarts the event-loop delay histogram (1 ms resolution): {}
//   delay    since `monitor`, in ms: the event-loop delay { max, p99, mean, count }, and `task`:
//            the longest top-level callback (with what it calls)

//   memory   after full collections (node --expose-gc), in MB: { rss, heap, buffers }
//   close    closes the server and disposes the models: {}; then the process exits on its own
import { createHook } from 'node:async_hooks';
import { createServer as httpServer } from 'node:http';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const [lib, optionsJson] = process.argv.slice(2);
const { loadModel } = await import(pathToFileURL(lib).href);
const { createServer } = await import(pathToFileURL(join(dirname(lib), 'serve/server.js')).href);
const { models: paths = {}, bare, ...options } = JSON.parse(optionsJson);
const models = Object.fromEntries(Object.entries(paths).map(([name, path]) => [name, loadModel(path)]));
const server = bare ? bareServer() : createServer({ models, ...options });

function bareServer() {
  const http = httpServer((req, res) => req.resume().on('end', () => res.end('{}')));
  return {
    listen: (port) => new Promise((resolve) => http.listen(port, '127.0.0.1', () => resolve(http.address()))),
    close: () => new Promise((resolve) => http.close(resolve).closeIdleConnections()),
  };
}
const say = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
say({ port: (await server.listen(0)).port });

const delay = monitorEventLoopDelay({ resolution: 1 });
const ms = (ns) => ns / 1e6;
// The event-loop delay counts what delays a 1 ms timer: a long callback of the server's own, but
// also one poll of the loop handing it 64 sockets' data, each request's callbacks in turn (a bare
// node:http server shows tens of ms so), and the OS running other threads on a busy machine. `task`
// is the longest top-level callback (an async_hooks before/after pair, with what it calls), the
// stall that one piece of the server's code causes; in wall-clock time too (per-thread CPU time
// from /proc is only as fine as the scheduler's 4 ms tick).
const task = { max: 0, depth: 0, start: 0 };
const tasks = createHook({
  before() {
    if (task.depth++ === 0) task.start = performance.now();
  },
  after() {
    if (--task.depth === 0) task.max = Math.max(task.max, performance.now() - task.start);
  },
});
const commands = {
  monitor() {
    delay.disable();
    delay.reset();
    delay.enable();
    tasks.disable();
    Object.assign(task, { max: 0, depth: 0 });
    tasks.enable();
    return {};
  },
  delay: () => ({
    max: ms(delay.max),
    p99: ms(delay.percentile(99)),
    mean: ms(delay.mean),
    count: delay.count,
    task: task.max,
  }),
  async memory() {
    // Twice: buffers whose last holders die in the first collection go in the second.
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
    globalThis.gc();
    const m = process.memoryUsage();
    return { rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20, buffers: m.arrayBuffers / 2 ** 20 };
  },
  async close() {
    delay.disable();
    tasks.disable();
    await server.close(1000);
    for (const model of Object.values(models)) model.dispose();
    return {};
  },
};
for await (const line of createInterface({ input: process.stdin })) {
  const command = commands[line.trim()];
  say(command ? await command() : { error: `unknown command '${line.trim()}'` });
}
