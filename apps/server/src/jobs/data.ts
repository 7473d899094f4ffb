/**
 * Loading a job's training and held-out test sets: the built-in ones (MNIST, Gaussian clusters)
 * and a host's own IDX, CSV or NPY files. Every problem with a file becomes a `JobSpecError`
 * that names the spec field, the file and, from core's readers, where in the file it is.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  DatasetFormatError,
  datasetFromIdx,
  datasetFromNpy,
  gaussianClusters,
  loadMnist,
  parseCsv,
  parseIdx,
  parseNpy,
  parseText,
  Rng,
  selectRows,
  type CsvDataset,
  type CsvOptions,
  type Dataset,
  type NdArray,
} from '@meshgrad/core';
import {
  DEFAULT_TEST_FRACTION,
  JobSpecError,
  modelInputs,
  type FileDatasetSpec,
  type JobSpec,
} from './job-spec.ts';

/** A file dataset larger than this is refused before it is read: it would not fit in memory. */
export const MAX_DATA_FILE_BYTES = 1024 * 1024 * 1024;

export interface JobData {
  readonly train: Dataset;
  readonly test: Dataset;
}

/**
 * Loads the train and held-out test sets a job spec names and checks they fit its model.
 * @throws JobSpecError naming the field (and file) at fault.
 */
export async function loadJobData(spec: JobSpec): Promise<JobData> {
  const data = await loadDatasets(spec);
  checkDataFitsModel(spec, data);
  return data;
}

async function loadDatasets(spec: JobSpec): Promise<JobData> {
  const d = spec.dataset;
  switch (d.kind) {
    case 'mnist':
      return loadMnist();
    case 'clusters': {
      const { clusters, dims, count, testCount, spread, seed } = d;
      // Samples are i.i.d. draws, so the first `count` rows train and the rest are held out.
      const { dataset } = gaussianClusters({
        clusters,
        dims,
        count: count + testCount,
        spread,
        seed,
      });
      return {
        train: selectRows(dataset, range(0, count), 'clusters/train'),
        test: selectRows(dataset, range(count, testCount), 'clusters/test'),
      };
    }
    case 'idx':
    case 'npy': {
      const readArray = d.kind === 'idx' ? parseIdx : parseNpy;
      const fromArrays = d.kind === 'idx' ? datasetFromIdx : datasetFromNpy;
      const featuresKey = d.kind === 'idx' ? 'images' : 'features';
      const load = async (
        featuresFile: string,
        labelsFile: string | null,
        prefix: string,
      ): Promise<Dataset> => {
        const features = await readAndParse(featuresFile, `${prefix}${featuresKey}`, readArray);
        const labels =
          labelsFile === null ? null : await readAndParse(labelsFile, `${prefix}labels`, readArray);
        const name = path.basename(featuresFile);
        return located(
          (err) =>
            err.code.startsWith('ERR_LABEL') && labelsFile !== null
              ? { field: `${prefix}labels`, file: labelsFile, dataset: name }
              : { field: `${prefix}${featuresKey}`, file: featuresFile, dataset: name },
          () => fromArrays(features, labels, { name, scale: d.scale }),
        );
      };
      const main =
        d.kind === 'idx'
          ? { features: d.images, labels: d.labels }
          : { features: d.features, labels: d.labels };
      const train = await load(main.features, main.labels, 'dataset.');
      if (!d.test) return splitByFraction(spec, d, train);
      const test =
        'images' in d.test
          ? await load(d.test.images, d.test.labels, 'dataset.test.')
          : await load(d.test.features, d.test.labels, 'dataset.test.');
      return { train, test };
    }
    case 'csv': {
      const options: CsvOptions = {
        delimiter: d.delimiter,
        header: d.header,
        scale: d.scale,
        ...(d.labelColumn !== undefined ? { labelColumn: d.labelColumn } : {}),
      };
      const train = await loadCsv(d.file, 'dataset.file', options);
      if (!d.test) return splitByFraction(spec, d, train);
      const test = await loadCsv(d.test.file, 'dataset.test.file', options);
      return { train, test: alignCsvClasses(train, test, d.test.file) };
    }
    case 'text': {
      // Windows as long as a sample of the model (positions + 1 tokens; job-spec checks the kind).
      const bytes = await readDataFile(d.file, 'dataset.file');
      const context = modelInputs(spec.model) - 1;
      const name = path.basename(d.file);
      const text = located(
        () => ({ field: 'dataset.file', file: d.file }),
        () => parseText(bytes, { context, validationFraction: d.validationFraction, name }),
      );
      if (text.vocabulary.length > modelClassCount(spec)) {
        throw new JobSpecError(
          'model.classes',
          `${name} has ${text.vocabulary.length} distinct bytes, the model's vocabulary only ${modelClassCount(spec)}`,
          d.file,
        );
      }
      return { train: text.train, test: text.validation };
    }
  }
}

function modelClassCount(spec: JobSpec): number {
  return spec.model.kind === 'kmeans' ? 0 : spec.model.classes;
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

/** Reads a data file, turning file-system errors into a JobSpecError on `field`. */
async function readDataFile(file: string, field: string): Promise<Uint8Array> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new JobSpecError(
      field,
      code === 'ENOENT'
        ? `file not found: ${file}`
        : `cannot read ${file}: ${(err as Error).message}`,
      file,
      { cause: err },
    );
  }
  if (!stat.isFile()) throw new JobSpecError(field, `not a regular file: ${file}`, file);
  if (stat.size > MAX_DATA_FILE_BYTES) {
    throw new JobSpecError(
      field,
      `${file} is ${stat.size} bytes, more than the limit of ${MAX_DATA_FILE_BYTES}`,
      file,
    );
  }
  try {
    return new Uint8Array(await fs.readFile(file));
  } catch (err) {
    throw new JobSpecError(field, `cannot read ${file}: ${(err as Error).message}`, file, {
      cause: err,
    });
  }
}

/** Runs a reader; a DatasetFormatError becomes a JobSpecError on the field `where` picks. */
function located<T>(
  where: (err: DatasetFormatError) => { field: string; file: string; dataset?: string },
  read: () => T,
): T {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof DatasetFormatError)) throw err;
    const { field, file, dataset } = where(err);
    const name = path.basename(file);
    // Readers that know the dataset's name start their message with it already.
    const message =
      err.message.startsWith(`${name}`) || (dataset && err.message.startsWith(`${dataset}`))
        ? err.message
        : `${name}: ${err.message}`;
    throw new JobSpecError(field, message, file, { cause: err });
  }
}

async function readAndParse(
  file: string,
  field: string,
  parse: (bytes: Uint8Array) => NdArray,
): Promise<NdArray> {
  const bytes = await readDataFile(file, field);
  return located(
    () => ({ field, file }),
    () => parse(bytes),
  );
}

async function loadCsv(file: string, field: string, options: CsvOptions): Promise<CsvDataset> {
  const bytes = await readDataFile(file, field);
  return located(
    () => ({ field, file }),
    () => parseCsv(bytes, { ...options, name: path.basename(file) }),
  );
}

/**
 * Named CSV classes are numbered per file in sorted order, so a test file that lacks a class
 * would number the others differently: map its labels onto the training file's class names.
 */
function alignCsvClasses(train: CsvDataset, test: CsvDataset, testFile: string): Dataset {
  const field = 'dataset.test.file';
  if ((train.classNames === null) !== (test.classNames === null) && test.labels && train.labels) {
    throw new JobSpecError(
      field,
      `${path.basename(testFile)}: its labels are ${test.classNames ? 'names' : 'integers'} but the training file's are ${train.classNames ? 'names' : 'integers'}`,
      testFile,
    );
  }
  if (!train.classNames || !test.classNames || !test.labels) return test;
  const index = new Map(train.classNames.map((name, i) => [name, i]));
  const labels = new Uint32Array(test.count);
  for (let i = 0; i < test.count; i++) {
    const name = test.classNames[test.labels[i] as number] as string;
    const mapped = index.get(name);
    if (mapped === undefined) {
      throw new JobSpecError(
        field,
        `${path.basename(testFile)}: class '${name}' (sample ${i}) does not occur in the training file`,
        testFile,
      );
    }
    labels[i] = mapped;
  }
  return { ...test, labels, classes: train.classes };
}

/** Holds out a seeded random `testFraction` of the rows of a file dataset. */
function splitByFraction(spec: JobSpec, d: FileDatasetSpec, all: Dataset): JobData {
  const fraction = d.testFraction ?? DEFAULT_TEST_FRACTION;
  if (all.count < 2) {
    throw new JobSpecError(
      'dataset.testFraction',
      `the dataset has ${all.count} sample; holding some out for testing needs at least 2 (or give test files)`,
    );
  }
  const testCount = Math.min(all.count - 1, Math.max(1, Math.round(all.count * fraction)));
  const order = new Rng(spec.seed ^ 0x5eed7e57).shuffle(range(0, all.count));
  const test = order.slice(0, testCount).sort((a, b) => a - b);
  const train = order.slice(testCount).sort((a, b) => a - b);
  return {
    train: selectRows(all, train, `${all.name}/train`),
    test: selectRows(all, test, `${all.name}/test`),
  };
}

/** The spec field that says where a file dataset's labels come from. */
function labelsField(spec: JobSpec): string {
  return spec.dataset.kind === 'csv' ? 'dataset.labelColumn' : 'dataset.labels';
}

/** Checks feature counts and labels against the model; throws a JobSpecError naming the field. */
export function checkDataFitsModel(spec: JobSpec, { train, test }: JobData): void {
  const { model } = spec;
  const inputs = modelInputs(model);
  const inputsField = model.kind === 'kmeans' ? 'model.dims' : 'model.inputs';
  if (train.features !== inputs) {
    throw new JobSpecError(
      inputsField,
      `the model takes ${inputs} features per sample but the dataset (${train.name}) has ${train.features}`,
    );
  }
  if (test.features !== train.features) {
    throw new JobSpecError(
      testField(spec),
      `the test set (${test.name}) has ${test.features} features per sample, the training set ${train.features}`,
    );
  }
  // K-Means ignores labels, and so does a custom kernel that declares no classes; a next-token
  // model's targets are its input tokens.
  if (model.kind === 'kmeans' || (model.kind === 'custom' && model.classes === 0)) return;
  if (model.kind === 'layers' && model.loss === 'next-token') return;
  if (!train.labels || !test.labels) {
    throw new JobSpecError(
      train.labels ? testField(spec) : labelsField(spec),
      `a ${model.kind} model needs labelled data; the ${train.labels ? 'test' : 'training'} set (${(train.labels ? test : train).name}) has no labels`,
    );
  }
  const classes = Math.max(train.classes, test.classes);
  if (classes > model.classes) {
    throw new JobSpecError(
      'model.classes',
      `the dataset has ${classes} classes (labels 0 to ${classes - 1}), the model only ${model.classes}`,
    );
  }
}

function testField(spec: JobSpec): string {
  switch (spec.dataset.kind) {
    case 'csv':
      return 'dataset.test.file';
    case 'idx':
      return 'dataset.test.images';
    case 'npy':
      return 'dataset.test.features';
    default:
      return 'dataset';
  }
}
