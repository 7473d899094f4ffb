/**
 * The new-job form, built from SPEC_FIELDS. A loaded spec file fills the form; the server
 * validates on create and its errors show next to the field they name.
 */
import type { AdminJobSummary } from '@meshgrad/core';
import { ApiError, type AdminApi } from '../api.ts';
import { $, h, setText } from '../dom.ts';
import {
  applies,
  fieldForError,
  formToSpec,
  initialValues,
  specToForm,
  SPEC_FIELDS,
  type SpecField,
} from '../spec-form.ts';

/** Largest spec file the form reads (the server takes 256 KiB of JSON). */
const MAX_SPEC_FILE_BYTES = 256 * 1024;

const GROUP_TITLES: Record<SpecField['group'], string> = {
  Job: 'Job',
  Model: 'Model',
  Data: 'Data',
  Training: 'Training',
  Communication: 'Communication defaults (b, m, encoding)',
};

const inputId = (path: string) => `job-${path.replace(/\./g, '-')}`;

export class NewJobView {
  private readonly inputs = new Map<
    string,
    HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement
  >();
  private readonly errors = new Map<string, HTMLElement>();
  private readonly wrappers = new Map<string, HTMLElement>();
  /** The loaded spec file: fields the form does not show are sent from it unchanged. */
  private base: Record<string, unknown> = {};

  constructor(
    private readonly api: () => AdminApi,
    private readonly onCreated: (job: AdminJobSummary) => void,
  ) {
    this.build();
    this.fill(initialValues());
    ($('job-form') as HTMLFormElement).addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
    const file = $('spec-file') as HTMLInputElement;
    file.addEventListener('change', () => void this.load(file));
  }

  private build(): void {
    const host = $('job-fields');
    const groups = new Map<SpecField['group'], HTMLElement>();
    for (const field of SPEC_FIELDS) {
      let group = groups.get(field.group);
      if (!group) {
        group = h('div', { class: 'field-grid' });
        host.append(
          h('fieldset', { class: 'spec-group' }, h('legend', {}, GROUP_TITLES[field.group]), group),
        );
        groups.set(field.group, group);
      }
      const id = inputId(field.path);
      let input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
      if (field.kind === 'select') {
        input = h(
          'select',
          { id, name: field.path },
          ...(field.options ?? []).map((o) => h('option', { value: o }, o)),
        );
      } else if (field.kind === 'textarea') {
        input = h('textarea', { id, name: field.path, rows: 2 });
      } else {
        input = h('input', {
          id,
          name: field.path,
          type: 'text',
          inputmode:
            field.kind === 'int' ? 'numeric' : field.kind === 'number' ? 'decimal' : undefined,
          placeholder:
            field.placeholder === undefined ? undefined : `default: ${field.placeholder}`,
          spellcheck: 'false',
          autocomplete: 'off',
        });
      }
      const error = h('p', {
        class: 'field-error',
        'data-error-for': field.path,
        id: `${id}-error`,
      });
      input.setAttribute('aria-describedby', `${id}-error`);
      input.addEventListener('input', () => {
        error.textContent = '';
        input.removeAttribute('aria-invalid');
        if (field.kind === 'select') this.syncVisibility();
      });
      const wrapper = h(
        'div',
        { class: `field${field.kind === 'textarea' ? ' wide' : ''}`, 'data-field': field.path },
        h('label', { for: id }, field.label),
        input,
        field.hint ? h('span', { class: 'sub' }, field.hint) : null,
        error,
      );
      group.append(wrapper);
      this.inputs.set(field.path, input);
      this.errors.set(field.path, error);
      this.wrappers.set(field.path, wrapper);
    }
  }

  private values(): Record<string, string> {
    return Object.fromEntries([...this.inputs].map(([path, input]) => [path, input.value]));
  }

  private fill(values: Readonly<Record<string, string>>): void {
    for (const [path, input] of this.inputs) {
      const value = values[path] ?? '';
      // A kind the form has no fields for (e.g. a file dataset from a loaded spec) still shows.
      if (
        input instanceof HTMLSelectElement &&
        ![...input.options].some((o) => o.value === value)
      ) {
        input.append(h('option', { value, 'data-loaded': true }, `${value} (from the file)`));
      }
      input.value = value;
    }
    this.syncVisibility();
  }

  private resetForm(): void {
    this.base = {};
    for (const o of document.querySelectorAll('#job-fields option[data-loaded]')) o.remove();
    this.fill(initialValues());
    ($('spec-file') as HTMLInputElement).value = '';
    setText($('spec-kept'), '');
  }

  private syncVisibility(): void {
    const values = this.values();
    for (const field of SPEC_FIELDS) {
      this.wrappers.get(field.path)?.classList.toggle('hidden', !applies(field, values));
    }
  }

  private clearErrors(): void {
    for (const e of this.errors.values()) e.textContent = '';
    for (const i of this.inputs.values()) i.removeAttribute('aria-invalid');
    setText($('job-form-error'), '');
    setText($('spec-file-error'), '');
  }

  private async load(file: HTMLInputElement): Promise<void> {
    this.clearErrors();
    const f = file.files?.[0];
    if (!f) return;
    const error = $('spec-file-error');
    if (f.size > MAX_SPEC_FILE_BYTES) {
      setText(error, `${f.name} is ${f.size} bytes; a spec is at most ${MAX_SPEC_FILE_BYTES}.`);
      return;
    }
    let spec: unknown;
    try {
      spec = JSON.parse(await f.text());
    } catch (err) {
      setText(error, `${f.name} is not valid JSON: ${(err as Error).message}`);
      return;
    }
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      setText(error, `${f.name} must hold one JSON object (a job spec).`);
      return;
    }
    this.resetForm();
    this.base = spec as Record<string, unknown>;
    this.fill(specToForm(spec));
    const shown = formToSpec(this.values());
    const kept = Object.keys(this.base).filter(
      (k) => !(k in shown) && !SPEC_FIELDS.some((f) => f.path === k || f.path.startsWith(`${k}.`)),
    );
    const dataset = (this.base as { dataset?: { kind?: unknown } }).dataset;
    const fileDataset =
      typeof dataset?.kind === 'string' && !['mnist', 'clusters'].includes(dataset.kind);
    const notes = [
      ...(fileDataset ? [`the ${dataset.kind as string} dataset's files and options`] : []),
      ...kept,
    ];
    setText(
      $('spec-kept'),
      notes.length > 0
        ? `Kept from ${f.name} as written (not shown in the form): ${notes.join(', ')}.`
        : '',
    );
    ($('spec-file') as HTMLInputElement).value = '';
    setText(error, '');
    setText($('job-form-error'), `Loaded ${f.name}: review the form, then create the job.`);
    $('job-form-error').classList.add('info');
  }

  private async submit(): Promise<void> {
    this.clearErrors();
    $('job-form-error').classList.remove('info');
    const values = this.values();
    try {
      const job = await this.api().post<AdminJobSummary>(
        '/api/admin/jobs',
        formToSpec(values, this.base),
      );
      this.resetForm();
      this.onCreated(job);
    } catch (err) {
      const field = err instanceof ApiError && err.field ? fieldForError(err.field, values) : null;
      const slot = field ? this.errors.get(field) : undefined;
      if (field && slot) {
        slot.textContent =
          err instanceof ApiError && err.field !== field
            ? `${err.field}: ${err.message}`
            : (err as Error).message;
        const input = this.inputs.get(field);
        input?.setAttribute('aria-invalid', 'true');
        input?.focus();
      } else {
        const e = err as ApiError;
        setText($('job-form-error'), e.field ? `${e.field}: ${e.message}` : e.message);
      }
    }
  }
}
