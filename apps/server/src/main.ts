import { runCli } from './cli/program.ts';

// `meshgrad <command>`: see cli/program.ts. A started server keeps the process alive.
const code = await runCli(process.argv.slice(2));
if (code !== null) process.exitCode = code;
