/**
 * The server side of `npm run bench:server`: one job server in a process of its own, so the
 * harness's load does not share its event loop. Its address goes to the parent over IPC; a
 * `close` message shuts it down. With a Redis URL as the second argument it joins that cluster
 * (`meshgrad serve --redis URL`), as each of the processes of a `--servers=K` run does.
 */
import { createServer } from '../../apps/server/src/server.ts';
import { BENCH_ADMIN_TOKEN, benchJob } from './bench-job.ts';

const dataDir = process.argv[2];
const redis = process.argv[3];
if (!dataDir) throw new Error('usage: server-process <data-dir> [<redis-url>]');

const server = await createServer({
  port: 0,
  host: '127.0.0.1',
  dataDir,
  logLevel: process.env.MESHGRAD_LOG_LEVEL ?? 'warn',
  clientDir: null,
  adminToken: BENCH_ADMIN_TOKEN,
  jobs: [benchJob],
  ...(redis ? { redis } : {}),
  // Every simulated volunteer comes from 127.0.0.1: lift the per-address limits for the run.
  addressLimits: { maxConnectionsPerAddress: 1_000_000, hellosPerMinute: 10_000_000 },
});
process.send?.({ type: 'listening', url: server.url });
process.on('message', (m: { type?: string }) => {
  if (m.type !== 'close') return;
  void server.close().then(() => process.exit(0));
});
