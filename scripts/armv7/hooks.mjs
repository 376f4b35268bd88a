// Loader hook (Node >= 20.6 module.register): node:zlib resolves to zlib-shim.mjs.
const shim = new URL('./zlib-shim.mjs', import.meta.url).href;
export async function resolve(specifier, context, next) {
  if ((specifier === 'node:zlib' || specifier === 'zlib') && context.parentURL !== shim)
    return { url: shim, shortCircuit: true };
  return next(specifier, context);
}
