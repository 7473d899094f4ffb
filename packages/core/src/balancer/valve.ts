/**
 * The worker's local safety valve (DESIGN §3): between two balancer ticks a link can fall to a
 * tenth, and a second of sending at the old rate queues ten seconds of data. The worker needs no
 * server to notice: it skips a send while its channels hold more than a fraction of a second of
 * what they currently drain (it sees `bufferedAmount` fall), so the queue stays short even
 * before the balancer reacts, and a queue left by a drop drains at the link's full speed without
 * the balancer lowering the settings for it (and raising them again afterwards).
 */
import type { WorkerSettings } from '../protocol/events.ts';
import { messageBytes, sendRateBytesPerSec, type ModelTraffic } from './settings.ts';

/** Seconds of draining a worker lets queue before it skips sends. */
export const VALVE_QUEUE_SECONDS = 0.25;
/** The valve always lets this many messages queue, so a slow schedule can still send. */
export const VALVE_MIN_MESSAGES = 2;

/**
 * Backlog (bytes, over all of the worker's channels) above which the next send is skipped:
 * VALVE_QUEUE_SECONDS of `drainBytesPerSec` (the rate the worker's buffers were last seen to
 * empty at; default: the traffic `settings` plan at `samplesPerSec`), and at least
 * VALVE_MIN_MESSAGES messages of m blocks. A hard byte limit (the data channel's) applies on top.
 */
export function localValveBytes(
  settings: WorkerSettings,
  model: ModelTraffic,
  batchSize: number,
  samplesPerSec: number,
  drainBytesPerSec?: number,
): number {
  const planned =
    drainBytesPerSec ?? sendRateBytesPerSec(settings, model, batchSize, samplesPerSec);
  const burst =
    VALVE_MIN_MESSAGES *
    Math.min(settings.blocksPerMessage, model.blockCount) *
    messageBytes(model, settings.encoding);
  return Math.max(burst, VALVE_QUEUE_SECONDS * planned);
}
