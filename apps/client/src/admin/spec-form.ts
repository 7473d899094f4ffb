/**
 * The new-job form as data: which job-spec fields it has, how its text values become a spec and
 * back (an uploaded spec fills the form), and which input a server error's field path belongs to.
 * Validation itself is the server's (parseJobSpec); the form only shapes what it sends.
 */
import { ENCODINGS } from '@meshgrad/core';

export type FieldKind = 'text' | 'textarea' | 'int' | 'number' | 'select' | 'list';

export interface SpecField {
  /** Dotted path in the job spec, e.g. `model.inputs`; also the input's name. */
  readonly path: string;
  readonly label: string;
  readonly kind: FieldKind;
  readonly group: 'Job' | 'Model' | 'Data' | 'Training' | 'Communication';
  readonly options?: readonly string[];
  /** Shown in the empty input: the server's default when the field is left empty. */
  readonly placeholder?: string;
  readonly hint?: string;
  /** Initial value of a fresh form. */
  readonly initial?: string;
  /** The field applies only when this other field has one of these values. */
  readonly when?: { readonly path: string; readonly values: readonly string[] };
}

const classifier = { path: 'model.kind', values: ['mlp', 'softmax'] } as const;
const clusters = { path: 'dataset.kind', values: ['clusters'] } as const;

export const SPEC_FIELDS: readonly SpecField[] = [
  {
    path: 'id',
    label: 'Job id',
    kind: 'text',
    group: 'Job',
    hint: 'Lower-case letters, digits, _ or -; names the job in URLs and the data directory.',
  },
  { path: 'name', label: 'Name', kind: 'text', group: 'Job' },
  { path: 'host', label: 'Hosted by', kind: 'text', group: 'Job', placeholder: 'a meshgrad host' },
  { path: 'description', label: 'Description', kind: 'textarea', group: 'Job' },
  {
    path: 'model.kind',
    label: 'Model',
    kind: 'select',
    group: 'Model',
    options: ['mlp', 'softmax', 'kmeans'],
    initial: 'mlp',
  },
  {
    path: 'model.inputs',
    label: 'Inputs',
    kind: 'int',
    group: 'Model',
    initial: '784',
    when: classifier,
  },
  {
    path: 'model.hidden',
    label: 'Hidden layers',
    kind: 'list',
    group: 'Model',
    initial: '128',
    hint: 'Widths, comma-separated; empty for none.',
    when: { path: 'model.kind', values: ['mlp'] },
  },
  {
    path: 'model.classes',
    label: 'Classes',
    kind: 'int',
    group: 'Model',
    initial: '10',
    when: classifier,
  },
  {
    path: 'model.dims',
    label: 'Dimensions',
    kind: 'int',
    group: 'Model',
    when: { path: 'model.kind', values: ['kmeans'] },
  },
  {
    path: 'model.clusters',
    label: 'Clusters',
    kind: 'int',
    group: 'Model',
    when: { path: 'model.kind', values: ['kmeans'] },
  },
  {
    path: 'dataset.kind',
    label: 'Dataset',
    kind: 'select',
    group: 'Data',
    options: ['mnist', 'clusters'],
    initial: 'mnist',
    hint: 'mnist: the built-in 8,000/2,000 digits. clusters: seeded Gaussian blobs.',
  },
  { path: 'dataset.clusters', label: 'Clusters', kind: 'int', group: 'Data', when: clusters },
  { path: 'dataset.dims', label: 'Dimensions', kind: 'int', group: 'Data', when: clusters },
  { path: 'dataset.count', label: 'Training samples', kind: 'int', group: 'Data', when: clusters },
  {
    path: 'dataset.testCount',
    label: 'Test samples',
    kind: 'int',
    group: 'Data',
    placeholder: '2000',
    when: clusters,
  },
  {
    path: 'dataset.spread',
    label: 'Spread',
    kind: 'number',
    group: 'Data',
    placeholder: '1',
    when: clusters,
  },
  {
    path: 'dataset.seed',
    label: 'Data seed',
    kind: 'int',
    group: 'Data',
    placeholder: '7',
    when: clusters,
  },
  {
    path: 'training.mode',
    label: 'Training mode',
    kind: 'select',
    group: 'Training',
    options: ['asgd', 'sync'],
    initial: 'asgd',
    hint: 'asgd: asynchronous SGD, workers swap blocks with peers. sync: the baseline, one server round (barrier) per minibatch.',
  },
  {
    path: 'training.roundTimeoutSec',
    label: 'Round timeout (s)',
    kind: 'number',
    group: 'Training',
    placeholder: '30',
    hint: 'A worker silent this long is left out of the round.',
    when: { path: 'training.mode', values: ['sync'] },
  },
  {
    path: 'training.merge.order',
    label: 'Merge',
    kind: 'select',
    group: 'Training',
    options: ['step-then-average', 'average-then-step'],
    initial: 'step-then-average',
    hint: 'step-then-average: the local step, then the mean with the accepted blocks (default). average-then-step: the mean, then the whole step (the scaling benchmark’s rule, with Parzen off and momentum 0.5).',
    when: { path: 'training.mode', values: ['asgd'] },
  },
  {
    path: 'training.merge.parzen',
    label: 'Parzen test',
    kind: 'select',
    group: 'Training',
    options: ['hard', 'off'],
    initial: 'hard',
    hint: 'hard: merge a block only when the local step moves toward it (default; also a defence against bad peers). off: every finite block under the norm bound.',
    when: { path: 'training.mode', values: ['asgd'] },
  },
  {
    path: 'training.merge.momentum',
    label: 'Outer momentum',
    kind: 'number',
    group: 'Training',
    placeholder: '0',
    hint: 'β in [0, 1) on the merged state, applied every 4 steps; 0 (default) turns it off.',
    when: { path: 'training.mode', values: ['asgd'] },
  },
  { path: 'batchSize', label: 'Batch size', kind: 'int', group: 'Training', placeholder: '64' },
  {
    path: 'learningRate',
    label: 'Learning rate',
    kind: 'number',
    group: 'Training',
    placeholder: '0.1',
  },
  { path: 'seed', label: 'Seed', kind: 'int', group: 'Training', placeholder: '1' },
  {
    path: 'blockSize',
    label: 'Block size (floats)',
    kind: 'int',
    group: 'Training',
    placeholder: '16384',
  },
  { path: 'shards', label: 'Data shards', kind: 'int', group: 'Training', placeholder: '8' },
  {
    path: 'neighbours',
    label: 'Neighbours per worker',
    kind: 'int',
    group: 'Training',
    placeholder: '4',
  },
  {
    path: 'checkpointIntervalSec',
    label: 'Checkpoint every (s)',
    kind: 'number',
    group: 'Training',
    placeholder: '10',
  },
  {
    path: 'communication.communicationPeriod',
    label: 'Samples per send (b)',
    kind: 'int',
    group: 'Communication',
    placeholder: '256',
  },
  {
    path: 'communication.blocksPerMessage',
    label: 'Blocks per send (m)',
    kind: 'int',
    group: 'Communication',
    placeholder: '1',
  },
  {
    path: 'communication.encoding',
    label: 'Encoding',
    kind: 'select',
    group: 'Communication',
    options: ENCODINGS,
    initial: 'f32',
  },
];

export type FormValues = Readonly<Record<string, string>>;

export function initialValues(): Record<string, string> {
  return Object.fromEntries(SPEC_FIELDS.map((f) => [f.path, f.initial ?? '']));
}

/** Whether a field applies given the other values (e.g. `model.dims` only for K-Means). */
export function applies(field: SpecField, values: FormValues): boolean {
  return !field.when || field.when.values.includes(values[field.when.path] ?? '');
}

/**
 * A number when the text is one, else the text itself, so the server's error names the field
 * ("expected number") instead of the form silently dropping what was typed.
 */
function numeric(text: string): number | string {
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : text;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next === 'object' && next !== null) node = next as Record<string, unknown>;
    else {
      const created: Record<string, unknown> = {};
      node[key] = created;
      node = created;
    }
  }
  node[keys[keys.length - 1] as string] = value;
}

function getPath(source: unknown, path: string): unknown {
  let node = source;
  for (const key of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function deletePath(target: Record<string, unknown>, path: string): void {
  const keys = path.split('.');
  const parent = keys.length === 1 ? target : getPath(target, keys.slice(0, -1).join('.'));
  if (typeof parent === 'object' && parent !== null) {
    delete (parent as Record<string, unknown>)[keys[keys.length - 1] as string];
  }
}

/**
 * The job spec the form describes: applicable, non-empty fields only (the rest default). With
 * `base` (an uploaded spec), fields the form does not show (say a file dataset's paths, or a
 * `stop` criterion) are kept from it; a model or dataset of another kind than the form's is
 * dropped whole, since its fields belong to that kind.
 */
export function formToSpec(
  values: FormValues,
  base: Readonly<Record<string, unknown>> = {},
): Record<string, unknown> {
  const spec = structuredClone(base) as Record<string, unknown>;
  for (const group of ['model', 'dataset']) {
    if (getPath(spec, `${group}.kind`) !== values[`${group}.kind`]) delete spec[group];
  }
  for (const field of SPEC_FIELDS) {
    if (!applies(field, values)) {
      deletePath(spec, field.path);
      continue;
    }
    const text = (values[field.path] ?? '').trim();
    if (field.kind === 'list') {
      // An empty hidden-layer list is meaningful (no hidden layer), so it is always sent.
      setPath(
        spec,
        field.path,
        text === ''
          ? []
          : text
              .split(/[\s,]+/)
              .filter(Boolean)
              .map(numeric),
      );
      continue;
    }
    if (text === '') {
      deletePath(spec, field.path);
      continue;
    }
    setPath(
      spec,
      field.path,
      field.kind === 'int' || field.kind === 'number' ? numeric(text) : text,
    );
  }
  return spec;
}

/** Form values from an uploaded spec; fields it does not set are left empty. */
export function specToForm(spec: unknown): Record<string, string> {
  const values: Record<string, string> = {};
  for (const field of SPEC_FIELDS) {
    const v = getPath(spec, field.path);
    if (v === undefined || v === null) values[field.path] = '';
    else if (Array.isArray(v)) values[field.path] = v.map(String).join(', ');
    else if (typeof v === 'object') values[field.path] = JSON.stringify(v);
    else values[field.path] = String(v);
  }
  // Keep the form's kinds when the spec leaves them out, so the right fields show.
  values['model.kind'] ||= 'mlp';
  values['dataset.kind'] ||= 'mnist';
  return values;
}

/**
 * The form field a server error's path belongs to: the field itself, the list it indexes into
 * (`model.hidden.0` → `model.hidden`), or for a whole object the first applicable field in it
 * (`model` → `model.kind`). Null when the form has no such field.
 */
export function fieldForError(path: string, values: FormValues): string | null {
  const fields = SPEC_FIELDS.filter((f) => applies(f, values));
  const exact = fields.find((f) => f.path === path);
  if (exact) return exact.path;
  const parent = fields
    .filter((f) => path.startsWith(`${f.path}.`))
    .sort((a, b) => b.path.length - a.path.length)[0];
  if (parent) return parent.path;
  const child = fields.find((f) => f.path.startsWith(`${path}.`));
  return child ? child.path : null;
}
