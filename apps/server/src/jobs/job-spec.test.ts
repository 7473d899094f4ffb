import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_GUARD, encodeNpy, PARZEN_MERGE_RULE, SCALING_MERGE_RULE } from '@meshgrad/core';
import { loadJobData } from './data.ts';
import {
  coreModelSpec,
  DEFAULT_JOB,
  JobSpecError,
  jobSpecJsonSchema,
  parseJobSpec,
} from './job-spec.ts';
import { idxBytes } from './job.test-support.ts';

let dir: string;

const base = {
  id: 'files',
  name: 'Files',
  model: { kind: 'softmax', inputs: 2, classes: 3 },
};

function fails(value: unknown, field: string, reason?: RegExp): JobSpecError {
  let caught: unknown;
  try {
    parseJobSpec(value, { baseDir: dir });
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${field} to fail`).toBeInstanceOf(JobSpecError);
  const e = caught as JobSpecError;
  expect(e.field).toBe(field);
  if (reason) expect(e.reason).toMatch(reason);
  expect(e.message).toBe(`invalid job spec: ${field}: ${e.reason}`);
  return e;
}

async function loadFails(value: unknown, field: string, reason: RegExp): Promise<JobSpecError> {
  const spec = parseJobSpec(value, { baseDir: dir });
  const err = await loadJobData(spec).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected loading to fail on ${field}`).toBeInstanceOf(JobSpecError);
  const e = err as JobSpecError;
  expect(e.field).toBe(field);
  expect(e.reason).toMatch(reason);
  return e;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'meshgrad-spec-'));
  const rows = ['a,b,label'];
  for (let i = 0; i < 30; i++) rows.push(`${i % 3},${(i * 7) % 5},${['cat', 'dog', 'eel'][i % 3]}`);
  await writeFile(path.join(dir, 'train.csv'), rows.join('\n') + '\n');
  await writeFile(path.join(dir, 'test.csv'), 'a,b,label\n1,2,eel\n0,1,dog\n');
  await writeFile(path.join(dir, 'unknown-class.csv'), 'a,b,label\n1,2,fox\n');
  await writeFile(path.join(dir, 'ragged.csv'), 'a,b,label\n1,2,0\n3,1\n');
  await writeFile(path.join(dir, 'three.csv'), 'a,b,c,label\n1,2,3,0\n3,1,2,1\n');
  await writeFile(
    path.join(dir, 'images.idx'),
    idxBytes([6, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
  );
  await writeFile(path.join(dir, 'labels.idx'), idxBytes([6], [0, 1, 2, 0, 1, 2]));
  await writeFile(path.join(dir, 'labels5.idx'), idxBytes([5], [0, 1, 2, 0, 1]));
  await writeFile(
    path.join(dir, 'x.npy'),
    encodeNpy(
      [10, 2],
      Float32Array.from({ length: 20 }, (_, i) => i / 10),
    ),
  );
  await writeFile(
    path.join(dir, 'y.npy'),
    encodeNpy(
      [10],
      Float32Array.from({ length: 10 }, (_, i) => i % 3),
    ),
  );
  await writeFile(path.join(dir, 'broken.npy'), new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50]));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseJobSpec', () => {
  it('fills defaults, and a parsed spec parses to itself', () => {
    expect(DEFAULT_JOB).toMatchObject({
      batchSize: 64,
      balancer: { mode: 'automatic' },
      stop: {},
      communication: { communicationPeriod: 256, blocksPerMessage: 1, encoding: 'f32' },
    });
    expect(parseJobSpec(JSON.parse(JSON.stringify(DEFAULT_JOB)))).toEqual(DEFAULT_JOB);
    const csv = parseJobSpec(
      { ...base, dataset: { kind: 'csv', file: 'train.csv' } },
      { baseDir: dir },
    );
    expect(parseJobSpec(JSON.parse(JSON.stringify(csv)))).toEqual(csv);
  });

  it('makes file paths absolute against the spec directory', () => {
    const spec = parseJobSpec(
      {
        ...base,
        dataset: {
          kind: 'idx',
          images: 'images.idx',
          labels: 'sub/../labels.idx',
          test: { images: '/abs/t.idx' },
        },
      },
      { baseDir: dir },
    );
    expect(spec.dataset).toEqual({
      kind: 'idx',
      images: path.join(dir, 'images.idx'),
      labels: path.join(dir, 'labels.idx'),
      scale: 1,
      test: { images: '/abs/t.idx', labels: null },
    });
  });

  it('reads the balancer and stop criteria', () => {
    const km = {
      id: 'km',
      name: 'K',
      model: { kind: 'kmeans', dims: 2, clusters: 3 },
      dataset: { kind: 'clusters', clusters: 3, dims: 2, count: 100 },
    };
    expect(parseJobSpec({ ...km, balancer: { mode: 'auto' } }).balancer).toEqual({
      mode: 'automatic',
    });
    expect(
      parseJobSpec({
        ...km,
        balancer: { mode: 'fixed', communicationPeriod: 32, blocksPerMessage: 1 },
      }).balancer,
    ).toEqual({ mode: 'fixed', communicationPeriod: 32, blocksPerMessage: 1, encoding: 'f32' });
    expect(parseJobSpec({ ...km, stop: { targetObjective: 2, maxSamples: 1000 } }).stop).toEqual({
      targetObjective: 2,
      maxSamples: 1000,
    });
    fails({ ...km, stop: { targetAccuracy: 0.9 } }, 'stop.targetAccuracy', /needs a classifier/);
    fails(
      { ...km, balancer: { mode: 'fixed', communicationPeriod: 32, blocksPerMessage: 2 } },
      'balancer.blocksPerMessage',
      /at most 1/,
    );
    fails(
      { ...km, balancer: { mode: 'sometimes' } },
      'balancer.mode',
      /"automatic", "auto", "fixed"/,
    );
  });

  it('reads the training mode: asgd by default, sync with a round timeout', () => {
    expect(DEFAULT_JOB.training).toEqual({
      mode: 'asgd',
      roundTimeoutSec: 30,
      merge: PARZEN_MERGE_RULE,
      guard: DEFAULT_GUARD,
    });
    const digits = {
      ...base,
      model: { kind: 'softmax', inputs: 784, classes: 10 },
      dataset: { kind: 'mnist' },
    };
    const sync = parseJobSpec({ ...digits, training: { mode: 'sync', roundTimeoutSec: 5 } });
    expect(sync.training).toMatchObject({ mode: 'sync', roundTimeoutSec: 5 });
    expect(parseJobSpec(JSON.parse(JSON.stringify(sync)))).toEqual(sync);
    fails({ ...digits, training: { mode: 'ssgd' } }, 'training.mode', /asgd.*sync/);
    fails(
      { ...digits, training: { mode: 'sync', roundTimeoutSec: 0 } },
      'training.roundTimeoutSec',
    );
    fails({ ...digits, training: { rounds: 3 } }, 'training.rounds', /unknown field/);
  });

  it('reads the merge rule: the first one by default, each field checked', () => {
    const digits = {
      ...base,
      model: { kind: 'softmax', inputs: 784, classes: 10 },
      dataset: { kind: 'mnist' },
    };
    const scaling = parseJobSpec({
      ...digits,
      training: { merge: { order: 'average-then-step', parzen: 'off', momentum: 0.5 } },
    });
    expect(scaling.training.merge).toEqual(SCALING_MERGE_RULE);
    fails(
      { ...digits, training: { merge: { order: 'sideways' } } },
      'training.merge.order',
      /average-then-step/,
    );
    fails({ ...digits, training: { merge: { parzen: 'soft' } } }, 'training.merge.parzen');
    fails({ ...digits, training: { merge: { momentum: 1 } } }, 'training.merge.momentum');
    fails(
      { ...digits, training: { merge: { momentumPeriod: 0 } } },
      'training.merge.momentumPeriod',
    );
  });

  it('reads the receive-path guard: the default, clip-trust, nothing else', () => {
    const digits = {
      ...base,
      model: { kind: 'softmax', inputs: 784, classes: 10 },
      dataset: { kind: 'mnist' },
    };
    expect(parseJobSpec(digits).training.guard).toBe(DEFAULT_GUARD);
    const guarded = parseJobSpec({ ...digits, training: { guard: 'clip-trust' } });
    expect(guarded.training.guard).toBe('clip-trust');
    expect(parseJobSpec(JSON.parse(JSON.stringify(guarded)))).toEqual(guarded);
    // The bench's intermediate guards are not offered to jobs.
    fails({ ...digits, training: { guard: 'clip' } }, 'training.guard', /off.*clip-trust/);
    fails({ ...digits, training: { guard: true } }, 'training.guard');
  });

  it('reads custom WGSL models: kernel path resolved, exactly one source, loss-only stops', () => {
    const custom = {
      ...base,
      model: {
        kind: 'custom',
        kernel: 'k.wgsl',
        inputs: 2,
        tensors: [{ name: 'w', shape: [2], initStd: 0.1 }],
      },
      dataset: { kind: 'csv', file: 'train.csv' },
    };
    const spec = parseJobSpec(custom, { baseDir: dir });
    expect(spec.model).toEqual({
      kind: 'custom',
      kernel: path.join(dir, 'k.wgsl'),
      entryPoint: 'main',
      inputs: 2,
      classes: 0,
      tensors: [{ name: 'w', shape: [2], initStd: 0.1 }],
    });
    expect(coreModelSpec(spec.model)).toEqual({
      kind: 'custom',
      inputs: 2,
      classes: 0,
      tensors: [{ name: 'w', shape: [2], initStd: 0.1 }],
    });
    fails(
      { ...custom, model: { ...custom.model, wgsl: 'fn main() {}' } },
      'model.kernel',
      /exactly one/,
    );
    fails(
      { ...custom, model: { ...custom.model, kernel: undefined } },
      'model.kernel',
      /exactly one/,
    );
    fails(
      { ...custom, model: { ...custom.model, tensors: [] } },
      'model.tensors',
      /at least 1 entries/,
    );
    fails(
      { ...custom, model: { ...custom.model, entryPoint: 'x-y' } },
      'model.entryPoint',
      /WGSL identifier/,
    );
    fails({ ...custom, stop: { targetAccuracy: 0.5 } }, 'stop.targetAccuracy', /use targetLoss/);
  });

  it('names the field and the reason for each kind of mistake', () => {
    fails([], '(spec)', /JSON object/);
    fails(
      { ...base, dataset: { kind: 'csv', file: 'x.csv' }, learningrate: 0.1 },
      'learningrate',
      /unknown field .*learningRate/,
    );
    fails(
      { ...base, dataset: { kind: 'csv', file: 'x.csv', delimeter: ';' } },
      'dataset.delimeter',
      /unknown field.*delimiter/,
    );
    fails(
      { ...base, dataset: { kind: 'parquet', file: 'x' } },
      'dataset.kind',
      /one of .*"csv".*got "parquet"/,
    );
    fails({ ...base, dataset: { kind: 'csv' } }, 'dataset.file', /required/);
    fails(
      { ...base, dataset: { kind: 'csv', file: 'x.csv' }, batchSize: 0 },
      'batchSize',
      /must be >= 1, got 0/,
    );
    fails(
      { ...base, dataset: { kind: 'csv', file: 'x.csv' }, learningRate: 'fast' },
      'learningRate',
      /expected a number, got "fast"/,
    );
    fails(
      {
        ...base,
        dataset: { kind: 'csv', file: 'x.csv', test: { file: 't.csv' }, testFraction: 0.1 },
      },
      'dataset.testFraction',
      /not both/,
    );
    fails(
      { ...base, dataset: { kind: 'csv', file: 'x.csv', testFraction: 1 } },
      'dataset.testFraction',
      /at most 0.9/,
    );
    fails(
      {
        ...base,
        model: { kind: 'mlp', inputs: 784, hidden: [8], classes: 5 },
        dataset: { kind: 'mnist' },
      },
      'model.classes',
      /10 classes/,
    );
    fails(
      {
        ...base,
        model: { kind: 'softmax', inputs: 2, classes: 3, hidden: [] },
        dataset: { kind: 'mnist' },
      },
      'model.hidden',
      /unknown field/,
    );
  });
});

describe('loadJobData', () => {
  it('reads CSV with named classes and holds out a seeded fraction', async () => {
    const spec = parseJobSpec(
      { ...base, dataset: { kind: 'csv', file: 'train.csv', testFraction: 0.2 } },
      { baseDir: dir },
    );
    const { train, test } = await loadJobData(spec);
    expect(train.count + test.count).toBe(30);
    expect(test.count).toBe(6);
    expect(train.features).toBe(2);
    expect(train.classes).toBe(3);
    const again = await loadJobData(spec);
    expect(Array.from(again.test.x)).toEqual(Array.from(test.x));
  });

  it('maps a CSV test file onto the training file’s class names', async () => {
    const spec = parseJobSpec(
      { ...base, dataset: { kind: 'csv', file: 'train.csv', test: { file: 'test.csv' } } },
      { baseDir: dir },
    );
    const { test } = await loadJobData(spec);
    // Training classes: cat 0, dog 1, eel 2; the test file alone would number dog 0, eel 1.
    expect(Array.from(test.labels ?? [])).toEqual([2, 1]);
    await loadFails(
      { ...base, dataset: { kind: 'csv', file: 'train.csv', test: { file: 'unknown-class.csv' } } },
      'dataset.test.file',
      /class 'fox' \(sample 0\) does not occur in the training file/,
    );
  });

  it('reads IDX and NPY files, labelled or not', async () => {
    const idx = await loadJobData(
      parseJobSpec(
        {
          ...base,
          dataset: { kind: 'idx', images: 'images.idx', labels: 'labels.idx', testFraction: 0.5 },
        },
        { baseDir: dir },
      ),
    );
    expect(idx.train.count).toBe(3);
    expect(idx.test.count).toBe(3);
    const npy = await loadJobData(
      parseJobSpec(
        {
          ...base,
          model: { kind: 'kmeans', dims: 2, clusters: 2 },
          dataset: { kind: 'npy', features: 'x.npy', test: { features: 'x.npy' }, scale: 10 },
        },
        { baseDir: dir },
      ),
    );
    expect(npy.train.count).toBe(10);
    expect(npy.train.labels).toBeNull();
    expect(npy.train.x[3]).toBeCloseTo(3);
  });

  it('carries the reader’s located error, naming the field and file', async () => {
    const e = await loadFails(
      { ...base, dataset: { kind: 'csv', file: 'ragged.csv' } },
      'dataset.file',
      /^ragged\.csv: expected 3 fields \(as in line 1\), found 2 \(at line 3\)$/,
    );
    expect(e.file).toBe(path.join(dir, 'ragged.csv'));
    await loadFails(
      { ...base, dataset: { kind: 'csv', file: 'nope.csv' } },
      'dataset.file',
      /file not found: .*nope\.csv/,
    );
    await loadFails(
      { ...base, dataset: { kind: 'npy', features: 'broken.npy' } },
      'dataset.features',
      /^broken\.npy: .*\(at byte \d+\)$/,
    );
    await loadFails(
      { ...base, dataset: { kind: 'idx', images: 'images.idx', labels: 'labels5.idx' } },
      'dataset.labels',
      /6 images but 5 labels/,
    );
    await loadFails(
      { ...base, dataset: { kind: 'csv', file: 'three.csv' } },
      'model.inputs',
      /takes 2 features .* has 3/,
    );
    await loadFails(
      {
        ...base,
        model: { kind: 'softmax', inputs: 4, classes: 3 },
        dataset: { kind: 'csv', file: 'three.csv', labelColumn: null },
      },
      'dataset.labelColumn',
      /needs labelled data/,
    );
    await loadFails(
      {
        ...base,
        model: { kind: 'softmax', inputs: 2, classes: 2 },
        dataset: { kind: 'csv', file: 'train.csv' },
      },
      'model.classes',
      /3 classes .* only 2/,
    );
  });
});

describe('job-spec.schema.json', () => {
  it('matches the schema (regenerate: meshgrad schema > docs/job-spec.schema.json; prettier)', async () => {
    const file = path.resolve(import.meta.dirname, '../../../../docs/job-spec.schema.json');
    const { readFile } = await import('node:fs/promises');
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(jobSpecJsonSchema());
  });
});
