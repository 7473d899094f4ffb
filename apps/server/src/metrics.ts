import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Sampling resolution of the event-loop delay monitor (ms). */
const EVENT_LOOP_RESOLUTION_MS = 10;

/** Prometheus metrics served at /metrics. One registry per server instance (tests run several). */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly workers = new Gauge({
    name: 'meshgrad_workers',
    help: 'Volunteer workers currently connected, per job',
    labelNames: ['job'] as const,
    registers: [this.registry],
  });
  readonly samplesPerSecond = new Gauge({
    name: 'meshgrad_samples_per_second',
    help: 'Training samples processed per second across all workers of a job',
    labelNames: ['job'] as const,
    registers: [this.registry],
  });
  /** Per job, where `samples` reads the job's count when /metrics is scraped (`followSamples`). */
  private readonly sampleCounts = new Map<string, () => number>();
  readonly samples = (() => {
    const counts = this.sampleCounts;
    return new Gauge({
      name: 'meshgrad_samples_total',
      help: 'Training samples processed by a job since it was created (survives restarts)',
      labelNames: ['job'] as const,
      registers: [this.registry],
      collect() {
        for (const [job, read] of counts) this.set({ job }, read());
      },
    });
  })();
  readonly loss = new Gauge({
    name: 'meshgrad_train_loss',
    help: 'Mean training loss reported by workers over the last interval',
    labelNames: ['job'] as const,
    registers: [this.registry],
  });
  readonly testLoss = new Gauge({
    name: 'meshgrad_test_loss',
    help: 'Test loss of the latest checkpoint, evaluated by the server',
    labelNames: ['job'] as const,
    registers: [this.registry],
  });
  readonly testAccuracy = new Gauge({
    name: 'meshgrad_test_accuracy',
    help: 'Test accuracy of the latest checkpoint, evaluated by the server (classifiers)',
    labelNames: ['job'] as const,
    registers: [this.registry],
  });
  readonly checkpoints = new Counter({
    name: 'meshgrad_checkpoints_written_total',
    help: 'Checkpoints written since the server started',
    labelNames: ['job'] as const,
    registers: [this.registry],
  });
  readonly bytesRelayed = new Counter({
    name: 'meshgrad_relayed_bytes_total',
    help: 'State-message bytes relayed through the server (fallback transport)',
    registers: [this.registry],
  });
  readonly rejectedMessages = new Counter({
    name: 'meshgrad_rejected_messages_total',
    help: 'Inbound control-plane messages refused (invalid, oversized, out of order)',
    labelNames: ['event', 'code'] as const,
    registers: [this.registry],
  });

  readonly durableWriteFailures = new Counter({
    name: 'meshgrad_durable_write_failures_total',
    help: 'Failed writes to the data directory, per kind of file; outcome says whether it was tried again',
    labelNames: ['file', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly adminRefused = new Counter({
    name: 'meshgrad_admin_refused_total',
    help: 'Admin API requests refused: no token (unauthorized), a wrong one (forbidden), or throttled after too many wrong ones',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly addressLimited = new Counter({
    name: 'meshgrad_address_limited_total',
    help: 'Connections or hellos refused because their remote address was over its limit',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  readonly creditedSamples = new Counter({
    name: 'meshgrad_credited_samples_total',
    help: 'Samples credited to volunteer identities since the server started, per job',
    labelNames: ['job'] as const,
    registers: [this.registry],
  });
  readonly creditFlops = new Counter({
    name: 'meshgrad_credit_flops_total',
    help: 'Credit given to volunteer identities since the server started, in training FLOPs (samples x 6 x parameters), per job',
    labelNames: ['job'] as const,
    registers: [this.registry],
  });
  readonly creditRefusedReports = new Counter({
    name: 'meshgrad_credit_refused_reports_total',
    help: 'Statistics reports that earned their identity no credit, per job and reason (inflated: a sample count over the bound)',
    labelNames: ['job', 'reason'] as const,
    registers: [this.registry],
  });
  readonly spotChecks = new Counter({
    name: 'meshgrad_spot_checks_total',
    help: 'Spot checks answered, per job and outcome (passed, failed)',
    labelNames: ['job', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly creditVoidedFlops = new Counter({
    name: 'meshgrad_credit_voided_flops_total',
    help: 'Credit taken back from identities that failed a spot check, in training FLOPs, per job',
    labelNames: ['job'] as const,
    registers: [this.registry],
  });
  readonly creditIdentities = new Gauge({
    name: 'meshgrad_credit_identities',
    help: 'Volunteer identities the credit book holds',
    registers: [this.registry],
  });

  readonly tickSeconds = new Histogram({
    name: 'meshgrad_balancer_tick_seconds',
    help: "Wall time of a job's periodic tick, start to end: the balancer (in slices, with the event loop's other work between them), the stale-worker sweep, progress and state requests",
    labelNames: ['job'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  readonly balancerBusySeconds = new Histogram({
    name: 'meshgrad_balancer_busy_seconds',
    help: "Main-thread time of a job's automatic balancer tick: its slices, without the turns of the event loop between them",
    labelNames: ['job'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers: [this.registry],
  });
  private readonly loopDelay = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
  readonly eventLoopDelayP99 = new Gauge({
    name: 'meshgrad_event_loop_delay_p99_seconds',
    help: 'p99 of the event-loop delay since the previous scrape (perf_hooks.monitorEventLoopDelay)',
    registers: [this.registry],
    collect: () => this.sampleLoopDelay(),
  });
  readonly eventLoopDelayMax = new Gauge({
    name: 'meshgrad_event_loop_delay_max_seconds',
    help: 'Longest event-loop delay since the previous scrape',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'meshgrad_process_' });
    this.loopDelay.enable();
  }

  /**
   * Has `samples` read a job's count when /metrics is scraped, instead of being set on every
   * stats report: prom-client hashes the labels on each set, which at 10,000 volunteers
   * reporting every second was a visible share of the server's time.
   */
  followSamples(job: string, read: () => number): void {
    this.sampleCounts.set(job, read);
  }

  /** Stops the event-loop monitor (a closed server must not keep sampling). */
  close(): void {
    this.loopDelay.disable();
  }

  /** Sets both delay gauges from the monitor and starts a new window. */
  private sampleLoopDelay(): void {
    // The monitor reports nanoseconds; with no sample yet its percentiles are 0.
    this.eventLoopDelayP99.set(this.loopDelay.percentile(99) / 1e9);
    this.eventLoopDelayMax.set(this.loopDelay.max / 1e9);
    this.loopDelay.reset();
  }
}
