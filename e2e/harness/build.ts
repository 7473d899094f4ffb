/**
 * Builds everything the e2e tests and the kernel benchmark run, with esbuild, from a clean
 * checkout: the browser test pages and the Node-side modules (the test server and the bench CLI).
 *
 * esbuild rather than Vite because both the browser and the Node bundles come from one call with
 * one plugin (WGSL `?raw` imports), and a build of every page takes about a second on two cores.
 */
import { build } from 'esbuild';
import type { Plugin } from 'esbuild';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The e2e workspace folder, whichever bundle or loader this module runs from. */
export const E2E_DIR = findE2eDir();
/** The repository root. */
export const REPO_DIR = resolve(E2E_DIR, '..');
/** Build output: git-ignored through the repository-wide `dist/` rule. */
export const DIST_DIR = join(E2E_DIR, 'dist');
/** Static files served to the browser. */
export const WWW_DIR = join(DIST_DIR, 'www');
const PAGES_DIR = join(E2E_DIR, 'pages');

function findE2eDir(): string {
  // Playwright loads this file from e2e/harness; the bench loads a bundle of it from
  // e2e/dist/node. Both sit below e2e/, so walk up to the folder that holds playwright.config.ts.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (dir.endsWith('/e2e')) return dir;
    dir = dirname(dir);
  }
  throw new Error(`cannot find the e2e folder above ${fileURLToPath(import.meta.url)}`);
}

/**
 * Loads `*.wgsl?raw` (and any other `?raw`) imports as text, the way Vite and vitest do for the
 * shaders package, so the bundles run the very WGSL files the unit tests check.
 */
export const rawTextPlugin: Plugin = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({
      path: resolve(args.resolveDir, args.path.slice(0, -'?raw'.length)),
      namespace: 'raw-text',
    }));
    b.onLoad({ filter: /.*/, namespace: 'raw-text' }, async (args) => ({
      contents: await readFile(args.path, 'utf8'),
      loader: 'text',
    }));
  },
};

/**
 * Keeps the `mnist` package's 21 MB of digit JSON (loaded lazily by core's `loadMnist`) out of
 * the page bundles: pages get MNIST pre-encoded from the test server and never call loadMnist,
 * and inlining it would make every page a 21 MB script.
 */
const mnistJsonExternalPlugin: Plugin = {
  name: 'mnist-json-external',
  setup(b) {
    b.onResolve({ filter: /^mnist\// }, (args) => ({ path: args.path, external: true }));
  },
};

export interface PageBuild {
  readonly name: string;
  /** esbuild's message when the page failed to build; its HTML then reports that instead. */
  readonly error: string | null;
}

/**
 * Bundles each `e2e/pages/*.ts` entry into `dist/www/<name>.js` with an HTML page
 * `dist/www/<name>.html` that loads it. Pages build one by one, so a page that does not build
 * (say, an API it uses has not landed) fails only its own specs, with esbuild's message, while
 * the other specs still run.
 */
export async function buildPages(only?: readonly string[]): Promise<PageBuild[]> {
  const names = (await readdir(PAGES_DIR))
    .filter((f) => f.endsWith('.ts') && !f.startsWith('_') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -'.ts'.length))
    .filter((name) => !only || only.includes(name));
  await mkdir(WWW_DIR, { recursive: true });
  const builds = await Promise.all(names.map(buildPage));
  for (const { name, error } of builds) {
    const script =
      error === null
        ? `<script type="module" src="./${name}.js"></script>`
        : `<script>window.e2eBuildError = ${JSON.stringify(error).replace(/</g, '\\u003c')};</script>`;
    await writeFile(
      join(WWW_DIR, `${name}.html`),
      `<!doctype html>\n<html><head><meta charset="utf-8"><title>meshgrad e2e: ${name}</title></head>\n` +
        `<body><pre id="log"></pre>${script}</body></html>\n`,
    );
  }
  return builds;
}

async function buildPage(name: string): Promise<PageBuild> {
  try {
    await build({
      entryPoints: [join(PAGES_DIR, `${name}.ts`)],
      outdir: WWW_DIR,
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      sourcemap: 'linked',
      // Identifiers stay readable in stack traces from the page; size does not matter here.
      minify: false,
      logLevel: 'silent',
      plugins: [rawTextPlugin, mnistJsonExternalPlugin],
      define: { 'process.env.NODE_ENV': '"production"' },
    });
    return { name, error: null };
  } catch (err) {
    const failure = err as {
      errors?: { text: string; location?: { file: string; line: number } | null }[];
    };
    const lines = (failure.errors ?? []).map(
      (e) => `${e.location ? `${e.location.file}:${e.location.line}: ` : ''}${e.text}`,
    );
    return { name, error: `page ${name} did not build:\n${lines.join('\n') || String(err)}` };
  }
}

/**
 * Bundles a Node entry (TypeScript, may import workspace packages and WGSL) into one ESM file
 * under `dist/node/` and returns its path. Third-party packages stay external (Node loads them
 * itself; `webgpu` is a native addon that cannot be bundled) except those named in `bundled`,
 * which are bundled from their ES module builds: TF.js's CommonJS Node builds lack the gradient
 * registrations (`register_all_gradients` exists only as ES modules Node cannot load).
 */
export async function buildNodeEntry(
  entry: string,
  bundled: readonly string[] = [],
): Promise<string> {
  const name = entry.replace(/^.*\//, '').replace(/\.ts$/, '');
  const outfile = join(DIST_DIR, 'node', `${name}.mjs`);
  await build({
    entryPoints: [resolve(REPO_DIR, entry)],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
    mainFields: ['module', 'main'],
    plugins: [rawTextPlugin, workspaceOnlyPlugin(bundled)],
    // Bundled CommonJS code (TF.js's Emscripten glue among it) uses require, __dirname and
    // __filename, which an ES module lacks; define them for the bundle.
    banner: {
      js: [
        "import { createRequire as __createRequire } from 'node:module';",
        "import { fileURLToPath as __fileURLToPath } from 'node:url';",
        'const require = __createRequire(import.meta.url);',
        'const __filename = __fileURLToPath(import.meta.url);',
        "const __dirname = __filename.replace(/[\\/][^\\/]*$/, '');",
      ].join(' '),
    },
  });
  return outfile;
}

/**
 * Bundles our own sources, the `@meshgrad/*` workspaces (TypeScript, not loadable by Node 20)
 * and the packages named in `bundled`; leaves every other package to Node's resolver.
 */
function workspaceOnlyPlugin(bundled: readonly string[]): Plugin {
  const inside = (path: string, pkg: string) => path === pkg || path.startsWith(pkg + '/');
  return {
    name: 'workspace-only',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith('@meshgrad/') || args.path.startsWith('node:')) return undefined;
        if (args.path.endsWith('?raw')) return undefined;
        if (bundled.some((pkg) => inside(args.path, pkg))) return undefined;
        return { path: args.path, external: true };
      });
    },
  };
}
