/** `meshgrad serve`: starts a job server and keeps it running until SIGINT or SIGTERM. */
import path from 'node:path';
import { JobSpecError, type JobSpec } from '../jobs/job-spec.ts';
import { SPOT_CHECK_MAX_INTERVAL_S, SPOT_CHECK_MIN_INTERVAL_S } from '../credit/spot-checks.ts';
import { createLogger, type LogFormat } from '../logger.ts';
import { createServer } from '../server.ts';
import type { CliIo } from './program.ts';
import { CliError, readSpecFile } from './spec-file.ts';

export interface ServeOptions {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly job?: string[];
  readonly redis?: string;
  readonly stun?: string[];
  readonly turn?: string[];
  readonly turnSecret?: string;
  readonly turnTtl: number;
  readonly logLevel: string;
  /** Default: pretty on a terminal, JSON lines otherwise. */
  readonly logFormat?: LogFormat;
  readonly allowDataDir?: string[];
  readonly keepCheckpoints: number;
  readonly spotCheckSeconds: number;
  readonly maxConnectionsPerAddress: number;
  readonly hellosPerMinute: number;
}

async function readSpecs(files: readonly string[]): Promise<JobSpec[]> {
  const specs: JobSpec[] = [];
  for (const file of files) {
    try {
      specs.push(await readSpecFile(file));
    } catch (err) {
      if (err instanceof JobSpecError) {
        throw new CliError(`${file}: ${err.field}: ${err.reason}`, { cause: err });
      }
      throw err;
    }
  }
  return specs;
}

export async function serve(opts: ServeOptions, io: CliIo): Promise<void> {
  const log = createLogger(opts.logLevel, opts.logFormat ? { format: opts.logFormat } : {});
  const jobs = opts.job?.length ? await readSpecs(opts.job) : undefined;
  let server;
  try {
    server = await createServer({
      port: opts.port,
      host: opts.host,
      dataDir: opts.dataDir,
      logger: log,
      ...(jobs ? { jobs } : {}),
      ...(opts.stun?.length ? { iceServers: opts.stun.map((urls) => ({ urls })) } : {}),
      ...(opts.turn?.length ? { turnUrls: opts.turn } : {}),
      ...(opts.turnSecret ? { turnSecret: opts.turnSecret } : {}),
      turnTtlSec: opts.turnTtl,
      ...(opts.redis ? { redis: opts.redis } : {}),
      // A spec file's own folder holds its data by default; anything else the host names.
      allowDataDirs: [
        ...(opts.job ?? []).map((file) => path.dirname(path.resolve(file))),
        ...(opts.allowDataDir ?? []),
      ],
      checkpointRetention: { keepLast: opts.keepCheckpoints },
      spotChecks: {
        minIntervalS: opts.spotCheckSeconds,
        maxIntervalS:
          (opts.spotCheckSeconds * SPOT_CHECK_MAX_INTERVAL_S) / SPOT_CHECK_MIN_INTERVAL_S,
      },
      namedWorkers: process.env.MESHGRAD_NAMED_WORKERS === '1',
      addressLimits: {
        maxConnectionsPerAddress: opts.maxConnectionsPerAddress,
        hellosPerMinute: opts.hellosPerMinute,
      },
    });
  } catch (err) {
    // Data files are loaded when the server opens the job: name the spec file it came from.
    if (err instanceof JobSpecError && opts.job?.length === 1) {
      throw new CliError(`${opts.job[0]}: ${err.field}: ${err.reason}`, { cause: err });
    }
    throw err;
  }
  // The banner is for the person who ran the command, so it goes to stdout as plain text.
  io.out(
    [
      '',
      'meshgrad is running',
      `  volunteer page: ${server.url}/`,
      `  admin console:  ${server.url}/admin`,
      `  admin token:    ${server.adminToken}`,
      `  data directory: ${server.dataDir}`,
      `  jobs:           ${[...server.jobs.values()].map((j) => `${j.id} (${j.spec.name})`).join(', ')}`,
      '',
      '',
    ].join('\n'),
  );
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    server
      .close()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
