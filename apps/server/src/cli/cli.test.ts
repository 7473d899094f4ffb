import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeNpy, parseNpy, readFloat32Tensor } from '@meshgrad/core';
import { parseJobSpec } from '../jobs/job-spec.ts';
import { idxBytes } from '../jobs/job.test-support.ts';
import { DataStore } from '../store.ts';
import { runCli, type CliIo } from './program.ts';

let dir: string;

function capture(): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out(text: string) {
      io.stdout += text;
    },
    err(text: string) {
      io.stderr += text;
    },
  };
  return io;
}

async function cli(...args: string[]) {
  const io = capture();
  const code = await runCli(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

const softmax = { kind: 'softmax', inputs: 2, classes: 2 };
const csvSpec = (extra: Record<string, unknown> = {}, dataset: Record<string, unknown> = {}) => ({
  id: 'csv-job',
  name: 'CSV job',
  model: softmax,
  dataset: { kind: 'csv', file: 'good.csv', ...dataset },
  ...extra,
});

/**
 * Broken specs and data files, each with the one error `meshgrad validate` must print: the
 * field, and a reason with a location where the problem is inside a file.
 */
const broken: Record<string, { spec: unknown | string; error: RegExp }> = {
  'not-json.json': {
    spec: '{\n  "id": "x",\n}\n',
    error: /not valid JSON: trailing comma before \} \(at line 3, column 1\)$/,
  },
  'missing-quote.json': {
    spec: '{\n  "id": "x,\n  "name": 1\n}',
    error:
      /not valid JSON: unterminated string \(strings cannot span lines\) \(at line 2, column 9\)$/,
  },
  'unknown-field.json': {
    spec: csvSpec({ learningrate: 0.1 }),
    error: /error: learningrate: unknown field \(expected one of: .*learningRate/,
  },
  'wrong-type.json': {
    spec: csvSpec({ batchSize: '64' }),
    error: /error: batchSize: expected a number, got "64"$/,
  },
  'missing-model.json': {
    spec: { id: 'x', name: 'x', dataset: { kind: 'mnist' } },
    error: /error: model: required \(expected an object\)$/,
  },
  'unknown-dataset.json': {
    spec: csvSpec({}, { kind: 'parquet' }),
    error:
      /error: dataset\.kind: must be one of "mnist", "clusters", "idx", "csv", "npy", "text"; got "parquet"$/,
  },
  'bad-id.json': {
    spec: csvSpec({ id: 'My Job' }),
    error: /error: id: must be lower-case letters, digits, _ or -, got "My Job"$/,
  },
  'missing-data.json': {
    spec: csvSpec({}, { file: 'nowhere.csv' }),
    error: /error: dataset\.file: file not found: .*nowhere\.csv$/,
  },
  'ragged-csv.json': {
    spec: csvSpec({}, { file: 'ragged.csv' }),
    error:
      /error: dataset\.file: ragged\.csv: expected 3 fields \(as in line 1\), found 2 \(at line 4\)$/,
  },
  'text-in-csv.json': {
    spec: csvSpec({}, { file: 'text.csv' }),
    error:
      /error: dataset\.file: text\.csv: 'n\/a' is not a number \(at line 3, column 2, field 'b'\)$/,
  },
  'gzip-idx.json': {
    spec: {
      ...csvSpec(),
      dataset: { kind: 'idx', images: 'images.idx.gz', labels: 'labels.idx' },
    },
    error: /error: dataset\.images: images\.idx\.gz: IDX file is gzip-compressed.*\(at byte 0\)$/,
  },
  'truncated-npy.json': {
    spec: { ...csvSpec(), dataset: { kind: 'npy', features: 'truncated.npy' } },
    error: /error: dataset\.features: truncated\.npy: .*\(at byte \d+\)$/,
  },
  'label-count.json': {
    spec: { ...csvSpec(), dataset: { kind: 'npy', features: 'x.npy', labels: 'y-short.npy' } },
    error: /error: dataset\.labels: x\.npy: 8 samples but 7 labels$/,
  },
  'fractional-label.json': {
    spec: { ...csvSpec(), dataset: { kind: 'npy', features: 'x.npy', labels: 'y-frac.npy' } },
    error:
      /error: dataset\.labels: x\.npy labels: label 0\.5 is not a non-negative integer \(at byte \d+, sample 3\)$/,
  },
  'wrong-inputs.json': {
    spec: csvSpec({ model: { kind: 'softmax', inputs: 3, classes: 2 } }),
    error:
      /error: model\.inputs: the model takes 3 features per sample but the dataset \(good\.csv\/train\) has 2$/,
  },
  'too-few-classes.json': {
    spec: csvSpec({}, { file: 'three-classes.csv' }),
    error: /error: model\.classes: the dataset has 3 classes \(labels 0 to 2\), the model only 2$/,
  },
  'accuracy-for-kmeans.json': {
    spec: csvSpec({
      model: { kind: 'kmeans', dims: 2, clusters: 2 },
      stop: { targetAccuracy: 0.9 },
    }),
    error: /error: stop\.targetAccuracy: needs a classifier/,
  },
  'bad-kernel.json': {
    spec: {
      ...csvSpec(),
      model: {
        kind: 'custom',
        kernel: 'bad.wgsl',
        inputs: 3,
        tensors: [{ name: 'w', shape: [2] }],
      },
      dataset: { kind: 'csv', file: 'good.csv', labelColumn: null },
    },
    error:
      /error: model\.kernel: bad\.wgsl:3:3: .*undefined_thing.* \(in: undefined_thing = 1\.0;\)$/,
  },
  'bad-layer.json': {
    spec: csvSpec({
      model: {
        kind: 'layers',
        inputs: 2,
        classes: 2,
        layers: [
          { type: 'conv2d', filters: 4, kernel: 3 },
          { type: 'dense', units: 2 },
        ],
      },
    }),
    error:
      /error: model\.layers\[0\]: conv2d conv1: needs a \[channels, height, width\] input, got an input of shape \[2\]$/,
  },
  'layer-typo.json': {
    spec: csvSpec({
      model: { kind: 'layers', inputs: 2, classes: 2, layers: [{ type: 'dense', unit: 2 }] },
    }),
    error: /error: model\.layers\.0\.units: required \(expected a number\)$/,
  },
  'text-for-classifier.json': {
    spec: csvSpec({}, { kind: 'text', file: 'good.csv' }),
    error: /error: dataset\.kind: a text dataset needs a layers model with "loss": "next-token"$/,
  },
  'both-splits.json': {
    spec: csvSpec({}, { test: { file: 'good.csv' }, testFraction: 0.3 }),
    error: /error: dataset\.testFraction: give test files or testFraction, not both$/,
  },
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-cli-'));
  const rows = ['a,b,label'];
  for (let i = 0; i < 20; i++) rows.push(`${i % 2},${(i * 3) % 7},${i % 2}`);
  const files: Record<string, string | Uint8Array> = {
    'good.csv': rows.join('\n') + '\n',
    'ragged.csv': 'a,b,label\n1,2,0\n3,4,1\n5,6\n',
    'text.csv': 'a,b,label\n1,2,0\n3,n/a,1\n',
    'three-classes.csv': 'a,b,label\n1,2,0\n3,4,1\n5,6,2\n7,8,1\n',
    'images.idx.gz': idxBytes([2, 2], [1, 2, 3, 4], [0x1f, 0x8b]),
    'labels.idx': idxBytes([2], [0, 1]),
    'truncated.npy': encodeNpy([4, 2], new Float32Array(8)).subarray(0, 100),
    'x.npy': encodeNpy([8, 2], new Float32Array(16)),
    'y-short.npy': encodeNpy([7], new Float32Array(7)),
    'y-frac.npy': encodeNpy([8], Float32Array.from([0, 1, 0, 0.5, 1, 0, 1, 0])),
    'bad.wgsl': '@compute @workgroup_size(64)\nfn main() {\n  undefined_thing = 1.0;\n}\n',
  };
  for (const [name, content] of Object.entries(files)) {
    await writeFile(path.join(dir, name), content);
  }
  for (const [name, { spec }] of Object.entries(broken)) {
    await writeFile(
      path.join(dir, name),
      typeof spec === 'string' ? spec : JSON.stringify(spec, null, 2),
    );
  }
  await writeFile(path.join(dir, 'good.json'), JSON.stringify(csvSpec(), null, 2));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('meshgrad validate', () => {
  it('accepts a good spec and says what it will run', async () => {
    const r = await cli('validate', path.join(dir, 'good.json'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/good\.json: ok\n/);
    expect(r.stdout).toMatch(
      /model +softmax regression, 2 inputs, 2 classes: 6 parameters in 1 block/,
    );
    expect(r.stdout).toMatch(
      /dataset +csv good\.csv: 16 training \/ 4 held-out samples, 2 features, 2 classes/,
    );
  });

  for (const [name, { error }] of Object.entries(broken)) {
    it(`refuses ${name} with one clear error`, async () => {
      const file = path.join(dir, name);
      const r = await cli('validate', file);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]?.startsWith(`${file}: error: `), r.stderr).toBe(true);
      expect(lines[0]).toMatch(error);
    });
  }

  it('reads a text dataset for a next-token model and names its vocabulary problem', async () => {
    const lm = (classes: number) => ({
      id: 'lm',
      name: 'LM',
      model: {
        kind: 'layers',
        inputs: 9,
        classes,
        loss: 'next-token',
        layers: [
          { type: 'embedding', vocab: classes, dim: 8 },
          { type: 'residual', layers: [{ type: 'layernorm' }, { type: 'attention', heads: 2 }] },
          { type: 'dense', units: classes },
        ],
      },
      dataset: { kind: 'text', file: 'words.txt', validationFraction: 0.25 },
    });
    const words = 'the cat sat on the mat; the dog sat on the log. '.repeat(20);
    await writeFile(path.join(dir, 'words.txt'), words);
    await writeFile(path.join(dir, 'lm.json'), JSON.stringify(lm(32)));
    await writeFile(path.join(dir, 'lm-small.json'), JSON.stringify(lm(8)));
    const ok = await cli('validate', path.join(dir, 'lm.json'));
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(
      /dataset +text words\.txt: 89 training \/ 29 held-out samples, 9 features \(token ids\)/,
    );
    const small = await cli('validate', path.join(dir, 'lm-small.json'));
    expect(small.code).toBe(1);
    expect(small.stderr).toMatch(
      /error: model\.classes: words\.txt has 15 distinct bytes, the model.s vocabulary only 8/,
    );
  });

  it('checks several files, one line each, and fails if any fails', async () => {
    const r = await cli(
      'validate',
      path.join(dir, 'good.json'),
      path.join(dir, 'ragged-csv.json'),
      path.join(dir, 'no-such-spec.json'),
    );
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/ragged-csv\.json: error: dataset\.file: ragged\.csv: /),
      `${path.join(dir, 'no-such-spec.json')}: error: file not found`,
    ]);
  });
});

describe('meshgrad export', () => {
  let jobDir: string;
  const params = Float32Array.from({ length: 6 }, (_, i) => i + 0.5);

  beforeAll(async () => {
    const store = new DataStore(path.join(dir, 'data'));
    await store.init();
    const spec = parseJobSpec(csvSpec(), { baseDir: dir });
    await store.saveSpec(spec.id, spec);
    await store.saveCheckpoint(
      {
        job: spec.id,
        seq: 3,
        samples: 1200,
        createdAt: new Date(0).toISOString(),
        parameters: 6,
        worker: 'w-1',
        testLoss: 0.25,
        testAccuracy: 0.9,
        file: '3.bin',
      },
      params,
    );
    jobDir = store.jobDir(spec.id);
  });

  it('writes safetensors with the model’s tensor names and shapes', async () => {
    const out = path.join(dir, 'out.safetensors');
    const r = await cli('export', jobDir, '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/exported checkpoint 3 of job csv-job \(1200 samples, 6 parameters\)/);
    const file = decodeSafetensors(new Uint8Array(await readFile(out)));
    expect(file.tensors.map((t) => [t.name, t.shape])).toEqual([
      ['dense0.weight', [2, 2]],
      ['dense0.bias', [2]],
    ]);
    const bias = file.tensors.find((t) => t.name === 'dense0.bias');
    expect(Array.from(readFloat32Tensor(file, bias!))).toEqual([4.5, 5.5]);
    expect(file.metadata['meshgrad.test_accuracy']).toBe('0.9');
  });

  it('writes one .npy per tensor, from a manifest or a weights file', async () => {
    const out = path.join(dir, 'npy-out');
    for (const target of ['checkpoints/3.json', 'checkpoints/3.bin']) {
      const r = await cli('export', path.join(jobDir, target), '--format', 'npy', '-o', out);
      expect(r.code, r.stderr).toBe(0);
    }
    expect((await readdir(out)).sort()).toEqual(['dense0.bias.npy', 'dense0.weight.npy']);
    const w = parseNpy(new Uint8Array(await readFile(path.join(out, 'dense0.weight.npy'))));
    expect(w.shape).toEqual([2, 2]);
    expect(Array.from(w.data)).toEqual([0.5, 1.5, 2.5, 3.5]);
  });

  it('explains what it cannot export', async () => {
    const empty = path.join(dir, 'data', 'jobs', 'empty');
    await mkdir(path.join(empty, 'checkpoints'), { recursive: true });
    let r = await cli('export', empty);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`meshgrad: ${empty}: the job has no checkpoint yet\n`);
    r = await cli('export', jobDir, '--format', 'onnx');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Allowed choices are safetensors, npy/);
  });
});

describe('meshgrad (built)', () => {
  it('runs as a command: --help on each command, exit status 1 on a broken spec', async () => {
    const outdir = path.join(dir, 'dist');
    const pkg = JSON.parse(
      await readFile(path.resolve(import.meta.dirname, '../../package.json'), 'utf8'),
    ) as { dependencies: Record<string, string> };
    await build({
      entryPoints: { main: path.resolve(import.meta.dirname, '../main.ts') },
      outdir,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      // As apps/server/build.mjs: Ajv bundled in, the other packages from node_modules.
      external: Object.keys(pkg.dependencies).filter(
        (d) => !d.startsWith('@meshgrad/') && d !== 'ajv',
      ),
      logLevel: 'error',
    });
    // The bundle imports its third-party packages from the repository's node_modules.
    await symlink(
      path.resolve(import.meta.dirname, '../../../../node_modules'),
      path.join(dir, 'node_modules'),
    );
    const main = path.join(outdir, 'main.js');
    {
      const run = (...args: string[]) =>
        spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 60_000 });
      const help = run('--help');
      expect(help.status).toBe(0);
      for (const command of ['serve', 'validate', 'export', 'schema']) {
        expect(help.stdout).toContain(command);
      }
      const serveHelp = run('serve', '--help');
      expect(serveHelp.status).toBe(0);
      expect(serveHelp.stdout).toMatch(
        /Usage: meshgrad serve[\s\S]*--redis <url>[\s\S]*--turn-secret/,
      );
      const bad = run('validate', path.join(dir, 'ragged-csv.json'));
      expect(bad.status).toBe(1);
      expect(bad.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(bad.stderr).toMatch(/ragged\.csv: expected 3 fields/);
      expect(run('validate', path.join(dir, 'good.json')).status).toBe(0);
    }
  });
});

describe('meshgrad --help', () => {
  it('documents every command', async () => {
    for (const command of ['serve', 'validate', 'export', 'schema']) {
      const r = await cli(command, '--help');
      expect(r.code, command).toBe(0);
      expect(r.stdout).toContain(`Usage: meshgrad ${command}`);
    }
    expect((await cli('export', '--help')).stdout).toMatch(/--format <format>.*safetensors/s);
    const none = await cli();
    expect(none.code).toBe(1);
    expect(none.stdout + none.stderr).toMatch(/Commands:[\s\S]*validate/);
  });
});
