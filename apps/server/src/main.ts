import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { createServer } from './server.ts';
import { createLogger } from './logger.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    throw new InvalidArgumentError('must be an integer port number from 0 to 65535');
  }
  return n;
}

const program = new Command()
  .name('meshgrad')
  .description('meshgrad: train ML models in volunteers’ web browsers');

program
  .command('serve')
  .description('run a job server (the built-in MNIST job unless --job is given)')
  .option(
    '-p, --port <port>',
    'TCP port (env PORT)',
    port,
    process.env.PORT ? port(process.env.PORT) : 8080,
  )
  .option('--host <host>', 'interface to listen on', '0.0.0.0')
  .option(
    '-d, --data-dir <dir>',
    'data directory (env MESHGRAD_DATA_DIR)',
    process.env.MESHGRAD_DATA_DIR ?? './.meshgrad',
  )
  .option('-j, --job <file>', 'job spec JSON file (default: built-in MNIST MLP)')
  .option('--log-level <level>', 'log level: trace, debug, info, warn, error, silent', 'info')
  .action(
    async (opts: {
      port: number;
      host: string;
      dataDir: string;
      job?: string;
      logLevel: string;
    }) => {
      const log = createLogger(opts.logLevel);
      let jobs: unknown[] | undefined;
      if (opts.job) {
        let text: string;
        try {
          text = await readFile(opts.job, 'utf8');
        } catch (err) {
          throw new Error(`cannot read job spec ${opts.job}: ${(err as Error).message}`, {
            cause: err,
          });
        }
        try {
          jobs = [JSON.parse(text) as unknown];
        } catch (err) {
          throw new Error(`job spec ${opts.job} is not valid JSON: ${(err as Error).message}`, {
            cause: err,
          });
        }
      }
      const server = await createServer({
        port: opts.port,
        host: opts.host,
        dataDir: opts.dataDir,
        logger: log,
        ...(jobs ? { jobs } : {}),
      });
      // The banner is for the person who ran the command, so it goes to stdout as plain text.
      process.stdout.write(
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
    },
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`meshgrad: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
