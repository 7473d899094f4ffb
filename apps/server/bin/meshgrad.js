#!/usr/bin/env node
// The `meshgrad` command. npm links a package's bin at install time, and only when the target
// exists then; dist/ exists only after a build, so the bin is this committed launcher, which
// runs the built CLI or says how to build it.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'meshgrad: the server is not built yet: run `npm run build` first (`npm start` builds it too)\n',
  );
  process.exit(1);
}
await import(main.href);
