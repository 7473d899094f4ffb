/** Checkpoints of the watched job with their test results and downloads. */
import type { AdminCheckpoint, AdminJobSummary } from '@meshgrad/core';
import type { AdminApi } from '../api.ts';
import { $, h, replaceChildren, setText, show } from '../dom.ts';
import { formatAccuracy, formatBytes, formatCount, formatLoss, formatTime } from '../format.ts';

export class CheckpointsView {
  constructor(private readonly api: () => AdminApi) {}

  private download(c: AdminCheckpoint, jobId: string, format: 'safetensors' | 'bin'): void {
    const error = $('download-error');
    setText(error, '');
    const path = format === 'safetensors' ? c.downloads.safetensors : c.downloads.binary;
    this.api()
      .download(path, `${jobId}-checkpoint-${c.seq}.${format}`)
      .catch((err: unknown) => setText(error, `Download failed: ${(err as Error).message}`));
  }

  render(job: AdminJobSummary, checkpoints: readonly AdminCheckpoint[]): void {
    const classifier = job.model.kind !== 'kmeans';
    setText($('checkpoint-quality-head'), classifier ? 'Test accuracy' : 'Test objective');
    const rows = [...checkpoints].reverse().map((c) =>
      h(
        'tr',
        { 'data-seq': c.seq },
        h('td', { class: 'num' }, String(c.seq)),
        h('td', {}, formatTime(c.createdAt)),
        h('td', { class: 'num' }, formatCount(c.samples)),
        h(
          'td',
          {},
          h('code', {}, c.worker),
          c.averagedOver ? ` and ${c.averagedOver - 1} more, averaged` : '',
        ),
        h('td', { class: 'num loss' }, formatLoss(c.testLoss)),
        h(
          'td',
          { class: 'num quality' },
          classifier ? formatAccuracy(c.testAccuracy) : formatLoss(c.testObjective),
        ),
        h(
          'td',
          { class: 'downloads' },
          this.button('safetensors', 'download-safetensors', () =>
            this.download(c, job.id, 'safetensors'),
          ),
          this.button(`raw float32 (${formatBytes(c.parameters * 4)})`, 'download-binary', () =>
            this.download(c, job.id, 'bin'),
          ),
        ),
      ),
    );
    const table = $('checkpoints-table') as HTMLTableElement;
    replaceChildren(table.tBodies[0] as HTMLTableSectionElement, rows);
    show(table, rows.length > 0);
    show($('checkpoints-empty'), rows.length === 0);
    setText($('tab-checkpoints'), rows.length > 0 ? String(rows.length) : '');
  }

  private button(label: string, cls: string, onClick: () => void): HTMLButtonElement {
    const b = h('button', { type: 'button', class: `small ${cls}` }, label);
    b.addEventListener('click', onClick);
    return b;
  }
}
