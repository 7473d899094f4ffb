/**
 * Job control: pause, resume, stop, learning rate, balancer mode, checkpoint now. Every change
 * goes through the admin API; errors appear next to the field the server names.
 */
import type { AdminJobSummary, AdminBalancerRequest, JobState } from '@meshgrad/core';
import { ApiError, type AdminApi } from '../api.ts';
import { $, h, replaceChildren, setText, show } from '../dom.ts';
import { formatCount, modelText, settingsText } from '../format.ts';

/** How long a confirmation toast stays (ms). */
const TOAST_MS = 4_000;

/** A number when the text is one, else the text, so the server's error names the field. */
const numeric = (text: string): number | string => {
  const n = Number(text);
  return text.trim() !== '' && Number.isFinite(n) ? n : text;
};

function clearErrors(form: HTMLElement): void {
  for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/** Puts an API error next to its field in `form`, or in `fallback`. */
export function showFieldError(form: HTMLElement, err: unknown, fallback: HTMLElement): void {
  const message = err instanceof Error ? err.message : String(err);
  const field = err instanceof ApiError ? err.field : undefined;
  const slot = field ? form.querySelector(`[data-error-for="${CSS.escape(field)}"]`) : null;
  if (slot) {
    slot.textContent = message;
    form
      .querySelector(`[name="${CSS.escape(field as string)}"]`)
      ?.setAttribute('aria-invalid', 'true');
  } else {
    fallback.textContent = field ? `${field}: ${message}` : message;
  }
}

export class ControlView {
  private job: AdminJobSummary | null = null;
  private toastTimer: ReturnType<typeof setTimeout> | undefined;
  /** Inputs the admin has typed into since the last apply: live updates leave them alone. */
  private readonly dirty = new Set<string>();

  constructor(
    private readonly api: () => AdminApi,
    private readonly onChanged: (job: AdminJobSummary) => void,
  ) {
    $('pause').addEventListener('click', () => void this.setState('paused'));
    $('resume').addEventListener('click', () => void this.setState('running'));
    $('stop').addEventListener('click', () => {
      show($('stop-confirm-box'), true);
      show($('stop'), false);
    });
    $('stop-cancel').addEventListener('click', () => this.hideStopConfirm());
    $('stop-confirm').addEventListener('click', () => {
      this.hideStopConfirm();
      void this.setState('stopped');
    });
    $('checkpoint-now').addEventListener('click', () => void this.checkpointNow());

    const lrForm = $('lr-form') as HTMLFormElement;
    $('lr').addEventListener('input', () => this.dirty.add('lr'));
    lrForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.applyLearningRate();
    });

    const balancerForm = $('balancer-form') as HTMLFormElement;
    for (const id of ['b', 'm', 'encoding', 'balancer-automatic', 'balancer-fixed']) {
      $(id).addEventListener('input', () => {
        this.dirty.add('balancer');
        this.syncBalancerFields();
      });
    }
    balancerForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.applyBalancer();
    });
  }

  private hideStopConfirm(): void {
    show($('stop-confirm-box'), false);
    show($('stop'), true);
  }

  private toast(message: string): void {
    const el = $('control-toast');
    setText(el, message);
    show(el, true);
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => show(el, false), TOAST_MS);
  }

  private path(suffix: string): string {
    return `/api/admin/jobs/${encodeURIComponent(this.job?.id ?? '')}/${suffix}`;
  }

  private async setState(state: JobState): Promise<void> {
    const error = $('state-error');
    setText(error, '');
    try {
      const job = await this.api().post<AdminJobSummary>(this.path('control'), { state });
      this.onChanged(job);
      this.toast(
        state === 'paused'
          ? 'Paused: volunteers stop computing.'
          : state === 'running'
            ? 'Resumed: volunteers compute again.'
            : 'Stopped.',
      );
    } catch (err) {
      setText(error, (err as Error).message);
    }
  }

  private async checkpointNow(): Promise<void> {
    const error = $('state-error');
    setText(error, '');
    try {
      await this.api().post(this.path('checkpoints'));
      this.toast('Asked a worker for its state; the checkpoint appears once it is evaluated.');
    } catch (err) {
      setText(error, (err as Error).message);
    }
  }

  private async applyLearningRate(): Promise<void> {
    const form = $('lr-form');
    clearErrors(form);
    const value = ($('lr') as HTMLInputElement).value;
    try {
      const job = await this.api().post<AdminJobSummary>(this.path('control'), {
        learningRate: numeric(value),
      });
      this.dirty.delete('lr');
      this.onChanged(job);
      this.toast(`Learning rate set to ${job.learningRate}.`);
    } catch (err) {
      showFieldError(
        form,
        err,
        form.querySelector('[data-error-for="learningRate"]') as HTMLElement,
      );
    }
  }

  private balancerRequest(): AdminBalancerRequest | Record<string, unknown> {
    if (($('balancer-automatic') as HTMLInputElement).checked) return { mode: 'automatic' };
    return {
      mode: 'fixed',
      communicationPeriod: numeric(($('b') as HTMLInputElement).value),
      blocksPerMessage: numeric(($('m') as HTMLInputElement).value),
      encoding: ($('encoding') as HTMLSelectElement).value,
    };
  }

  private async applyBalancer(): Promise<void> {
    const form = $('balancer-form');
    clearErrors(form);
    try {
      const job = await this.api().post<AdminJobSummary>(
        this.path('balancer'),
        this.balancerRequest(),
      );
      this.dirty.delete('balancer');
      this.onChanged(job);
      this.toast(
        job.balancer.mode === 'fixed'
          ? `Every worker now uses ${settingsText(job.balancer.settings)}.`
          : 'Balancer set to automatic.',
      );
    } catch (err) {
      showFieldError(form, err, form.querySelector('[data-error-for="mode"]') as HTMLElement);
    }
  }

  private syncBalancerFields(): void {
    const fixed = ($('balancer-fixed') as HTMLInputElement).checked;
    for (const id of ['b', 'm', 'encoding']) ($(id) as HTMLInputElement).disabled = !fixed;
    $('fixed-fields').classList.toggle('disabled', !fixed);
  }

  render(job: AdminJobSummary): void {
    const switched = this.job?.id !== job.id;
    this.job = job;
    if (switched) {
      this.dirty.clear();
      clearErrors($('lr-form'));
      clearErrors($('balancer-form'));
      setText($('state-error'), '');
      this.hideStopConfirm();
    }
    replaceChildren($('job-facts'), [
      h('dt', {}, 'Name'),
      h('dd', {}, job.name),
      h('dt', {}, 'Id'),
      h('dd', {}, h('code', {}, job.id)),
      h('dt', {}, 'Hosted by'),
      h('dd', {}, job.host),
      h('dt', {}, 'Model'),
      h('dd', {}, `${modelText(job.model)} · ${formatCount(job.parameters)} parameters`),
      h('dt', {}, 'Data'),
      h(
        'dd',
        {},
        `${job.dataset.name} (${job.dataset.features} features${job.dataset.classes ? `, ${job.dataset.classes} classes` : ''})`,
      ),
      h('dt', {}, 'Batches'),
      h(
        'dd',
        {},
        `${job.batchSize} samples; ${job.blockCount} blocks of up to ${formatCount(job.blockSize)} floats`,
      ),
    ]);

    const stopped = job.state === 'stopped';
    setText(
      $('run-state-note'),
      stopped
        ? 'This job is stopped: its volunteers no longer compute and it cannot be changed. ' +
            'Its charts and checkpoints stay available.'
        : 'Pausing stops every volunteer’s computation (their page says “Paused by the host”); ' +
            'stopping ends the job for good.',
    );
    ($('pause') as HTMLButtonElement).disabled = job.state !== 'running';
    ($('resume') as HTMLButtonElement).disabled = job.state !== 'paused';
    ($('stop') as HTMLButtonElement).disabled = stopped;
    ($('checkpoint-now') as HTMLButtonElement).disabled = job.state !== 'running';
    for (const id of ['lr', 'lr-apply', 'balancer-apply', 'balancer-automatic', 'balancer-fixed']) {
      ($(id) as HTMLInputElement).disabled = stopped;
    }

    const lr = $('lr') as HTMLInputElement;
    if (!this.dirty.has('lr') && document.activeElement !== lr) lr.value = String(job.learningRate);

    const d = job.defaultSettings;
    setText(
      $('balancer-note'),
      `Automatic: the bandwidth-aware balancer tunes each worker's settings to its links every ` +
        `second, starting from the job's defaults (${settingsText(d)}) for a worker that ` +
        `joins, and from the current settings when switched on. Fixed gives every worker the ` +
        `same b, m and encoding, now and when it joins. m is at most ${job.blockCount} (the ` +
        `model's blocks).`,
    );
    if (!this.dirty.has('balancer')) {
      const fixed = job.balancer.mode === 'fixed';
      ($('balancer-fixed') as HTMLInputElement).checked = fixed;
      ($('balancer-automatic') as HTMLInputElement).checked = !fixed;
      const s = job.balancer.mode === 'fixed' ? job.balancer.settings : d;
      ($('b') as HTMLInputElement).value = String(s.communicationPeriod);
      ($('m') as HTMLInputElement).value = String(s.blocksPerMessage);
      ($('encoding') as HTMLSelectElement).value = s.encoding;
      this.syncBalancerFields();
    }
    if (stopped)
      for (const id of ['b', 'm', 'encoding']) ($(id) as HTMLInputElement).disabled = true;
  }
}
