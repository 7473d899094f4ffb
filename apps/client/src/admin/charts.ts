/**
 * The overview's charts (uPlot): loss, test quality, throughput, workers, and per-worker b, m and
 * encoding. All drawn from the metrics history, so a reload redraws the whole run.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { AdminMetricsRecord } from '@meshgrad/core';
import { h } from './dom.ts';
import { encodingFromBits, formatAccuracy, formatLoss, formatRate } from './format.ts';
import {
  overviewSeries,
  perWorkerSeries,
  type Column,
  type OverviewSeries,
  type WorkerMetric,
} from './series.ts';

const CHART_HEIGHT = 190;

/** Distinct colours, the first from the page's accent; workers cycle through them. */
export const PALETTE = [
  '#2f6fed',
  '#e8710a',
  '#1f8a4c',
  '#c62828',
  '#8e44ad',
  '#00838f',
  '#b26a00',
  '#d81b60',
  '#5d6675',
  '#6d4c41',
];

interface LineSpec {
  readonly label: string;
  readonly color: string;
  /** Sparse series (test metrics at checkpoints): join the points and mark them. */
  readonly sparse?: boolean;
  readonly stepped?: boolean;
}

interface ChartSpec {
  readonly key: string;
  readonly title: string;
  readonly note?: string;
  readonly format: (v: number) => string;
  /** Fixed y range, e.g. accuracy [0, 1]. */
  readonly range?: readonly [number, number];
  /** Where the y axis puts ticks, e.g. only at the encodings' 8, 16 and 32 bits. */
  readonly splits?: readonly number[];
  /** Axis labels, when they want fewer digits than the legend (`format`). */
  readonly tick?: (v: number) => string;
  /** Counts (workers, b, m): ticks on whole numbers only. */
  readonly integer?: boolean;
}

const stepped = uPlot.paths.stepped?.({ align: 1 });
const INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 100_000];

class Chart {
  readonly el: HTMLElement;
  private readonly plotHost: HTMLElement;
  private readonly emptyNote: HTMLElement;
  private plot: uPlot | null = null;
  private lines: readonly LineSpec[] = [];
  private data: uPlot.AlignedData = [[]];

  constructor(private readonly spec: ChartSpec) {
    this.plotHost = h('div', { class: 'plot' });
    this.emptyNote = h('p', { class: 'empty' }, 'No data yet.');
    this.el = h(
      'figure',
      { class: 'chart card', 'data-chart': spec.key, 'data-points': 0 },
      h(
        'figcaption',
        {},
        h('strong', {}, spec.title),
        spec.note ? h('span', { class: 'hint' }, ` ${spec.note}`) : null,
      ),
      this.plotHost,
      this.emptyNote,
    );
  }

  /** Draws `columns` (one per line) over `time`; rebuilds the plot when the lines changed. */
  update(time: number[], lines: readonly LineSpec[], columns: readonly Column[]): void {
    this.data = [time, ...columns] as uPlot.AlignedData;
    const hasData = time.length > 0 && columns.some((c) => c.some((v) => v !== null));
    this.el.dataset.points = String(hasData ? time.length : 0);
    this.emptyNote.classList.toggle('hidden', hasData);
    this.plotHost.classList.toggle('hidden', !hasData);
    const same =
      this.plot !== null &&
      lines.length === this.lines.length &&
      lines.every((l, i) => l.label === this.lines[i]?.label && l.color === this.lines[i]?.color);
    if (!hasData) return;
    if (same && this.plot) {
      this.plot.setData(this.data);
      return;
    }
    this.lines = lines;
    this.plot?.destroy();
    this.plot = new uPlot(this.options(), this.data, this.plotHost);
  }

  resize(): void {
    if (!this.plot) return;
    const width = this.plotHost.clientWidth;
    if (width > 0 && width !== this.plot.width) this.plot.setSize({ width, height: CHART_HEIGHT });
  }

  private options(): uPlot.Options {
    const { spec } = this;
    const fmt = (_u: uPlot, v: number | null) => (v === null ? '–' : spec.format(v));
    return {
      width: Math.max(this.plotHost.clientWidth, 280),
      height: CHART_HEIGHT,
      scales: {
        // One record alone would give a zero-width range, which uPlot stretches over years.
        x: {
          time: true,
          range: (_u, min, max) => (min === max ? [min - 60, max + 60] : [min, max]),
        },
        y: spec.range ? { range: [spec.range[0], spec.range[1]] } : {},
      },
      axes: [
        { stroke: '#5d6675', grid: { stroke: '#eef0f4' }, ticks: { stroke: '#dde1e8' } },
        {
          stroke: '#5d6675',
          grid: { stroke: '#eef0f4' },
          ticks: { stroke: '#dde1e8' },
          size: 64,
          values: (_u, splits) => splits.map((v) => (spec.tick ?? spec.format)(v)),
          ...(spec.splits ? { splits: () => [...(spec.splits as number[])] } : {}),
          ...(spec.integer ? { incrs: INTEGER_STEPS } : {}),
        },
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [
        {},
        ...this.lines.map((l): uPlot.Series => ({
          label: l.label,
          stroke: l.color,
          width: 2,
          value: fmt,
          spanGaps: l.sparse === true,
          // Sparse series always mark their points; dense ones only when few (uPlot's default).
          ...(l.sparse ? { points: { show: true, size: 6, fill: l.color } } : {}),
          ...(l.stepped && stepped ? { paths: stepped } : {}),
        })),
      ],
    };
  }

  destroy(): void {
    this.plot?.destroy();
    this.plot = null;
  }
}

const workerLines = (workers: readonly string[]): LineSpec[] =>
  workers.map((id, i) => ({
    label: id,
    color: PALETTE[i % PALETTE.length] as string,
    stepped: true,
  }));

/** All overview charts in one grid; `update(history, kind)` redraws them. */
export class OverviewCharts {
  readonly el: HTMLElement;
  private readonly loss = new Chart({
    key: 'loss',
    title: 'Loss',
    format: formatLoss,
    tick: (v) => String(Number(v.toPrecision(3))),
  });
  private readonly quality = new Chart({
    key: 'accuracy',
    title: 'Test accuracy',
    note: 'at each checkpoint',
    format: (v) => formatAccuracy(v).replace('.00%', '%'),
    range: [0, 1],
  });
  private readonly objective = new Chart({
    key: 'objective',
    title: 'Test objective',
    note: 'mean squared distance to the nearest centre, at each checkpoint',
    format: formatLoss,
    tick: (v) => String(Number(v.toPrecision(3))),
  });
  private readonly throughput = new Chart({
    key: 'throughput',
    title: 'Samples/s',
    note: 'all workers',
    format: formatRate,
  });
  private readonly workers = new Chart({
    key: 'workers',
    integer: true,
    title: 'Workers',
    format: (v) => (Number.isInteger(v) ? String(v) : ''),
  });
  private readonly b = new Chart({
    key: 'b',
    integer: true,
    title: 'b per worker',
    note: 'samples between two sends; workers with the same settings overlap',
    format: (v) => (Number.isInteger(v) ? formatRate(v) : ''),
  });
  private readonly m = new Chart({
    key: 'm',
    integer: true,
    title: 'm per worker',
    note: 'blocks per send',
    format: (v) => (Number.isInteger(v) ? String(v) : ''),
  });
  private readonly encoding = new Chart({
    key: 'encoding',
    title: 'Encoding per worker',
    format: (v) => encodingFromBits(v),
    range: [0, 36],
    splits: [8, 16, 32],
  });
  private readonly all: Chart[];
  private readonly observer: ResizeObserver;

  constructor() {
    this.all = [
      this.loss,
      this.quality,
      this.objective,
      this.throughput,
      this.workers,
      this.b,
      this.m,
      this.encoding,
    ];
    this.el = h('div', { class: 'chart-grid' }, ...this.all.map((c) => c.el));
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(this.el);
  }

  update(history: readonly AdminMetricsRecord[], classifier: boolean): void {
    const s: OverviewSeries = overviewSeries(history);
    this.loss.update(
      s.time,
      [
        { label: 'training (workers)', color: PALETTE[0] as string },
        { label: 'test (checkpoints)', color: PALETTE[1] as string, sparse: true },
      ],
      [s.trainLoss, s.testLoss],
    );
    this.quality.el.classList.toggle('hidden', !classifier);
    this.objective.el.classList.toggle('hidden', classifier);
    if (classifier) {
      this.quality.update(
        s.time,
        [{ label: 'test accuracy', color: PALETTE[2] as string, sparse: true }],
        [s.testAccuracy],
      );
    } else {
      this.objective.update(
        s.time,
        [{ label: 'test objective', color: PALETTE[2] as string, sparse: true }],
        [s.testObjective],
      );
    }
    this.throughput.update(
      s.time,
      [{ label: 'samples/s', color: PALETTE[0] as string }],
      [s.samplesPerSec],
    );
    this.workers.update(
      s.time,
      [{ label: 'workers', color: PALETTE[4] as string, stepped: true }],
      [s.workers],
    );
    const perWorker: Array<[Chart, WorkerMetric]> = [
      [this.b, 'communicationPeriod'],
      [this.m, 'blocksPerMessage'],
      [this.encoding, 'encodingBits'],
    ];
    for (const [chart, metric] of perWorker) {
      const w = perWorkerSeries(history, metric);
      chart.update(w.time, workerLines(w.workers), w.values);
    }
  }

  resize(): void {
    for (const c of this.all) c.resize();
  }

  destroy(): void {
    this.observer.disconnect();
    for (const c of this.all) c.destroy();
  }
}
