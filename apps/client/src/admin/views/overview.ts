/** The overview: headline numbers and the charts. */
import type { AdminJobSummary, AdminMetricsRecord } from '@meshgrad/core';
import { OverviewCharts } from '../charts.ts';
import { $, setText } from '../dom.ts';
import { formatAccuracy, formatCount, formatLoss, formatRate } from '../format.ts';

const STATE_TEXT = { running: 'Running', paused: 'Paused', stopped: 'Stopped' } as const;

export class OverviewView {
  private readonly charts = new OverviewCharts();

  constructor() {
    $('charts').append(this.charts.el);
    setText(
      $('overview-hint'),
      'Charts replay the server’s metrics history: a record every 5 s while workers are ' +
        'connected and one at each checkpoint, so a reload shows the whole run.',
    );
  }

  renderSummary(job: AdminJobSummary): void {
    const state = $('kpi-state');
    setText(state, STATE_TEXT[job.state]);
    state.className = `value state-${job.state}`;
    const training = job.training ?? { mode: 'asgd' };
    setText(
      $('kpi-training'),
      training.mode === 'sync'
        ? `sync, round ${formatCount(training.round)}${training.waitingFor > 0 ? ` (waiting for ${training.waitingFor})` : ''}`
        : 'ASGD',
    );
    setText($('kpi-workers'), String(job.workers));
    setText($('kpi-sps'), formatRate(job.samplesPerSec));
    setText($('kpi-samples'), formatCount(job.samples));
    setText($('kpi-loss'), formatLoss(job.trainLoss));
    const classifier = job.model.kind !== 'kmeans';
    setText($('kpi-quality-label'), classifier ? 'Test accuracy' : 'Test objective');
    const c = job.latestCheckpoint;
    const quality = c
      ? classifier
        ? formatAccuracy(c.testAccuracy)
        : formatLoss(c.testObjective)
      : '–';
    setText($('kpi-quality'), c ? `${quality} (#${c.seq})` : quality);
  }

  renderHistory(history: readonly AdminMetricsRecord[], classifier: boolean): void {
    this.charts.update(history, classifier);
  }

  /** Charts measure their width only while visible. */
  shown(): void {
    this.charts.resize();
  }
}
