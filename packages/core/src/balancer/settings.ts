/**
 * Turning a send budget (bytes per second) into the worker's knobs: communication period b
 * (samples per send), blocks per message m and the value encoding (DESIGN §3).
 */
import { bytesPerValue, type Encoding } from '../codec/encoding.ts';
import { MESSAGE_HEADER_BYTES } from '../codec/message.ts';
import type { WorkerSettings } from '../protocol/events.ts';

/** The model's shape as far as traffic goes. */
export interface ModelTraffic {
  /** Number of blocks K. */
  readonly blockCount: number;
  /** Total parameters P; a message carries P / K values on average. */
  readonly parameterCount: number;
}

/** Bytes of one state message with an average block, header included. */
export function messageBytes(model: ModelTraffic, encoding: Encoding): number {
  return MESSAGE_HEADER_BYTES + (model.parameterCount / model.blockCount) * bytesPerValue(encoding);
}

/**
 * Blocks a worker actually sends per sample with `settings`. The worker sends once the samples
 * since its last send reach b, counting whole batches, so the real period is b rounded up to a
 * whole number of batches.
 */
export function blocksPerSample(
  settings: WorkerSettings,
  batchSize: number,
  blockCount: number,
): number {
  const period = Math.max(1, Math.ceil(settings.communicationPeriod / batchSize)) * batchSize;
  return Math.min(settings.blocksPerMessage, blockCount) / period;
}

/** Bytes per second a worker computing `samplesPerSec` sends with `settings`. */
export function sendRateBytesPerSec(
  settings: WorkerSettings,
  model: ModelTraffic,
  batchSize: number,
  samplesPerSec: number,
): number {
  return (
    blocksPerSample(settings, batchSize, model.blockCount) *
    samplesPerSec *
    messageBytes(model, settings.encoding)
  );
}

/**
 * The (b, m) pair, b a whole number of batches of at most `maxPeriodBatches`, whose block rate
 * m / b comes closest to `blocksPerStep` / batch from below; the rate never exceeds the budget
 * (except the floor of one block per `maxPeriodBatches`). Among pairs within 5% of the best it
 * takes `preferredBlocks` when given (so a small change of budget moves b, not m), otherwise the
 * smallest m: small frequent messages keep the queue short and even, where a burst of m blocks
 * would sit in the queue all at once.
 */
export function periodAndBlocks(
  blocksPerStep: number,
  batchSize: number,
  blockCount: number,
  maxPeriodBatches: number,
  preferredBlocks?: number,
): { communicationPeriod: number; blocksPerMessage: number } {
  if (!(blocksPerStep > 0)) {
    return { communicationPeriod: maxPeriodBatches * batchSize, blocksPerMessage: 1 };
  }
  if (blocksPerStep >= blockCount) {
    return { communicationPeriod: batchSize, blocksPerMessage: blockCount };
  }
  let best = { m: 1, n: maxPeriodBatches, rate: 1 / maxPeriodBatches };
  const candidates: { m: number; n: number; rate: number }[] = [];
  for (let m = 1; m <= blockCount; m++) {
    const n = Math.ceil(m / blocksPerStep - 1e-9);
    if (n > maxPeriodBatches) continue;
    candidates.push({ m, n, rate: m / n });
  }
  for (const c of candidates) if (c.rate > best.rate) best = c;
  const good = candidates.filter((c) => c.rate >= 0.95 * best.rate);
  const chosen = good.find((c) => c.m === preferredBlocks) ?? good[0] ?? best;
  return { communicationPeriod: chosen.n * batchSize, blocksPerMessage: chosen.m };
}
