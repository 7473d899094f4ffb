/**
 * The `meshgrad` command: serve, validate, export, schema. User-facing output goes to
 * stdout/stderr as plain text (the server's own logs go to stdout: readable lines on a terminal,
 * pino JSON lines otherwise or with `--log-format json`).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { jobSpecJsonSchema } from '../jobs/job-spec.ts';
import { LOG_FORMATS } from '../logger.ts';
import { SPOT_CHECK_MIN_INTERVAL_S } from '../credit/spot-checks.ts';
import { exportCheckpoint, type ExportFormat } from './export.ts';
import { serve, type ServeOptions } from './serve.ts';
import { CliError } from './spec-file.ts';
import { formatValidationError, formatValidationReport, validateJobFile } from './validate.ts';

/** Where the CLI writes; tests capture it. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    throw new InvalidArgumentError('must be an integer port number from 0 to 65535');
  }
  return n;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Builds the command tree; `done(code)` receives the exit status of a command that finishes. */
export function buildProgram(io: CliIo, done: (code: number) => void): Command {
  const program = new Command()
    .name('meshgrad')
    .description('meshgrad: train ML models in volunteers’ web browsers')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('serve')
    .description(
      'run a job server: the volunteer page, the admin console and the jobs (the built-in MNIST job unless --job is given)',
    )
    .option(
      '-p, --port <port>',
      'TCP port, 0 for any free one (env PORT)',
      port,
      process.env.PORT ? port(process.env.PORT) : 8080,
    )
    .option('--host <host>', 'interface to listen on', '0.0.0.0')
    .option(
      '-d, --data-dir <dir>',
      'data directory: job specs, checkpoints, metrics, the admin token (env MESHGRAD_DATA_DIR)',
      process.env.MESHGRAD_DATA_DIR ?? './.meshgrad',
    )
    .option(
      '-j, --job <file>',
      'job spec JSON file (docs/job-spec.md); repeat for several jobs',
      collect,
    )
    .option(
      '--redis <url>',
      'scale out: share signaling and job state with the other meshgrad processes on this Redis, e.g. redis://localhost:6379 (env MESHGRAD_REDIS_URL; docs/scale-out.md)',
      process.env.MESHGRAD_REDIS_URL,
    )
    .option(
      '--stun <url>',
      'STUN server for WebRTC, e.g. stun:stun.example.org:3478; repeatable',
      collect,
    )
    .option('--turn <url>', 'TURN server, e.g. turn:turn.example.org:3478; repeatable', collect)
    .option(
      '--turn-secret <secret>',
      'shared secret of the TURN servers (coturn use-auth-secret): volunteers get short-lived HMAC credentials (env MESHGRAD_TURN_SECRET)',
      process.env.MESHGRAD_TURN_SECRET,
    )
    .option('--turn-ttl <seconds>', 'lifetime of TURN credentials', positiveInt, 3600)
    .option(
      '--allow-data-dir <dir>',
      'a directory job specs may read data files from, besides the data directory and the folders of the --job files; repeatable',
      collect,
    )
    .option(
      '--keep-checkpoints <n>',
      'checkpoints kept per job: the newest n, and the best by test loss besides',
      positiveInt,
      10,
    )
    .option(
      '--spot-check-seconds <n>',
      'mean seconds between spot checks of a volunteer of trust 0; trust 1 waits 30 times longer',
      positiveInt,
      SPOT_CHECK_MIN_INTERVAL_S,
    )
    .option(
      '--max-connections-per-address <n>',
      'sockets one remote address may hold at once',
      positiveInt,
      256,
    )
    .option(
      '--hellos-per-minute <n>',
      'hellos one remote address may send a minute',
      positiveInt,
      240,
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'silent'])
        .default('info'),
    )
    .addOption(
      new Option(
        '--log-format <format>',
        'log lines: pretty (readable) or json (one object per line); default pretty on a terminal, json otherwise',
      ).choices(LOG_FORMATS),
    )
    .action(async (opts: ServeOptions) => {
      await serve(opts, io);
    });

  program
    .command('validate')
    .description(
      'check job spec files and the data files they name, without running them; prints one line per problem and exits 1 if any',
    )
    .argument('<job.json...>', 'job spec files')
    .action(async (files: string[]) => {
      let failed = 0;
      for (const file of files) {
        try {
          io.out(formatValidationReport(await validateJobFile(file)));
        } catch (err) {
          failed++;
          io.err(formatValidationError(file, err) + '\n');
        }
      }
      done(failed ? 1 : 0);
    });

  program
    .command('export')
    .description(
      'write a stored checkpoint as safetensors or NumPy .npy files; <checkpoint> is a job directory (its latest checkpoint, e.g. .meshgrad/jobs/mnist-mlp), a manifest (<seq>.json, latest.json) or weights (<seq>.bin)',
    )
    .argument('<checkpoint>', 'job directory, checkpoint manifest or weights file')
    .addOption(
      new Option('-f, --format <format>', 'output format')
        .choices(['safetensors', 'npy'])
        .default('safetensors'),
    )
    .option(
      '-o, --out <path>',
      'output file (safetensors) or directory (npy, one <tensor>.npy per tensor); default <job>-checkpoint-<seq>[.safetensors] here',
    )
    .action(async (target: string, opts: { format: ExportFormat; out?: string }) => {
      const r = await exportCheckpoint(target, opts.format, opts.out);
      const m = r.checkpoint.manifest;
      io.out(
        `exported checkpoint ${m.seq} of job ${m.job} (${m.samples} samples, ${r.checkpoint.layout.size} parameters) as ${opts.format}:\n` +
          r.files.map((f) => `  ${f}\n`).join(''),
      );
      done(0);
    });

  program
    .command('schema')
    .description('print the job spec format as JSON Schema, for editors')
    .action(() => {
      io.out(JSON.stringify(jobSpecJsonSchema(), null, 2) + '\n');
      done(0);
    });

  return program;
}

/**
 * Runs the CLI on `args` (without node and script). Resolves with the exit status, or null
 * when a server was started and the process should keep running.
 */
export async function runCli(
  args: readonly string[],
  io: CliIo = processIo,
): Promise<number | null> {
  let code: number | null = null;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync([...args], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const message = err instanceof CliError || err instanceof Error ? err.message : String(err);
    io.err(`meshgrad: ${message}\n`);
    return 1;
  }
  if (args.length === 0) {
    io.out(program.helpInformation());
    return 1;
  }
  return code;
}
