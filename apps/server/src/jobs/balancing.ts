/**
 * How a job picks its workers' communication settings (DESIGN §3): fixed settings for every
 * worker, or core's automatic `Balancer`, fed each worker's latest report once per tick.
 */
import {
  Balancer,
  BROWSER_TRUSTED_BUSY_FRACTION,
  SLICE_WORKERS,
  type ModelTraffic,
  type WorkerPlan,
  type WorkerReport,
  type WorkerSettings,
} from '@meshgrad/core';
import type { Logger } from '../logger.ts';
import type { BalancerMode } from '../store.ts';
import type { JobSpec } from './job-spec.ts';
import type { JobOutbox } from './outbox.ts';
import type { Roster, WorkerEntry } from './roster.ts';

export class AutoBalancing {
  mode: BalancerMode;
  /**
   * Core's balancer, made on its first tick in automatic mode and dropped in fixed mode (and
   * when the job joins a cluster), so a restart begins afresh from the workers' current settings.
   */
  private balancer: Balancer | null = null;
  /** A tick is between two of its slices. */
  private ticking = false;

  constructor(
    private readonly spec: JobSpec,
    private readonly model: ModelTraffic,
    private readonly log: Logger,
    /** Lets the event loop run between two slices of a tick (tests count the calls). */
    private readonly yieldToEventLoop: () => Promise<void> = () =>
      new Promise((resolve) => setImmediate(resolve)),
  ) {
    this.mode = balancerFromSpec(spec);
  }

  /** Whether the balancer has planned (so it chooses neighbours when `choosesNeighbours`). */
  get planning(): boolean {
    return this.balancer !== null;
  }

  /**
   * Whether the balancer chooses neighbours: in automatic mode on a process that runs the job
   * alone. In a cluster, neighbours span processes and every process computes the same ring
   * (`Roster.renewNeighbours`); each process's balancer then tunes only its own workers.
   */
  choosesNeighbours(sharedJob: boolean): boolean {
    return this.mode.mode === 'automatic' && !sharedJob;
  }

  /**
   * The settings a joining worker gets: the fixed ones, or in automatic mode the spec's
   * `communication` defaults, from which the balancer adapts once the worker reports (its first
   * plan for a worker applies at once). The spec's defaults rather than core's
   * `initialSettings`: those need the worker's speed, which the server learns only from its
   * first report.
   */
  settingsForNewWorker(): WorkerSettings {
    return this.mode.mode === 'fixed' ? { ...this.mode.settings } : { ...this.spec.communication };
  }

  /** Starts the automatic balancer afresh on its next tick (neighbours now span processes). */
  restart(): void {
    this.balancer = null;
  }

  /**
   * Switches the mode. Fixed mode sends every worker whose settings changed the fixed ones and
   * stops the automatic balancer; automatic mode leaves every worker's settings as they are and
   * starts the balancer afresh on the next tick, which adapts them from there.
   */
  setMode(mode: BalancerMode, roster: Roster, outbox: JobOutbox): void {
    this.mode = mode;
    this.balancer = null;
    for (const w of roster.workers.values()) w.plan = null;
    if (mode.mode !== 'fixed') return;
    for (const w of roster.workers.values()) this.apply(w, mode.settings, outbox);
  }

  /**
   * One tick of the automatic balancer, once per stats period: the latest report of every
   * worker that has sent one goes in; settings that changed go out to their workers, and so do
   * neighbour lists that changed when `chooseNeighbours`. Does nothing in fixed mode, or while
   * the previous tick still runs (its reports stay fresh for the next one).
   *
   * The tick runs in slices of `SLICE_WORKERS` workers with a turn of the event loop between
   * them (DESIGN §3.4): at 10,000 workers the whole tick takes longer than a message may wait.
   * Workers may report or leave in between: the plans are for the reports taken at the start
   * and go only to workers still here, and a tick whose balancer was dropped meanwhile (a mode
   * switch, joining a cluster) ends without applying anything.
   *
   * Returns the tick's main-thread time, ms: its slices without the turns of the event loop
   * between them (whose other work its wall time also counts); null when no tick ran or it was
   * abandoned.
   */
  async tick(
    roster: Roster,
    outbox: JobOutbox,
    chooseNeighbours: boolean,
    nowS: number,
  ): Promise<number | null> {
    if (this.mode.mode !== 'automatic' || this.ticking) return null;
    let busyMs = 0;
    let sliceStarted = performance.now();
    /** Ends a slice of the tick's own work: its time counts as busy. */
    const endSlice = () => {
      busyMs += performance.now() - sliceStarted;
    };
    const pause = async () => {
      endSlice();
      await this.yieldToEventLoop();
      sliceStarted = performance.now();
    };
    const reports: WorkerReport[] = [];
    for (const w of roster.workers.values()) {
      if (!w.reported) continue;
      reports.push({
        id: w.id,
        samplesPerSec: w.samplesPerSec,
        batchSize: this.spec.batchSize,
        ...(w.sendBusyFraction !== undefined ? { sendBusyFraction: w.sendBusyFraction } : {}),
        links: w.links,
        neighbours: w.neighbours,
        fresh: w.statsFresh,
        atS: w.statsAtS,
        settings: w.settings,
        // A balancer made afresh (mode switch, restart) learns the refusals of closed links.
        ...(w.refusals.size > 0 ? { refuses: [...w.refusals.keys()] } : {}),
      });
      w.statsFresh = false;
    }
    if (reports.length === 0) return null;
    const balancer = (this.balancer ??= new Balancer({
      neighbours: chooseNeighbours ? this.spec.neighbours : 0,
      seed: this.spec.seed,
      // Workers are browsers: a busy fraction from bufferedAmount understates a light load.
      trustedBusyFraction: BROWSER_TRUSTED_BUSY_FRACTION,
    }));
    this.ticking = true;
    try {
      const steps = balancer.updateSteps({ nowS, model: this.model, workers: reports });
      let step = steps.next();
      while (!step.done) {
        await pause();
        if (this.balancer !== balancer) return null;
        step = steps.next();
      }
      let applied = 0;
      for (const [id, plan] of step.value) {
        if (applied > 0 && applied % SLICE_WORKERS === 0) {
          await pause();
          if (this.balancer !== balancer) return null;
        }
        applied++;
        const w = roster.get(id);
        if (w) this.applyPlan(w, plan, roster, outbox, chooseNeighbours);
      }
      endSlice();
      return busyMs;
    } finally {
      this.ticking = false;
    }
  }

  /** One worker's plan: its balance for the console, its settings and neighbours when changed. */
  private applyPlan(
    w: WorkerEntry,
    plan: WorkerPlan,
    roster: Roster,
    outbox: JobOutbox,
    chooseNeighbours: boolean,
  ): void {
    w.plan = {
      reason: plan.reason,
      budgetBytesPerSec: plan.budgetBytesPerSec,
      capacityBytesPerSec: plan.capacityBytesPerSec,
      congested: plan.congested,
    };
    if (!sameSettings(w.settings, plan.settings)) {
      this.log.debug(
        {
          worker: w.id,
          from: w.settings,
          to: plan.settings,
          reason: plan.reason,
          budgetBytesPerSec: Math.round(plan.budgetBytesPerSec),
          capacityBytesPerSec:
            plan.capacityBytesPerSec === null ? null : Math.round(plan.capacityBytesPerSec),
          congested: plan.congested,
        },
        'balancer changed settings',
      );
    }
    this.apply(w, plan.settings, outbox);
    if (!chooseNeighbours) return;
    const next = plan.neighbours.filter((n) => roster.has(n)).sort();
    if (next.length === 0) return;
    const from = w.neighbours;
    if (roster.tellNeighbours(w, next, outbox)) {
      this.log.debug({ worker: w.id, from, to: next }, 'balancer chose neighbours');
    }
  }

  /** Gives a worker new settings when they differ from what it runs: the one road there. */
  private apply(w: WorkerEntry, settings: WorkerSettings, outbox: JobOutbox): void {
    if (sameSettings(w.settings, settings)) return;
    w.settings = { ...settings };
    outbox.settings(w.id, w.settings);
  }
}

function sameSettings(a: WorkerSettings, b: WorkerSettings): boolean {
  return (
    a.communicationPeriod === b.communicationPeriod &&
    a.blocksPerMessage === b.blocksPerMessage &&
    a.encoding === b.encoding
  );
}

/** The job's starting balancer mode, from its spec (the admin may change it later). */
export function balancerFromSpec(spec: JobSpec): BalancerMode {
  const b = spec.balancer;
  return b.mode === 'fixed'
    ? {
        mode: 'fixed',
        settings: {
          communicationPeriod: b.communicationPeriod,
          blocksPerMessage: b.blocksPerMessage,
          encoding: b.encoding,
        },
      }
    : { mode: 'automatic' };
}
