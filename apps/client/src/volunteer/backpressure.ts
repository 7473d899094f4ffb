/**
 * The send side of a volunteer's data channels as the balancer sees it (DESIGN §3): how much of
 * the time bytes sat in the channels' buffers (`sendBusyFraction` in the stats), and the local
 * safety valve that skips a send while they hold more than the current settings should queue.
 */
import {
  BROWSER_TRUSTED_BUSY_FRACTION,
  localValveBytes,
  messageBytes,
  parameterLayout,
  type JobInfo,
  type ModelTraffic,
  type WorkerSettings,
} from '@meshgrad/core';

/** How often the buffers are looked at while any holds bytes, ms. */
export const BUSY_SAMPLE_MS = 50;

/**
 * Fraction of the time any channel had bytes buffered. A send makes the channels busy at once
 * (`sent`); whether they still are is seen by looking at `bufferedAmount` every BUSY_SAMPLE_MS
 * while they are (`observe`), and a change seen at a look is placed halfway since the previous
 * one. Goodput divided by this fraction is what the uplink carries when pushed: the balancer's
 * capacity sample, which needs neither probing nor saturating the link.
 */
export class BusyMeter {
  private busySince: number | null = null;
  private lastLook: number;
  private busyMs = 0;
  private intervalStart: number;

  /** `now` in milliseconds on any monotonic clock; every call must use the same one. */
  constructor(now: number) {
    this.lastLook = now;
    this.intervalStart = now;
  }

  /** Whether the channels were busy at the last send or look. */
  get busy(): boolean {
    return this.busySince !== null;
  }

  /** Bytes were just queued: the channels are busy from `now`. */
  sent(now: number): void {
    this.busySince ??= now;
    this.lastLook = now;
  }

  /** A look at the buffers: whether any holds bytes at `now`. */
  observe(now: number, busy: boolean): void {
    const changedAt = Math.max(this.lastLook + (now - this.lastLook) / 2, this.intervalStart);
    if (busy) this.busySince ??= changedAt;
    else if (this.busySince !== null) {
      this.busyMs += Math.max(0, changedAt - this.busySince);
      this.busySince = null;
    }
    this.lastLook = now;
  }

  /** The busy fraction since the previous `take` (or creation), in [0, 1]; starts a new interval. */
  take(now: number): number {
    let busy = this.busyMs;
    if (this.busySince !== null) {
      busy += Math.max(0, now - this.busySince);
      this.busySince = now;
    }
    const span = now - this.intervalStart;
    this.busyMs = 0;
    this.intervalStart = now;
    return span > 0 ? Math.min(1, Math.max(0, busy / span)) : 0;
  }
}

/**
 * The rate the channels drain at, from one interval's goodput and busy fraction: goodput / busy,
 * the busy fraction counted as at least BROWSER_TRUSTED_BUSY_FRACTION, as the balancer counts it
 * (its rule 1). `bufferedAmount` holds only what SCTP has not yet taken into its congestion
 * window, so on a lightly used link every busy spell ends early and goodput / busy overstates
 * the link many times over; the valve's quarter second of such a rate let the slow volunteer of
 * the balancer e2e queue 1.5 MB on a 250 kB/s uplink. With the floor the estimate is at most
 * twice the goodput, and exact once the link is busy half of the time or more.
 */
export function drainRateSample(goodputBytesPerSec: number, busyFraction: number): number {
  return goodputBytesPerSec / Math.max(busyFraction, BROWSER_TRUSTED_BUSY_FRACTION);
}

/** What the valve allows now: the most bytes the channels may hold after the next send. */
export interface ValveLimit {
  readonly limitBytes: number;
  /** Bytes of the next send: m blocks at the current encoding. */
  readonly nextSendBytes: number;
}

const trafficOf = new WeakMap<JobInfo, ModelTraffic>();

/** The model's traffic shape for a job (blocks and parameters), as the balancer counts it. */
export function jobTraffic(job: JobInfo): ModelTraffic {
  let traffic = trafficOf.get(job);
  if (!traffic) {
    const layout = parameterLayout(job.model, job.blockSize);
    traffic = { blockCount: layout.blockCount, parameterCount: layout.size };
    trafficOf.set(job, traffic);
  }
  return traffic;
}

/**
 * The local safety valve for the current settings (core's `localValveBytes`): a quarter second
 * of what the channels drain (or of the planned traffic while that is unknown), and at least two
 * sends of m blocks.
 */
export function valveLimit(
  settings: WorkerSettings,
  traffic: ModelTraffic,
  batchSize: number,
  samplesPerSec: number,
  drainBytesPerSec: number | undefined,
): ValveLimit {
  return {
    limitBytes: localValveBytes(settings, traffic, batchSize, samplesPerSec, drainBytesPerSec),
    nextSendBytes:
      Math.min(settings.blocksPerMessage, traffic.blockCount) *
      messageBytes(traffic, settings.encoding),
  };
}
