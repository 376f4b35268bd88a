// Calls the raw addon with garbage arguments, one case at a time, and prints one JSON line per
// case: { name, expected, threw, code, errorName, message }. Run in a child process by
// test/binary-errors.test.ts, so a native crash is a failed test with the case named (each case
// is announced on stderr before it runs). Usage: node native-garbage.mjs [case-name-filter]
import { createRequire } from 'node:module';

const addon = createRequire(import.meta.url)(process.env.LOWBIT_ADDON_PATH);
const filter = process.argv[2];

const f32 = (n) => new Float32Array(n);
const detached = (Ctor, n) => {
  const a = new Ctor(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
};
const h3 = addon.packBinaryConv2dWeights(f32(8 * 9 * 64), [8, 3, 3, 64], 1); // 3x3, 64 -> 8
const h1 = addon.packBinaryConv2dWeights(f32(8 * 64), [8, 1, 1, 64], 1); // dense 64 -> 8
const x = new BigUint64Array(1 * 4 * 4 * 1); // [1, 4, 4, 64]
const shape = [1, 4, 4, 64];
const geometry = { strides: [1, 1], dilations: [1, 1], pads: [0, 0, 0, 0], padValue: 'one' };
const f32out = { kind: 'f32' };
const conv = (over = {}) => {
  const a = { input: x, shape, weights: h3, geometry, output: f32out, async: false, ...over };
  return addon.bconv2d(a.input, a.shape, a.weights, a.geometry, a.output, { async: a.async });
};
// the conv geometry with some fields replaced (a field set to undefined is missing)
const convGeometry = (over) => ({ ...geometry, ...over });
const dense = (over = {}) => {
  const a = { input: new BigUint64Array(2), rows: 2, inC: 64, weights: h1, output: f32out, ...over };
  return addon.bdense(a.input, a.rows, a.inC, a.weights, a.output, { async: false });
};
const poolWindow = { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0] };
const pool = (over = {}) => {
  const a = { input: x, shape, geometry: poolWindow, ...over };
  return addon.bmaxpool2d(a.input, a.shape, a.geometry, false);
};
const poolGeometry = (over) => ({ ...poolWindow, ...over });
// the integer conv and pools read their geometry through the same helpers
const q3 = addon.packQConv2dWeights(new Int8Array(8 * 9 * 4), [8, 3, 3, 4], 1, 8); // 3x3, 4 -> 8
const qconv = (geometryOver) =>
  addon.qconv2d(
    new Int8Array(4 * 4 * 4),
    [1, 4, 4, 4],
    q3,
    { strides: [1, 1], dilations: [1, 1], pads: [0, 0, 0, 0], ...geometryOver },
    { dtype: 's32', inputZeroPoint: 0 },
    { async: false },
  );
const qpool = (geometryOver) =>
  addon.qmaxpool2d(new Int8Array(4 * 4 * 4), [1, 4, 4, 4], poolGeometry(geometryOver), false);

/** [name, expected error code ('LOWBIT_*', or 'any' for any Error), call] */
const cases = [
  // runtime
  ['setIsa()', 'LOWBIT_TYPE', () => addon.setIsa()],
  ['setIsa(5)', 'LOWBIT_TYPE', () => addon.setIsa(5)],
  ["setIsa('')", 'LOWBIT_RANGE', () => addon.setIsa('')],
  ["setIsa('AVX2')", 'LOWBIT_RANGE', () => addon.setIsa('AVX2')],
  ['setThreads()', 'LOWBIT_TYPE', () => addon.setThreads()],
  ["setThreads('2')", 'LOWBIT_TYPE', () => addon.setThreads('2')],
  ['setThreads(0)', 'LOWBIT_RANGE', () => addon.setThreads(0)],
  ['setThreads(-1)', 'LOWBIT_RANGE', () => addon.setThreads(-1)],
  ['setThreads(1.5)', 'LOWBIT_RANGE', () => addon.setThreads(1.5)],
  ['setThreads(NaN)', 'LOWBIT_RANGE', () => addon.setThreads(NaN)],
  ['setThreads(1e6)', 'LOWBIT_RANGE', () => addon.setThreads(1e6)],
  ['setThreads(2**64)', 'LOWBIT_RANGE', () => addon.setThreads(2 ** 64)],
  // weights
  ['pack()', 'LOWBIT_TYPE', () => addon.packBinaryConv2dWeights()],
  ['pack missing groups', 'LOWBIT_TYPE', () => addon.packBinaryConv2dWeights(f32(4), [1, 1, 1, 4])],
  ['pack groups 0', 'LOWBIT_SHAPE', () => addon.packBinaryConv2dWeights(f32(4), [1, 1, 1, 4], 0)],
  ['pack groups 3 of 4 outputs', 'LOWBIT_SHAPE', () => addon.packBinaryConv2dWeights(f32(4), [4, 1, 1, 1], 3)],
  ['pack shape rank 3', 'LOWBIT_SHAPE', () => addon.packBinaryConv2dWeights(f32(4), [1, 1, 4], 1)],
  ['pack shape not an array', 'LOWBIT_TYPE', () => addon.packBinaryConv2dWeights(f32(4), '1,1,1,4', 1)],
  ['pack shape -1', 'LOWBIT_RANGE', () => addon.packBinaryConv2dWeights(f32(4), [1, 1, -1, 4], 1)],
  ['pack shape 0', 'LOWBIT_SHAPE', () => addon.packBinaryConv2dWeights(f32(0), [0, 1, 1, 4], 1)],
  ['pack shape string entry', 'LOWBIT_TYPE', () => addon.packBinaryConv2dWeights(f32(4), [1, 1, 1, '4'], 1)],
  ['pack data too short', 'LOWBIT_SHAPE', () => addon.packBinaryConv2dWeights(f32(3), [1, 1, 1, 4], 1)],
  ['pack data too long', 'LOWBIT_SHAPE', () => addon.packBinaryConv2dWeights(f32(5), [1, 1, 1, 4], 1)],
  ['pack data Float64Array', 'LOWBIT_TYPE', () => addon.packBinaryConv2dWeights(new Float64Array(4), [1, 1, 1, 4], 1)],
  ['pack data plain array', 'LOWBIT_TYPE', () => addon.packBinaryConv2dWeights([1, 2, 3, 4], [1, 1, 1, 4], 1)],
  [
    'pack data detached',
    'LOWBIT_TYPE',
    () => addon.packBinaryConv2dWeights(detached(Float32Array, 4), [1, 1, 1, 4], 1),
  ],
  [
    'pack shape product overflows',
    'LOWBIT_RANGE',
    () => addon.packBinaryConv2dWeights(f32(1), [2 ** 53 - 1, 2 ** 53 - 1, 1, 1], 1),
  ],
  [
    'pack kbits over the limit',
    'LOWBIT_RANGE',
    () => addon.packBinaryConv2dWeights(new Int8Array(4097 * 4097), [1, 4097, 4097, 1], 1),
  ],
  // bitpack
  ['bitpack()', 'LOWBIT_TYPE', () => addon.bitpack()],
  ['bitpack no rows', 'LOWBIT_TYPE', () => addon.bitpack(f32(4))],
  ['bitpack Int16Array', 'LOWBIT_TYPE', () => addon.bitpack(new Int16Array(4), 1, 4, false)],
  ['bitpack string', 'LOWBIT_TYPE', () => addon.bitpack('abcd', 1, 4, false)],
  ['bitpack detached', 'LOWBIT_TYPE', () => addon.bitpack(detached(Float32Array, 4), 1, 4, false)],
  ['bitpack detached async', 'LOWBIT_TYPE', () => addon.bitpack(detached(Int8Array, 4), 1, 4, true)],
  ['bitpack length mismatch', 'LOWBIT_SHAPE', () => addon.bitpack(f32(4), 2, 3, false)],
  ['bitpack rows -1', 'LOWBIT_RANGE', () => addon.bitpack(f32(4), -1, 4, false)],
  ['bitpack rows x channels overflow', 'LOWBIT_RANGE', () => addon.bitpack(f32(4), 2 ** 53 - 1, 2 ** 53 - 1, false)],
  // bconv2d
  ['bconv2d()', 'LOWBIT_TYPE', () => addon.bconv2d()],
  ['bconv2d input detached', 'LOWBIT_TYPE', () => conv({ input: detached(BigUint64Array, 16) })],
  ['bconv2d input detached async', 'LOWBIT_TYPE', () => conv({ input: detached(BigUint64Array, 16), async: true })],
  ['bconv2d input BigInt64Array', 'LOWBIT_TYPE', () => conv({ input: new BigInt64Array(16) })],
  ['bconv2d input Float32Array', 'LOWBIT_TYPE', () => conv({ input: f32(16) })],
  ['bconv2d input too short', 'LOWBIT_SHAPE', () => conv({ input: new BigUint64Array(15) })],
  ['bconv2d input too long', 'LOWBIT_SHAPE', () => conv({ input: new BigUint64Array(17) })],
  ['bconv2d shape rank 3', 'LOWBIT_SHAPE', () => conv({ shape: [4, 4, 64] })],
  ['bconv2d shape strings', 'LOWBIT_TYPE', () => conv({ shape: ['1', '4', '4', '64'] })],
  ['bconv2d shape zero dim', 'LOWBIT_SHAPE', () => conv({ shape: [1, 0, 4, 64], input: new BigUint64Array(0) })],
  ['bconv2d shape overflows', 'LOWBIT_RANGE', () => conv({ shape: [2 ** 53 - 1, 2 ** 53 - 1, 1, 64], weights: h1 })],
  ['bconv2d channel mismatch', 'LOWBIT_SHAPE', () => conv({ shape: [1, 4, 4, 65], input: new BigUint64Array(32) })],
  [
    'bconv2d kernel larger than input',
    'LOWBIT_SHAPE',
    () => conv({ shape: [1, 2, 2, 64], input: new BigUint64Array(4) }),
  ],
  ['bconv2d weights {}', 'LOWBIT_TYPE', () => conv({ weights: {} })],
  ['bconv2d weights null', 'LOWBIT_TYPE', () => conv({ weights: null })],
  ['bconv2d weights lookalike', 'LOWBIT_TYPE', () => conv({ weights: { bytes: h3.bytes } })],
  ['bconv2d weights Object.create(handle)', 'any', () => conv({ weights: Object.create(h3) })],
  ['bconv2d geometry missing', 'LOWBIT_TYPE', () => conv({ geometry: undefined })],
  ['bconv2d geometry not an object', 'LOWBIT_TYPE', () => conv({ geometry: 1 })],
  ['bconv2d geometry null', 'LOWBIT_TYPE', () => conv({ geometry: null })],
  ['bconv2d geometry positional array', 'LOWBIT_TYPE', () => conv({ geometry: [1, 1, 1, 1, 0, 0, 0, 0, 0] })],
  ['bconv2d strides missing', 'LOWBIT_TYPE', () => conv({ geometry: convGeometry({ strides: undefined }) })],
  ['bconv2d dilations missing', 'LOWBIT_TYPE', () => conv({ geometry: convGeometry({ dilations: undefined }) })],
  ['bconv2d pads missing', 'LOWBIT_TYPE', () => conv({ geometry: convGeometry({ pads: undefined }) })],
  ['bconv2d strides not an array', 'LOWBIT_TYPE', () => conv({ geometry: convGeometry({ strides: 1 }) })],
  ['bconv2d strides string entry', 'LOWBIT_TYPE', () => conv({ geometry: convGeometry({ strides: ['1', 1] }) })],
  ['bconv2d strides length 1', 'LOWBIT_SHAPE', () => conv({ geometry: convGeometry({ strides: [1] }) })],
  ['bconv2d dilations length 3', 'LOWBIT_SHAPE', () => conv({ geometry: convGeometry({ dilations: [1, 1, 1] }) })],
  ['bconv2d pads length 3', 'LOWBIT_SHAPE', () => conv({ geometry: convGeometry({ pads: [0, 0, 0] }) })],
  ['bconv2d stride NaN', 'LOWBIT_RANGE', () => conv({ geometry: convGeometry({ strides: [NaN, 1] }) })],
  ['bconv2d stride 1.5', 'LOWBIT_RANGE', () => conv({ geometry: convGeometry({ strides: [1, 1.5] }) })],
  ['bconv2d stride -1', 'LOWBIT_RANGE', () => conv({ geometry: convGeometry({ strides: [-1, 1] }) })],
  ['bconv2d stride 2^53', 'LOWBIT_RANGE', () => conv({ geometry: convGeometry({ strides: [2 ** 53, 1] }) })],
  ['bconv2d stride 0', 'LOWBIT_RANGE', () => conv({ geometry: convGeometry({ strides: [0, 1] }) })],
  ['bconv2d dilation 0', 'LOWBIT_RANGE', () => conv({ geometry: convGeometry({ dilations: [0, 1] }) })],
  ['bconv2d pad -1', 'LOWBIT_RANGE', () => conv({ geometry: convGeometry({ pads: [0, -1, 0, 0] }) })],
  ['bconv2d padValue missing', 'LOWBIT_TYPE', () => conv({ geometry: convGeometry({ padValue: undefined }) })],
  ['bconv2d padValue 1', 'LOWBIT_TYPE', () => conv({ geometry: convGeometry({ padValue: 1 }) })],
  ["bconv2d padValue 'two'", 'LOWBIT_RANGE', () => conv({ geometry: convGeometry({ padValue: 'two' }) })],
  ["bconv2d padValue 'ZERO'", 'LOWBIT_RANGE', () => conv({ geometry: convGeometry({ padValue: 'ZERO' }) })],
  ['bconv2d pad >= kernel', 'LOWBIT_RANGE', () => conv({ geometry: convGeometry({ pads: [3, 0, 0, 0] }) })],
  ['bconv2d huge pads', 'LOWBIT_RANGE', () => conv({ geometry: convGeometry({ pads: [2 ** 53 - 1, 0, 0, 0] }) })],
  ['bconv2d huge dilation', 'any', () => conv({ geometry: convGeometry({ dilations: [2 ** 53 - 1, 2 ** 53 - 1] }) })],
  ['bconv2d output missing', 'LOWBIT_TYPE', () => conv({ output: undefined })],
  ['bconv2d output kind f16', 'LOWBIT_RANGE', () => conv({ output: { kind: 'f16' } })],
  ['bconv2d f32 scale short', 'LOWBIT_SHAPE', () => conv({ output: { kind: 'f32', scale: f32(7) } })],
  [
    'bconv2d f32 scale Float64Array',
    'LOWBIT_TYPE',
    () => conv({ output: { kind: 'f32', scale: new Float64Array(8) } }),
  ],
  [
    'bconv2d f32 scale detached',
    'LOWBIT_TYPE',
    () => conv({ output: { kind: 'f32', scale: detached(Float32Array, 8) } }),
  ],
  ['bconv2d f32 bias NaN', 'LOWBIT_RANGE', () => conv({ output: { kind: 'f32', bias: f32(8).fill(NaN) } })],
  ['bconv2d f32 scale Infinity', 'LOWBIT_RANGE', () => conv({ output: { kind: 'f32', scale: f32(8).fill(Infinity) } })],
  ['bconv2d f32 lo NaN', 'LOWBIT_RANGE', () => conv({ output: { kind: 'f32', lo: NaN } })],
  ['bconv2d f32 lo > hi', 'LOWBIT_RANGE', () => conv({ output: { kind: 'f32', lo: 1, hi: 0 } })],
  ["bconv2d f32 lo '0'", 'LOWBIT_TYPE', () => conv({ output: { kind: 'f32', lo: '0' } })],
  ['bconv2d s8 no multiplier', 'LOWBIT_TYPE', () => conv({ output: { kind: 's8', shift: new Uint8Array(8) } })],
  [
    'bconv2d s8 shift 63',
    'LOWBIT_RANGE',
    () => conv({ output: { kind: 's8', multiplier: new Int32Array(8), shift: new Uint8Array(8).fill(63) } }),
  ],
  [
    'bconv2d s8 multiplier INT32_MIN',
    'LOWBIT_RANGE',
    () => conv({ output: { kind: 's8', multiplier: new Int32Array(8).fill(-(2 ** 31)), shift: new Uint8Array(8) } }),
  ],
  [
    'bconv2d s8 clamp -129',
    'LOWBIT_RANGE',
    () => conv({ output: { kind: 's8', multiplier: new Int32Array(8), shift: new Uint8Array(8), lo: -129 } }),
  ],
  [
    'bconv2d s8 clamp 0.5',
    'LOWBIT_RANGE',
    () => conv({ output: { kind: 's8', multiplier: new Int32Array(8), shift: new Uint8Array(8), hi: 0.5 } }),
  ],
  [
    'bconv2d s8 shift Int8Array',
    'LOWBIT_TYPE',
    () => conv({ output: { kind: 's8', multiplier: new Int32Array(8), shift: new Int8Array(8) } }),
  ],
  ['bconv2d b1 no threshold', 'LOWBIT_TYPE', () => conv({ output: { kind: 'b1' } })],
  ['bconv2d b1 threshold short', 'LOWBIT_SHAPE', () => conv({ output: { kind: 'b1', threshold: new Int32Array(7) } })],
  [
    'bconv2d b1 flip 2',
    'LOWBIT_RANGE',
    () => conv({ output: { kind: 'b1', threshold: new Int32Array(8), flip: new Uint8Array(8).fill(2) } }),
  ],
  // bdense
  ['bdense()', 'LOWBIT_TYPE', () => addon.bdense()],
  ['bdense rows 0', 'LOWBIT_SHAPE', () => dense({ rows: 0, input: new BigUint64Array(0) })],
  ['bdense 3x3 weights', 'LOWBIT_SHAPE', () => dense({ weights: h3 })],
  ['bdense features mismatch', 'LOWBIT_SHAPE', () => dense({ inC: 65 })],
  ['bdense input short', 'LOWBIT_SHAPE', () => dense({ input: new BigUint64Array(1) })],
  ['bdense input detached', 'LOWBIT_TYPE', () => dense({ input: detached(BigUint64Array, 2) })],
  ['bdense huge rows', 'LOWBIT_SHAPE', () => dense({ rows: 2 ** 53 - 1 })],
  ['bdense weights {}', 'LOWBIT_TYPE', () => dense({ weights: {} })],
  // bmaxpool2d
  ['bmaxpool2d()', 'LOWBIT_TYPE', () => addon.bmaxpool2d()],
  ['bmaxpool2d geometry missing', 'LOWBIT_TYPE', () => pool({ geometry: undefined })],
  ['bmaxpool2d geometry positional array', 'LOWBIT_TYPE', () => pool({ geometry: [2, 2, 2, 2, 0, 0, 0, 0] })],
  ['bmaxpool2d kernel missing', 'LOWBIT_TYPE', () => pool({ geometry: poolGeometry({ kernel: undefined }) })],
  ['bmaxpool2d strides missing', 'LOWBIT_TYPE', () => pool({ geometry: poolGeometry({ strides: undefined }) })],
  ['bmaxpool2d pads missing', 'LOWBIT_TYPE', () => pool({ geometry: poolGeometry({ pads: undefined }) })],
  ["bmaxpool2d kernel '2'", 'LOWBIT_TYPE', () => pool({ geometry: poolGeometry({ kernel: [2, '2'] }) })],
  ['bmaxpool2d kernel length 3', 'LOWBIT_SHAPE', () => pool({ geometry: poolGeometry({ kernel: [2, 2, 2] }) })],
  ['bmaxpool2d pads length 3', 'LOWBIT_SHAPE', () => pool({ geometry: poolGeometry({ pads: [0, 0, 0] }) })],
  ['bmaxpool2d kernel NaN', 'LOWBIT_RANGE', () => pool({ geometry: poolGeometry({ kernel: [NaN, 2] }) })],
  ['bmaxpool2d kernel 1.5', 'LOWBIT_RANGE', () => pool({ geometry: poolGeometry({ kernel: [1.5, 2] }) })],
  ['bmaxpool2d pad -1', 'LOWBIT_RANGE', () => pool({ geometry: poolGeometry({ pads: [0, 0, -1, 0] }) })],
  ['bmaxpool2d stride 2^64', 'LOWBIT_RANGE', () => pool({ geometry: poolGeometry({ strides: [2 ** 64, 2] }) })],
  ['bmaxpool2d kernel 0', 'LOWBIT_RANGE', () => pool({ geometry: poolGeometry({ kernel: [0, 2] }) })],
  ['bmaxpool2d stride 0', 'LOWBIT_RANGE', () => pool({ geometry: poolGeometry({ strides: [0, 2] }) })],
  ['bmaxpool2d pad >= kernel', 'LOWBIT_RANGE', () => pool({ geometry: poolGeometry({ pads: [2, 0, 0, 0] }) })],
  [
    'bmaxpool2d kernel larger than input',
    'LOWBIT_SHAPE',
    () => pool({ geometry: { kernel: [5, 5], strides: [1, 1], pads: [0, 0, 0, 0] } }),
  ],
  ['bmaxpool2d input short', 'LOWBIT_SHAPE', () => pool({ input: new BigUint64Array(3) })],
  ['bmaxpool2d input detached', 'LOWBIT_TYPE', () => pool({ input: detached(BigUint64Array, 16) })],
  ['bmaxpool2d shape overflows', 'LOWBIT_RANGE', () => pool({ shape: [2 ** 53 - 1, 2 ** 53 - 1, 4, 64] })],
  ['bmaxpool2d zero channels', 'LOWBIT_SHAPE', () => pool({ shape: [1, 4, 4, 0], input: new BigUint64Array(0) })],
  // qconv2d / qmaxpool2d geometry (integer convs take no padValue)
  [
    'qconv2d geometry positional array',
    'LOWBIT_TYPE',
    () =>
      addon.qconv2d(
        new Int8Array(64),
        [1, 4, 4, 4],
        q3,
        [1, 1, 1, 1, 0, 0, 0, 0],
        { dtype: 's32', inputZeroPoint: 0 },
        { async: false },
      ),
  ],
  ['qconv2d dilations missing', 'LOWBIT_TYPE', () => qconv({ dilations: undefined })],
  ['qconv2d pads length 5', 'LOWBIT_SHAPE', () => qconv({ pads: [0, 0, 0, 0, 0] })],
  ['qconv2d stride 1.5', 'LOWBIT_RANGE', () => qconv({ strides: [1.5, 1] })],
  ['qconv2d stride 0', 'LOWBIT_RANGE', () => qconv({ strides: [1, 0] })],
  ['qconv2d pad >= kernel', 'LOWBIT_RANGE', () => qconv({ pads: [0, 0, 0, 3] })],
  [
    'qmaxpool2d geometry not an object',
    'LOWBIT_TYPE',
    () => addon.qmaxpool2d(new Int8Array(64), [1, 4, 4, 4], 'kernel 2', false),
  ],
  ['qmaxpool2d strides length 1', 'LOWBIT_SHAPE', () => qpool({ strides: [2] })],
  ['qmaxpool2d kernel -2', 'LOWBIT_RANGE', () => qpool({ kernel: [-2, 2] })],
  ['qmaxpool2d kernel 0', 'LOWBIT_RANGE', () => qpool({ kernel: [2, 0] })],
];

// An unwrapped handle made with the class's own constructor: no weights behind it.
const forged = () => new h3.constructor();
// Cases that may take the whole process down (a crash, or an allocation that V8 treats as fatal):
// each runs in its own child, selected by name.
export const isolatedCases = [
  ['bconv2d forged empty weights handle', 'LOWBIT_TYPE', () => conv({ weights: forged() })],
  ['bdense forged empty weights handle', 'LOWBIT_TYPE', () => dense({ weights: forged() })],
  // a length mismatch must be reported as one, before any output is allocated
  ['bitpack 2^40 rows for 1 value', 'LOWBIT_SHAPE', () => addon.bitpack(f32(1), 2 ** 40, 1, false)],
  ['bitpack 2^40 rows for 1 value, async', 'LOWBIT_SHAPE', () => addon.bitpack(f32(1), 2 ** 40, 1, true)],
  ['bitpack 2^50 x 2 for 1 value', 'LOWBIT_SHAPE', () => addon.bitpack(new Int8Array(1), 2 ** 50, 2, false)],
  // an output too large to allocate (128 GiB from a 32 MiB input) must be a RangeError, not an abort
  [
    'bconv2d 128 GiB output',
    'LOWBIT_RANGE',
    () =>
      addon.bconv2d(
        new BigUint64Array(2048 * 2048),
        [1, 2048, 2048, 1],
        addon.packBinaryConv2dWeights(f32(8192), [8192, 1, 1, 1], 1),
        geometry,
        f32out,
        { async: false },
      ),
  ],
];

if (filter === '--list-isolated') {
  console.log(JSON.stringify(isolatedCases.map(([n]) => n)));
  process.exit(0);
}

for (const [name, expected, call] of [...cases, ...isolatedCases]) {
  if (filter !== undefined ? name !== filter : isolatedCases.some(([n]) => n === name)) continue;
  process.stderr.write(`BEGIN ${name}\n`);
  let row;
  try {
    const r = call();
    // async calls return a promise: a rejection is also fine, so note the result kind only
    row = { name, expected, threw: false, result: r instanceof Promise ? 'promise' : typeof r };
  } catch (e) {
    row = {
      name,
      expected,
      threw: true,
      isError: e instanceof Error,
      code: e?.code,
      errorName: e?.name,
      message: String(e?.message),
    };
  }
  console.log(JSON.stringify(row));
}
process.stderr.write('END\n');
