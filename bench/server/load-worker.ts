/**
 * One worker thread of simulated volunteers for `npm run bench:server`: protocol-level clients
 * (socket.io-client, websocket transport) that say hello, fetch their shard and send statistics
 * every second, as a browser tab does between model exchanges. Loopback only. With several
 * server processes (a cluster over Redis), volunteer i connects to `urls[i % urls.length]`.
 */
import { get } from 'node:http';
import { parentPort as threadPort, workerData } from 'node:worker_threads';
import { io, type Socket } from 'socket.io-client';
import { PROTOCOL_VERSION } from '@meshgrad/core';

export interface LoadWorkerConfig {
  /** The server processes' addresses; volunteers are dealt to them in turn. */
  readonly urls: readonly string[];
  readonly jobId: string;
  readonly count: number;
  /** New connections per second from this thread. */
  readonly connectsPerSec: number;
  readonly statsIntervalMs: number;
  /** Report a link to each neighbour the server gave the volunteer (else no links). */
  readonly reportLinks: boolean;
}

export type LoadWorkerReport =
  | {
      readonly type: 'progress';
      readonly joined: number;
      /** Joined volunteers by server (the index in `urls`). */
      readonly joinedPer: number[];
      readonly failed: number;
      /** Failures by kind: `connect`, `hello timeout`, `hello <code>`; and stats refused by code. */
      readonly failures: Record<string, number>;
      readonly helloMs: number[];
      /** From a hello's answer to its shard's last byte. */
      readonly shardMs: number[];
      /** Longest gap between two statistics reports sent, per volunteer, since the last report. */
      readonly statsGapMaxMs: number;
    }
  | { readonly type: 'stopped' };

/**
 * The harness's end: a worker thread's port, or with `--load-processes` the IPC channel of a
 * process of its own (one process holds at most its descriptor limit of sockets).
 */
const parentPort =
  threadPort ??
  (process.send
    ? {
        postMessage: (m: LoadWorkerReport) => void process.send?.(m),
        on: (_event: 'message', fn: (m: { type?: string }) => void) => process.on('message', fn),
      }
    : null);
const config = (threadPort ? workerData : JSON.parse(process.argv[2] ?? '{}')) as LoadWorkerConfig;
for (const url of config.urls) {
  if (!url.startsWith('http://127.0.0.1:') && !url.startsWith('http://localhost:')) {
    throw new Error(`the load harness targets loopback only, not ${url}`);
  }
}
/**
 * GETs `url` to its last byte on a connection of its own, as each volunteer's browser opens its
 * own (a pool shared by a thread's thousands of volunteers would queue them behind each other);
 * rejects on a status other than 200.
 */
function download(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.byteLength));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(bytes) : reject(new Error(`HTTP ${res.statusCode}`)),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const device = { backend: 'cpu', userAgent: 'meshgrad bench:server' } as const;
const sockets: Socket[] = [];
const timers: NodeJS.Timeout[] = [];
let joined = 0;
const joinedPer = config.urls.map(() => 0);
let failed = 0;
const failures: Record<string, number> = {};
const fail = (kind: string) => {
  failed++;
  failures[kind] = (failures[kind] ?? 0) + 1;
};
let helloMs: number[] = [];
let shardMs: number[] = [];
let statsGapMaxMs = 0;
let stopping = false;

interface HelloAnswer {
  readonly ok: boolean;
  readonly code?: string;
  readonly shard?: { readonly url: string };
  readonly neighbours?: readonly string[];
}

function startVolunteer(server: number): void {
  const url = config.urls[server] as string;
  const s = io(`${url}/volunteer`, {
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
        joinedPer[server] = (joinedPer[server] ?? 0) + 1;
        if (reply.shard) {
          try {
            const t1 = performance.now();
            await download(url + reply.shard.url);
            shardMs.push(performance.now() - t1);
          } catch {
            // Joined, so not a failed volunteer; it trains (and reports) without its shard.
            failures['shard fetch'] = (failures['shard fetch'] ?? 0) + 1;
          }
        }
        let neighbours = reply.neighbours ?? [];
        s.on('neighbours', (list: readonly string[]) => {
          neighbours = list;
        });
        let samples = 0;
        let sentAt = 0;
        let reports = 0;
        const send = () => {
          const now = performance.now();
          if (sentAt > 0) statsGapMaxMs = Math.max(statsGapMaxMs, now - sentAt);
          sentAt = now;
          samples += 10;
          reports++;
          s.emit('stats', {
            jobId: config.jobId,
            samples,
            samplesPerSec: 10,
            offered: 0,
            accepted: 0,
            paused: false,
            // A steady link to each neighbour: what a tab reports once its data channels are
            // open (the counters are cumulative).
            links: config.reportLinks
              ? neighbours.slice(0, 16).map((peer) => ({
                  peer,
                  relayed: false,
                  goodputBytesPerSec: 20_000,
                  rttMs: 20,
                  backlogBytes: 0,
                  blocksSent: 4 * reports,
                  blocksReceived: 4 * reports,
                  overwritten: 0,
                  rejected: 0,
                  skippedSends: 0,
                  acceptanceRate: 0.9,
                }))
              : [],
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
    startVolunteer(started % config.urls.length);
  }
  if (started >= config.count) clearInterval(ramp);
}, 50);

const progress = setInterval(() => {
  const report: LoadWorkerReport = {
    type: 'progress',
    joined,
    joinedPer,
    failed,
    failures,
    helloMs,
    shardMs,
    statsGapMaxMs,
  };
  helloMs = [];
  shardMs = [];
  statsGapMaxMs = 0;
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
  if (!threadPort) setTimeout(() => process.exit(0), 500);
});
