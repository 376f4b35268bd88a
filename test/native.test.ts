// Builds and runs the native C++ test binary (kernels vs reference, operators vs oracle) for
// this machine, the aarch64 build under qemu twice, as a Cortex-A72 (NEON without the dot
// product) and as a CPU with it (sdot kernels), so `npm test` covers the kernels that the addon
// does not select on this CPU, and the 32-bit armv7 build (scalar kernels) under qemu-arm.
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;

function run(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  return {
    status: r.status,
    signal: r.signal,
    output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`,
  };
}

// Every "N passed, M failed" line must report no failure: the aarch64 script runs the binary
// once per CPU model and prints one summary per run, so `runs` is how many there must be.
function expectAllPassed(r: { status: number | null; output: string }, runs = 1) {
  if (r.status !== 0) console.error(r.output);
  expect(r.status).toBe(0);
  const summaries = [...r.output.matchAll(/^(\d+) passed, (\d+) failed$/gm)];
  expect(summaries.length, r.output).toBe(runs);
  for (const summary of summaries) {
    expect(Number(summary[1]), r.output).toBeGreaterThan(0);
    expect(Number(summary[2]), r.output).toBe(0);
  }
}

function buildAndRun(dir: string, options: string[]) {
  const configure = run('cmake', ['-S', '.', '-B', dir, '-DLOWBIT_NATIVE_TESTS=ON', ...options]);
  expect(configure.status, configure.output).toBe(0);
  const build = run('cmake', ['--build', dir, '--target', 'lowbit_native_tests', '-j', String(cpus().length)]);
  expect(build.status, build.output).toBe(0);
  return run(`${dir}/lowbit_native_tests`, []);
}

// Runs a cross-build script; exit 77 means missing cross tools: a failure in CI (which installs
// them), a visible skip elsewhere.
function runCrossScript(ctx: { skip: () => void }, script: string) {
  const r = run('bash', [script]);
  if (r.status === 77) {
    if (process.env.CI) expect.fail(r.output);
    console.warn(r.output);
    ctx.skip();
  }
  return r;
}

describe('native tests', () => {
  it('host build: every supported ISA matches the reference and the oracle', () => {
    expectAllPassed(buildAndRun('build-native', ['-DCMAKE_BUILD_TYPE=Release']));
  }, 900_000);

  it('host build with AddressSanitizer and UndefinedBehaviorSanitizer: no memory or UB errors', () => {
    expectAllPassed(buildAndRun('build-native-asan', ['-DCMAKE_BUILD_TYPE=RelWithDebInfo', '-DLOWBIT_SANITIZE=ON']));
  }, 900_000);

  it('aarch64 build under qemu (Cortex-A72, then a dot-product CPU): NEON matches scalar and the reference', (ctx) => {
    expectAllPassed(runCrossScript(ctx, 'scripts/test-aarch64.sh'), 2);
  }, 900_000);

  it('armv7 (32-bit Arm) build under qemu (Cortex-A7): scalar kernels match the reference with a 32-bit size_t', (ctx) => {
    expectAllPassed(runCrossScript(ctx, 'scripts/test-armv7.sh'));
  }, 900_000);

  // The addon itself on armv7: the npm registry's armv7l Node (20.11) under qemu-arm loads the
  // cross-built addon and runs every shipped model, outputs equal to the host's bit for bit.
  it('armv7 addon under qemu-arm: every shipped model gives the host addon outputs', (ctx) => {
    const r = runCrossScript(ctx, 'scripts/test-armv7-addon.sh');
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/\d+ models, armv7 outputs equal the host's/);
  }, 900_000);
});
