/**
 * Link profiles and compute heterogeneity for simulated volunteers: a LAN, home broadband with
 * a slow asymmetric upload, and mobile links whose bandwidth drops now and then. Numbers are
 * typical published access speeds, not measurements of any one network.
 */
import { Rng } from '../util/rng.ts';
import type { PathOptions } from './network.ts';
import { Schedule } from './schedule.ts';
import { SERVER_ID, type SimWorkerSpec } from './simulation.ts';

export type LinkProfileName = 'lan' | 'home' | 'mobile';

export const LINK_PROFILES: readonly LinkProfileName[] = ['lan', 'home', 'mobile'];

const MBIT = 1_000_000 / 8;

/** What a profile gives a simulation. */
export interface ProfileSetup {
  readonly name: LinkProfileName;
  readonly description: string;
  readonly workers: SimWorkerSpec[];
  readonly path: (from: string, to: string) => PathOptions;
}

export interface ProfileOptions {
  /** Training speed of each worker, samples/s; worker i is `w{i}`. */
  readonly speeds: readonly number[];
  /** Seeds link speeds, relayed pairs, latencies and drops; default 1. */
  readonly seed?: number;
  /** Drops are generated up to this time, seconds; default 3,600. */
  readonly horizonS?: number;
}

/** A relayed path: through the server's TURN/socket.io relay, with its own share and detour. */
export const RELAY_PATH_BYTES_PER_SEC = 200_000;
export const RELAY_EXTRA_LATENCY_S = 0.03;

/** Worker ids used by the profiles. */
export const workerId = (index: number): string => `w${index}`;

/**
 * Builds workers and paths for a profile:
 * - 'lan': 100 Mbit/s up and down, 0.5 ms latency, no relays.
 * - 'home': uploads of 1, 2, 5, 10 or 20 Mbit/s, downloads ten times that; 10–40 ms between
 *   peers; 10% of pairs behind NATs that force the relay.
 * - 'mobile': 5 Mbit/s up, 20 Mbit/s down, and every worker's link drops to a tenth for 5 s at
 *   random moments (on average every 20 s); 30–80 ms with 20 ms jitter; 30% of pairs relayed
 *   (carrier-grade NAT).
 */
export function buildProfile(name: LinkProfileName, options: ProfileOptions): ProfileSetup {
  const seed = options.seed ?? 1;
  const horizon = options.horizonS ?? 3_600;
  const rng = new Rng(seed * 31 + name.length);
  const n = options.speeds.length;
  const workers: SimWorkerSpec[] = [];
  const access: number[] = []; // one-way access latency per worker, seconds
  let relayedFraction = 0;
  let jitterS = 0;
  let description: string;
  for (let i = 0; i < n; i++) {
    const samplesPerSec = Schedule.constant(options.speeds[i]!);
    let up: Schedule;
    let down: Schedule;
    if (name === 'lan') {
      up = Schedule.constant(100 * MBIT);
      down = Schedule.constant(100 * MBIT);
      access.push(0.00025);
    } else if (name === 'home') {
      const rate = [1, 2, 5, 10, 20][rng.int(5)]! * MBIT;
      up = Schedule.constant(rate);
      down = Schedule.constant(10 * rate);
      access.push(0.005 + 0.015 * rng.next());
    } else {
      const drops: { fromS: number; toS: number; factor: number }[] = [];
      for (
        let t = 20 * -Math.log(1 - rng.next());
        t < horizon;
        t += 5 + 20 * -Math.log(1 - rng.next())
      ) {
        drops.push({ fromS: t, toS: t + 5, factor: 0.1 });
      }
      up = Schedule.withDrops(5 * MBIT, drops);
      down = Schedule.withDrops(20 * MBIT, drops);
      access.push(0.015 + 0.025 * rng.next());
    }
    workers.push({ id: workerId(i), samplesPerSec, uplink: up, downlink: down });
  }
  if (name === 'lan') {
    description = '100 Mbit/s symmetric, 0.5 ms, no relays';
  } else if (name === 'home') {
    relayedFraction = 0.1;
    jitterS = 0.005;
    description = 'upload 1–20 Mbit/s, download 10× upload, 10–40 ms, 10% relayed';
  } else {
    relayedFraction = 0.3;
    jitterS = 0.02;
    description = '5/20 Mbit/s with drops to 10% for 5 s (every ~20 s), 30–80 ms, 30% relayed';
  }
  const index = (id: string) => Number(id.slice(1));
  const relayed = (a: string, b: string) => {
    const [x, y] = a < b ? [a, b] : [b, a];
    return new Rng(hash(`${x}|${y}|${seed}`)).next() < relayedFraction;
  };
  const path = (from: string, to: string): PathOptions => {
    if (from === SERVER_ID || to === SERVER_ID) {
      const w = from === SERVER_ID ? to : from;
      return { latencyS: (access[index(w)] ?? 0.01) + 0.005, jitterS };
    }
    const latencyS = (access[index(from)] ?? 0) + (access[index(to)] ?? 0);
    if (relayed(from, to)) {
      return {
        latencyS: latencyS + RELAY_EXTRA_LATENCY_S,
        jitterS,
        relayed: true,
        capacity: Schedule.constant(RELAY_PATH_BYTES_PER_SEC),
      };
    }
    return { latencyS, jitterS };
  };
  return { name, description, workers, path };
}

/**
 * Heterogeneous training speeds: `count` values spaced evenly in log scale over a range of
 * `ratio` (fastest / slowest) around `median`, in a seeded order, with worker 0 given the median
 * speed so that the probe (worker 0 by default) is a typical volunteer.
 */
export function heterogeneousSpeeds(
  count: number,
  median: number,
  ratio: number,
  seed = 1,
): number[] {
  if (count === 1) return [median];
  const speeds = Array.from({ length: count }, (_, i) => median * ratio ** (i / (count - 1) - 0.5));
  new Rng(seed).shuffle(speeds);
  const sorted = [...speeds].sort((a, b) => a - b);
  const middle = sorted[Math.floor((count - 1) / 2)]!;
  const at = speeds.indexOf(middle);
  [speeds[0], speeds[at]] = [speeds[at]!, speeds[0]!];
  return speeds;
}

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
