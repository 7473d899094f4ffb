/**
 * One worker thread of simulated volunteers for `npm run bench:server`: protocol-level clients
 * (socket.io-client, websocket transport) that say hello, fetch their shard and send statistics
 * every second, as a browser tab does between model exchanges. Loopback only.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { io, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION } from '@meshgrad/core';

export interface LoadWorkerConfig {
  readonly url: string;
  readonly jobId: string;
  readonly count: number;
  /** New connections per second from this thread. */
  readonly connectsPerSec: number;
  readonly statsIntervalMs: number;
}

export type LoadWorkerReport =
  | {
      readonly type: 'progress';
      readonly joined: number;
      readonly failed: number;
      /** Failures by kind: `connect`, `hello timeout`, `hello <code>`; and stats refused by code. */
      readonly failures: Record<string, number>;
      readonly helloMs: number[];
    }
  | { readonly type: 'stopped' };

const config = workerData as LoadWorkerConfig;
if (!config.url.startsWith('http://127.0.0.1:') && !config.url.startsWith('http://localhost:')) {
  throw new Error(`the load harness targets loopback only, not ${config.url}`);
}
const device = { backend: 'cpu', userAgent: 'meshgrad bench:server' } as const;
const sockets: Socket[] = [];
const timers: NodeJS.Timeout[] = [];
let joined = 0;
let failed = 0;
const failures: Record<string, number> = {};
const fail = (kind: string) => {
  failed++;
  failures[kind] = (failures[kind] ?? 0) + 1;
};
let helloMs: number[] = [];
let stopping = false;

interface HelloAnswer {
  readonly ok: boolean;
  readonly code?: string;
  readonly shard?: { readonly url: string };
}

function startVolunteer(): void {
  const s = io(`${config.url}/volunteer`, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: 60_000,
  });
  sockets.push(s);
  s.once('connect_error', (err) => fail(`connect: ${err.message}`));
  // The server refuses a statistics report of a worker it no longer holds (dropped as stale).
  s.on('refused', (r: { event?: string; code?: string }) => {
    const key = `refused ${r.event ?? '?'} ${r.code ?? '?'}`;
    failures[key] = (failures[key] ?? 0) + 1;
  });
  s.once('connect', () => {
    const t0 = performance.now();
    s.timeout(60_000)
      .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, device })
      .then(async (reply: HelloAnswer) => {
        helloMs.push(performance.now() - t0);
        if (!reply.ok) {
          fail(`hello ${reply.code ?? '?'}`);
          return;
        }
        joined++;
        if (reply.shard) {
          try {
            await (await fetch(config.url + reply.shard.url)).arrayBuffer();
          } catch {
            // Joined, so not a failed volunteer; it trains (and reports) without its shard.
            failures['shard fetch'] = (failures['shard fetch'] ?? 0) + 1;
          }
        }
        let samples = 0;
        const send = () => {
          samples += 10;
          s.emit('stats', {
            jobId: config.jobId,
            samples,
            samplesPerSec: 10,
            offered: 0,
            accepted: 0,
            paused: false,
            links: [],
          });
        };
        // Spread over the interval, so the server sees a steady stream, not a beat.
        const first = setTimeout(() => {
          send();
          timers.push(setInterval(send, config.statsIntervalMs));
        }, Math.random() * config.statsIntervalMs);
        timers.push(first);
      })
      .catch(() => fail('hello timeout'));
  });
}

let started = 0;
const ramp = setInterval(() => {
  const batch = Math.max(1, Math.round(config.connectsPerSec / 20));
  for (let i = 0; i < batch && started < config.count && !stopping; i++, started++) {
    startVolunteer();
  }
  if (started >= config.count) clearInterval(ramp);
}, 50);

const progress = setInterval(() => {
  const report: LoadWorkerReport = { type: 'progress', joined, failed, failures, helloMs };
  helloMs = [];
  parentPort?.postMessage(report);
}, 500);

parentPort?.on('message', (m: { type?: string }) => {
  if (m.type !== 'stop') return;
  stopping = true;
  clearInterval(ramp);
  clearInterval(progress);
  for (const t of timers) clearTimeout(t);
  for (const s of sockets) s.disconnect();
  const report: LoadWorkerReport = { type: 'stopped' };
  parentPort?.postMessage(report);
});
