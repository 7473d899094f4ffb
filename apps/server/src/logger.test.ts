import { describe, expect, it } from 'vitest';
import { createLogger, type LogOutput } from './logger.ts';
import { prettyLogLine } from './log-pretty.ts';

/** An ANSI colour code, as the pretty format writes on a terminal. */
const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

function output(isTTY: boolean): LogOutput & { text: string } {
  const out = {
    text: '',
    isTTY,
    write(text: string) {
      out.text += text;
    },
  };
  return out;
}

describe('createLogger', () => {
  it('writes JSON lines when the output is not a terminal', () => {
    const out = output(false);
    createLogger('info', { output: out }).info({ port: 8080 }, 'meshgrad server listening');
    const lines = out.text.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(entry).toMatchObject({ level: 30, msg: 'meshgrad server listening', port: 8080 });
  });

  it('writes readable lines on a terminal: time, level, message, fields; no JSON', () => {
    const out = output(true);
    const log = createLogger('info', { output: out });
    log.info({ port: 8080, jobs: ['mnist-mlp'] }, 'meshgrad server listening');
    log.debug('not at this level');
    const lines = out.text.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    // Colour codes aside, the line reads as a person would want it.
    const plain = (lines[0] ?? '').replace(ANSI_COLOUR, '');
    expect(plain).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}meshgrad server listening {2}port=8080 jobs=\["mnist-mlp"\]$/,
    );
    expect(plain).not.toContain('"level"');
  });

  it('follows --log-format over what the output is', () => {
    const tty = output(true);
    createLogger('info', { output: tty, format: 'json' }).warn('disk almost full');
    expect(JSON.parse(tty.text)).toMatchObject({ level: 40, msg: 'disk almost full' });
    const pipe = output(false);
    createLogger('info', { output: pipe, format: 'pretty' }).warn('disk almost full');
    // No terminal, so no colour codes even in the pretty format.
    expect(pipe.text).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}disk almost full\n$/);
  });
});

describe('prettyLogLine', () => {
  it('puts an error message on the line and its stack below it', () => {
    const line = JSON.stringify({
      level: 50,
      time: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
      msg: 'job tick failed',
      err: { type: 'Error', message: 'no space left', stack: 'Error: no space left\n    at tick' },
      job: 'mnist mlp',
    });
    expect(prettyLogLine(line)).toBe(
      '03:04:05.006 ERROR job tick failed  err="no space left" job="mnist mlp"\n' +
        '    Error: no space left\n        at tick\n',
    );
  });

  it('passes a line that is not a JSON object through unchanged', () => {
    expect(prettyLogLine('plain text\n')).toBe('plain text\n');
    expect(prettyLogLine('[1,2]\n')).toBe('[1,2]\n');
  });
});
