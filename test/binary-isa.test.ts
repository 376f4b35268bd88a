/**
 * Dispatch: every ISA this CPU supports gives byte-identical results to scalar (bitpack, weight
 * packing, bconv2d, bdense, bmaxpool2d), thread counts do not change results, and LOWBIT_ISA
 * forces (or cleanly refuses) an ISA at load time in a child process.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnNode } from './helpers/compile-lib.js';
import {
  bconv2d,
  bdense,
  bitpack,
  bmaxpool2d,
  isa,
  packBinaryConv2dWeights,
  packBinaryDenseWeights,
  setIsa,
  setThreads,
  supportedIsas,
  tensor,
  threads,
  type BMaxPool2dOptions,
  type Isa,
  type Tensor,
} from '../lib/index.js';
import { forceThreads } from './helpers/threads.js';
import { describeConv, randomConvCase, type ConvCase } from './helpers/cases.js';
import {
  AWKWARD_CHANNELS,
  bytesDiff,
  describeEpilogue,
  randomEpilogue,
  randomSource,
  toOutputOption,
  type Source,
} from './helpers/oracle.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('binary-isa');
const ISAS = supportedIsas();
const BEST = ISAS[ISAS.length - 1];
const ORIGINAL_ISA = isa();
const ORIGINAL_THREADS = threads();

afterAll(() => {
  setIsa(ORIGINAL_ISA);
  setThreads(ORIGINAL_THREADS);
});

/** Runs `fn` under each ISA (weights and inputs are packed inside fn, under that ISA too). */
function underEach<T extends { data: ArrayBufferView }>(isas: readonly Isa[], fn: () => T): Map<Isa, T> {
  const out = new Map<Isa, T>();
  for (const name of isas) {
    setIsa(name);
    expect(isa()).toBe(name);
    out.set(name, fn());
  }
  setIsa(ORIGINAL_ISA);
  return out;
}

function expectSameBytes(
  results: Map<string | number, { data: ArrayBufferView; shape: readonly number[] }>,
  ctx: string,
): void {
  const entries = [...results.entries()];
  const [refName, ref] = entries[0];
  for (const [name, r] of entries.slice(1)) {
    expect([...r.shape], `${ctx} shape ${name} vs ${refName}`).toEqual([...ref.shape]);
    expect(bytesDiff(r.data, ref.data), `${ctx}: ${name} vs ${refName}`).toBe('');
  }
}

// ---- random operands -------------------------------------------------------------------------------

function convRun(cs: ConvCase, kind: 'f32' | 's8' | 'b1', rng: Rng) {
  const cg = cs.c / cs.groups;
  const xSrc = randomSource(rng, cs.inDtype === 's8' ? 's8' : 'f32', cs.n * cs.h * cs.w * cs.c);
  const wSrc = randomSource(rng, cs.wDtype, cs.o * cs.kh * cs.kw * cg);
  const spec = randomEpilogue(rng, kind, cs.o, cs.kh * cs.kw * cg);
  const output = toOutputOption(spec, true);
  const run = () => {
    const xf = tensor(xSrc instanceof Int8Array ? 's8' : 'f32', [cs.n, cs.h, cs.w, cs.c], xSrc);
    const x: Tensor = cs.inDtype === 'b1' ? bitpack(xf) : xf;
    const w = packBinaryConv2dWeights(
      tensor(wSrc instanceof Int8Array ? 's8' : 'f32', [cs.o, cs.kh, cs.kw, cg], wSrc as Source),
      {
        groups: cs.groups,
      },
    );
    return bconv2d(x, w, { strides: [cs.sh, cs.sw], dilations: [cs.dh, cs.dw], padding: cs.padding, output });
  };
  return { run, ctx: `seed=${SEED} ${describeConv(cs)} out=${describeEpilogue(spec)}` };
}

function denseRun(rng: Rng, kind: 'f32' | 's8' | 'b1') {
  const rows = rng.pick([1, 1, 2, 3, 7, 8, 9, 17, 64]);
  const k = rng.pick([...AWKWARD_CHANNELS, 129, 255, 256, 257, 1000, 2048, 2049]);
  const o = rng.pick([1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200]);
  const xSrc = randomSource(rng, rng.pick(['f32', 's8'] as const), rows * k);
  const wSrc = randomSource(rng, rng.pick(['f32', 's8'] as const), o * k);
  const spec = randomEpilogue(rng, kind, o, k);
  const output = toOutputOption(spec, true);
  const run = () => {
    const x = tensor(xSrc instanceof Int8Array ? 's8' : 'f32', [rows, k], xSrc);
    const w = packBinaryDenseWeights(tensor(wSrc instanceof Int8Array ? 's8' : 'f32', [o, k], wSrc));
    return bdense(rng.bool() ? x : bitpack(x), w, { output });
  };
  return { run, ctx: `seed=${SEED} bdense x[${rows},${k}] w[${o},${k}] out=${describeEpilogue(spec)}` };
}

function poolRun(rng: Rng) {
  const c = rng.pick([...AWKWARD_CHANNELS, 129, 1000]);
  const kh = rng.int(1, 3),
    kw = rng.int(1, 3);
  const side = c > 128 ? rng.int(1, 8) : rng.int(1, 24);
  const h = Math.max(side, kh),
    w = Math.max(rng.bool(0.7) ? side : rng.int(1, 24), kw);
  const n = rng.int(1, 2);
  const padChoice = rng.int(0, 2);
  const options: BMaxPool2dOptions = {
    kernel: kh === kw && rng.bool() ? kh : [kh, kw],
    strides: rng.bool(0.3) ? undefined : [rng.int(1, 3), rng.int(1, 3)],
    padding:
      padChoice === 0
        ? 'valid'
        : padChoice === 1
          ? 'same'
          : [rng.int(0, kh - 1), rng.int(0, kw - 1), rng.int(0, kh - 1), rng.int(0, kw - 1)],
  };
  // a bias towards -1 so that ANDs over windows do come out 1 sometimes
  const src = randomSource(rng, 'f32', n * h * w * c).map((v) => (rng.bool(0.7) ? -Math.abs(v) - 0.5 : v));
  const run = () => bmaxpool2d(bitpack(tensor('f32', [n, h, w, c], src)), options);
  return { run, ctx: `seed=${SEED} bmaxpool2d x[${n},${h},${w},${c}] ${JSON.stringify(options)}` };
}

function packRun(rng: Rng) {
  const channels = rng.pick([...AWKWARD_CHANNELS, 2, 7, 8, 9, 31, 32, 33, 95, 96, 97, 129, 191, 192, 193, 1000, 1024]);
  const rows = rng.pick([1, 2, 3, 5, 17, 100]);
  const dtype = rng.pick(['f32', 's8'] as const);
  const src = randomSource(rng, dtype, rows * channels);
  const run = () => bitpack(tensor(dtype, [rows, channels], src));
  return { run, ctx: `seed=${SEED} bitpack ${dtype}[${rows},${channels}]` };
}

// ---- ISA equivalence --------------------------------------------------------------------------------

describe(`every supported ISA matches scalar bit for bit (${ISAS.join(', ')}; seed ${SEED})`, () => {
  it('reports scalar among the supported ISAs, best last, and the active one by default', () => {
    expect(ISAS[0]).toBe('scalar');
    expect(new Set(ISAS).size).toBe(ISAS.length);
    for (const name of ISAS) expect(['scalar', 'avx2', 'avx512', 'neon']).toContain(name);
    // unless LOWBIT_ISA forced one, the default is the best
    if (!process.env.LOWBIT_ISA) expect(ORIGINAL_ISA).toBe(BEST);
    if (process.arch === 'x64') expect(ISAS).not.toContain('neon');
    if (process.arch === 'arm64') expect(ISAS).toContain('neon');
    // avx512 (VNNI) runs the avx2 kernels of the families without AVX-512 ones: it comes right after avx2
    if (ISAS.includes('avx512')) expect(ISAS.indexOf('avx512')).toBe(ISAS.indexOf('avx2') + 1);
    if (process.arch === 'arm64') expect(ISAS).not.toContain('avx512');
  });

  it('setIsa switches what isa() reports', () => {
    for (const name of ISAS) {
      setIsa(name);
      expect(isa()).toBe(name);
    }
    setIsa(ORIGINAL_ISA);
  });

  for (let i = 0; i < 40; ++i) {
    const rng = rngFor(SEED, `isa conv ${i}`);
    const cs = randomConvCase(rng, 4_000_000);
    const kind = (['f32', 's8', 'b1'] as const)[i % 3];
    it(`bconv2d ${kind} #${i}: ${describeConv(cs)}`, () => {
      const { run, ctx } = convRun(cs, kind, rngFor(SEED, `isa conv data ${i}`));
      expectSameBytes(underEach(ISAS, run), ctx);
    });
  }

  it('bconv2d: deep K (5x5x512, > 31 AVX2 accumulation steps) and every output-column remainder', () => {
    const rng = rngFor(SEED, 'isa deep');
    for (const o of [1, 7, 8, 9, 15, 16, 17, 65]) {
      const cs = randomConvCase(rng, 1e9, [512]);
      const deep: ConvCase = {
        ...cs,
        kh: 5,
        kw: 5,
        dh: 1,
        dw: 1,
        sh: 1,
        sw: 1,
        h: 3,
        w: 3,
        o,
        groups: 1,
        paddingKind: 'same-zero',
        pads: [2, 2, 2, 2],
        padding: 'same-zero',
        padValue: 'zero',
      };
      for (const kind of ['f32', 's8', 'b1'] as const) {
        const { run, ctx } = convRun(deep, kind, rng);
        expectSameBytes(underEach(ISAS, run), ctx);
      }
    }
  });

  for (let i = 0; i < 24; ++i) {
    const kind = (['f32', 's8', 'b1'] as const)[i % 3];
    it(`bdense ${kind} #${i}`, () => {
      const { run, ctx } = denseRun(rngFor(SEED, `isa dense ${i}`), kind);
      expectSameBytes(underEach(ISAS, run), ctx);
    });
  }

  it('bitpack f32 and s8, awkward channel counts and special values', () => {
    for (let i = 0; i < 60; ++i) {
      const { run, ctx } = packRun(rngFor(SEED, `isa pack ${i}`));
      expectSameBytes(underEach(ISAS, run), ctx);
    }
  });

  it('bmaxpool2d on awkward shapes', () => {
    for (let i = 0; i < 40; ++i) {
      const { run, ctx } = poolRun(rngFor(SEED, `isa pool ${i}`));
      expectSameBytes(underEach(ISAS, run), ctx);
    }
  });
});

// ---- threads -------------------------------------------------------------------------------------------

describe(`results do not depend on the thread count (seed ${SEED})`, () => {
  const counts = [1, 2, 3, 8];

  function underThreads<T extends { data: ArrayBufferView }>(fn: () => T): Map<number, T> {
    const out = new Map<number, T>();
    for (const n of counts) {
      forceThreads(n);
      expect(threads()).toBe(n);
      out.set(n, fn());
    }
    setThreads(ORIGINAL_THREADS);
    return out;
  }

  it('setThreads changes threads()', () => {
    setThreads(1);
    expect(threads()).toBe(1);
    forceThreads(2);
    expect(threads()).toBe(2);
    setThreads(ORIGINAL_THREADS);
    expect(threads()).toBe(ORIGINAL_THREADS);
  });

  it('bconv2d: random shapes, and few pixels x many channels (split by channel chunks)', () => {
    for (let i = 0; i < 16; ++i) {
      const rng = rngFor(SEED, `threads conv ${i}`);
      let cs = randomConvCase(rng, 3_000_000);
      if (i < 4)
        cs = {
          ...randomConvCase(rng, 1e9, [64, 128]),
          h: 1,
          w: 1,
          kh: 1,
          kw: 1,
          o: 200 + 64 * i,
          groups: 1,
          paddingKind: 'valid',
          pads: [0, 0, 0, 0],
          padding: 'valid',
          sh: 1,
          sw: 1,
          dh: 1,
          dw: 1,
        };
      const { run, ctx } = convRun(cs, (['f32', 's8', 'b1'] as const)[i % 3], rng);
      expectSameBytes(underThreads(run), ctx);
    }
  });

  it('bdense, bitpack and bmaxpool2d', () => {
    for (let i = 0; i < 12; ++i) {
      const rng = rngFor(SEED, `threads misc ${i}`);
      for (const { run, ctx } of [denseRun(rng, (['f32', 's8', 'b1'] as const)[i % 3]), packRun(rng), poolRun(rng)])
        expectSameBytes(underThreads(run), ctx);
    }
  });

  it('every ISA x thread count agrees on one larger conv', () => {
    const rng = rngFor(SEED, 'isa x threads');
    const cs = randomConvCase(rng, 1e9, [128]);
    const big: ConvCase = {
      ...cs,
      h: 20,
      w: 20,
      kh: 3,
      kw: 3,
      o: 96,
      groups: 2,
      paddingKind: 'same-zero',
      sh: 1,
      sw: 1,
      dh: 1,
      dw: 1,
      pads: [1, 1, 1, 1],
      padding: 'same-zero',
      padValue: 'zero',
    };
    const { run, ctx } = convRun(big, 's8', rng);
    const all = new Map<string, ReturnType<typeof run>>();
    for (const name of ISAS)
      for (const n of [1, 2, 5]) {
        setIsa(name);
        forceThreads(n);
        all.set(`${name}/${n}`, run());
      }
    setIsa(ORIGINAL_ISA);
    setThreads(ORIGINAL_THREADS);
    expectSameBytes(all, ctx);
  });
});

// ---- LOWBIT_ISA at load -----------------------------------------------------------------------------------

describe('LOWBIT_ISA in a fresh process', () => {
  const root = resolve(fileURLToPath(import.meta.url), '../..');
  const addon = process.env.LOWBIT_ADDON_PATH || resolve(root, 'build/Release/lowbit.node');
  const load = `import { createRequire } from 'node:module';
const addon = createRequire(import.meta.url)(process.env.LOWBIT_TEST_ADDON);`;

  function child(isaValue: string | undefined, script: string) {
    const env: NodeJS.ProcessEnv = { ...process.env, LOWBIT_TEST_ADDON: addon };
    delete env.LOWBIT_ISA;
    if (isaValue !== undefined) env.LOWBIT_ISA = isaValue;
    const r = spawnNode(['--input-type=module', '-e', `${load}\n${script}`], {
      env,
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, error: r.error };
  }

  const report = `console.log(JSON.stringify({ isa: addon.isa(), supported: addon.supportedIsas() }));`;

  it('LOWBIT_ISA=scalar forces scalar', () => {
    const r = child('scalar', report);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ isa: 'scalar', supported: ISAS });
  });

  it('LOWBIT_ISA unset or empty selects the best ISA; set to the best selects it', () => {
    for (const value of [undefined, '', BEST]) {
      const r = child(value, report);
      expect(r.status, `LOWBIT_ISA=${value}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout).isa, `LOWBIT_ISA=${value}`).toBe(BEST);
    }
  });

  const foreign = process.arch === 'arm64' ? 'avx2' : 'neon';

  it(`LOWBIT_ISA=${foreign} on ${process.arch}: require fails with a clear uncaught error (exit 1, no signal)`, () => {
    const r = child(foreign, report);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`LOWBIT_ISA=${foreign}`));
    expect(r.stderr).toMatch(/not support/);
    expect(r.stderr).not.toMatch(/FATAL ERROR|Segmentation|Aborted|core dumped/);
  });

  it(`LOWBIT_ISA=${foreign}: the load error is catchable and tagged LOWBIT_UNSUPPORTED`, () => {
    // no top-level load here: the require runs inside try/catch
    const r = spawnNode(
      [
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module';
let out;
try { createRequire(import.meta.url)(process.env.LOWBIT_TEST_ADDON); out = { loaded: true }; }
catch (e) { out = { name: e.name, code: e.code, message: e.message, isError: e instanceof Error }; }
console.log(JSON.stringify(out));`,
      ],
      { env: { ...process.env, LOWBIT_TEST_ADDON: addon, LOWBIT_ISA: foreign }, encoding: 'utf8', timeout: 30_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ isError: true, code: 'LOWBIT_UNSUPPORTED' });
    expect(out.message).toMatch(new RegExp(`LOWBIT_ISA=${foreign}.*not support`));
  });

  it('LOWBIT_ISA=bogus: require fails cleanly, and the message names LOWBIT_ISA and the valid values', () => {
    const r = child('bogus', report);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).not.toMatch(/FATAL ERROR|Segmentation|Aborted|core dumped/);
    expect(r.stderr).toMatch(/bogus/);
    expect(r.stderr).toMatch(/scalar, avx2, avx512, neon/);
    // The user set an environment variable; the error must say which one.
    expect(r.stderr).toMatch(/LOWBIT_ISA/);
  });
});
