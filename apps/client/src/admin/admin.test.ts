import { describe, expect, it } from 'vitest';
import type { AdminMetricsRecord, Encoding } from '@meshgrad/core';
import {
  browserText,
  formatAccuracy,
  formatBytesPerSec,
  formatDuration,
  formatRate,
  settingsText,
} from './format.ts';
import { lastValue, overviewSeries, perWorkerSeries } from './series.ts';
import { fieldForError, formToSpec, initialValues, specToForm } from './spec-form.ts';

const rec = (time: string, extra: Partial<AdminMetricsRecord> = {}): AdminMetricsRecord => ({
  time,
  samples: 0,
  workers: 1,
  samplesPerSec: 10,
  ...extra,
});

describe('format', () => {
  it('shows accuracies exactly on the test set grid', () => {
    expect(formatAccuracy(0.9135)).toBe('91.35%');
    expect(formatAccuracy(1)).toBe('100.00%');
    expect(formatAccuracy(undefined)).toBe('–');
    expect(formatRate(1234.5)).toBe('1,235');
    expect(formatRate(12.34)).toBe('12.3');
    expect(formatBytesPerSec(1536)).toBe('1.5 KiB/s');
    expect(formatDuration(1500)).toBe('2 s');
    expect(settingsText({ communicationPeriod: 64, blocksPerMessage: 2, encoding: 'f16' })).toBe(
      'b=64 · m=2 · f16',
    );
    expect(
      browserText(
        'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36',
      ),
    ).toBe('Headless Chrome 131 on Linux');
    expect(browserText('vitest')).toBe('vitest');
  });
});

describe('series', () => {
  it('aligns records in time order with gaps for sparse test metrics', () => {
    const s = overviewSeries([
      rec('2025-01-01T00:00:10Z', { trainLoss: 1, testAccuracy: 0.5, checkpoint: 1 }),
      rec('2025-01-01T00:00:05Z', { trainLoss: 2 }),
      rec('not a time'),
      rec('2025-01-01T00:00:15Z', { trainLoss: 0.5, workers: 3 }),
    ]);
    expect(s.time.map((t) => t % 60)).toEqual([5, 10, 15]);
    expect(s.trainLoss).toEqual([2, 1, 0.5]);
    expect(s.testAccuracy).toEqual([null, 0.5, null]);
    expect(s.workers).toEqual([1, 1, 3]);
    expect(lastValue(s.testAccuracy)).toBe(0.5);
    expect(lastValue([null, null])).toBeUndefined();
  });

  it('gives each worker a column, null while it was away', () => {
    const w = (b: number, encoding: Encoding = 'f32') => ({
      samplesPerSec: 1,
      communicationPeriod: b,
      blocksPerMessage: 1,
      encoding,
    });
    const history = [
      rec('2025-01-01T00:00:00Z', { perWorker: { a: w(64) } }),
      rec('2025-01-01T00:00:05Z', { perWorker: { a: w(32, 'f16'), b: w(64) } }),
      rec('2025-01-01T00:00:10Z', { perWorker: { b: w(128, 'int8') } }),
    ];
    const b = perWorkerSeries(history, 'communicationPeriod');
    expect(b.workers).toEqual(['a', 'b']);
    expect(b.values).toEqual([
      [64, 32, null],
      [null, 64, 128],
    ]);
    expect(perWorkerSeries(history, 'encodingBits').values).toEqual([
      [32, 16, null],
      [null, 32, 8],
    ]);
  });
});

describe('spec form', () => {
  it('builds a spec from the initial form plus an id and name', () => {
    const values = { ...initialValues(), id: 'digits-2', name: 'Digits again' };
    const spec = formToSpec(values);
    expect(spec).toEqual({
      id: 'digits-2',
      name: 'Digits again',
      model: { kind: 'mlp', inputs: 784, hidden: [128], classes: 10 },
      dataset: { kind: 'mnist' },
      training: { mode: 'asgd', merge: { order: 'step-then-average', parzen: 'hard' } },
      communication: { encoding: 'f32' },
    });
  });

  it('keeps what a loaded spec sets that the form does not show', () => {
    const loaded = {
      id: 'files',
      name: 'From files',
      model: { kind: 'softmax', inputs: 4, classes: 3 },
      dataset: { kind: 'csv', file: 'data/iris.csv', labelColumn: 'species' },
      stop: { targetAccuracy: 0.9 },
      balancer: { mode: 'fixed', communicationPeriod: 32, blocksPerMessage: 1 },
    };
    const values = specToForm(loaded);
    expect(values['dataset.kind']).toBe('csv');
    expect(formToSpec(values, loaded)).toEqual(loaded);
    // Edits win; a model of another kind replaces the loaded one whole; cleared fields default.
    const edited = formToSpec(
      {
        ...values,
        'model.kind': 'kmeans',
        'model.dims': '4',
        'model.clusters': '3',
        name: '',
        learningRate: '0.2',
      },
      loaded,
    );
    expect(edited.model).toEqual({ kind: 'kmeans', dims: 4, clusters: 3 });
    expect(edited.name).toBeUndefined();
    expect(edited.learningRate).toBe(0.2);
    expect(edited.dataset).toEqual(loaded.dataset);
    expect(loaded.model.kind).toBe('softmax');
  });

  it('sends only the fields of the chosen kinds, and typed numbers', () => {
    const spec = formToSpec({
      ...initialValues(),
      id: 'km',
      name: 'K',
      'model.kind': 'kmeans',
      'model.dims': '2',
      'model.clusters': '3',
      'dataset.kind': 'clusters',
      'dataset.clusters': '3',
      'dataset.dims': '2',
      'dataset.count': '500',
      learningRate: 'fast',
    });
    expect(spec.model).toEqual({ kind: 'kmeans', dims: 2, clusters: 3 });
    expect(spec.dataset).toEqual({ kind: 'clusters', clusters: 3, dims: 2, count: 500 });
    expect(spec.learningRate).toBe('fast');
  });

  it('round-trips an uploaded spec through the form', () => {
    const uploaded = {
      id: 'up',
      name: 'Uploaded',
      model: { kind: 'mlp', inputs: 784, hidden: [64, 32], classes: 10 },
      dataset: { kind: 'mnist' },
      batchSize: 32,
      learningRate: 0.05,
      communication: { communicationPeriod: 128, blocksPerMessage: 2, encoding: 'f16' },
    };
    const values = specToForm(uploaded);
    expect(values['model.hidden']).toBe('64, 32');
    expect(formToSpec(values)).toEqual(uploaded);
  });

  it('maps server error paths to form fields', () => {
    const values = initialValues();
    expect(fieldForError('learningRate', values)).toBe('learningRate');
    expect(fieldForError('model.hidden.0', values)).toBe('model.hidden');
    expect(fieldForError('model', values)).toBe('model.kind');
    expect(fieldForError('communication', values)).toBe('communication.communicationPeriod');
    expect(fieldForError('dataset.count', values)).toBeNull();
    expect(fieldForError('nonsense', values)).toBeNull();
  });
});
