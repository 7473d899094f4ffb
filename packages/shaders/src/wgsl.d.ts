// WGSL sources are imported as text: Vite and vitest with `?raw`; other bundlers are configured
// with the same suffix (see scripts/).
declare module '*.wgsl?raw' {
  const source: string;
  export default source;
}
