// The server's npm dependencies that a bundle outside apps/server leaves external (loaded from
// node_modules at run time). Ajv is bundled in instead: the server's Ajv 8 is installed under
// apps/server/node_modules, because the root's node_modules holds ESLint's Ajv 6, which a bundle
// in bench/dist would find first.
import { readFileSync } from 'node:fs';

export function serverExternals(root) {
  const pkg = JSON.parse(readFileSync(new URL('apps/server/package.json', root), 'utf8'));
  return Object.keys(pkg.dependencies ?? {}).filter(
    (d) => !d.startsWith('@meshgrad/') && d !== 'ajv',
  );
}
