/**
 * Reading a job spec file for the CLI: JSON syntax errors with a line and column, then
 * `parseJobSpec` with paths relative to the file's directory.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseJobSpec, type JobSpec } from '../jobs/job-spec.ts';

/** A problem the CLI reports as one line and exit status 1. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** 1-based line and column of a character offset in `text`. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: (lines.at(-1) ?? '').length + 1 };
}

/** Parses JSON; a syntax error names the line and column (V8's message often has neither). */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const found = findJsonError(text);
    const where = lineAndColumn(text, found.offset);
    throw new CliError(
      `${file}: not valid JSON: ${found.reason} (at line ${where.line}, column ${where.column})`,
      { cause: err },
    );
  }
}

/**
 * Where the first JSON syntax error in `text` is, and what it is. Only run after JSON.parse has
 * failed, to locate the error; it accepts exactly JSON's grammar.
 */
export function findJsonError(text: string): { offset: number; reason: string } {
  let i = 0;
  class At extends Error {
    constructor(
      readonly offset: number,
      readonly reason: string,
    ) {
      super(reason);
    }
  }
  const fail = (reason: string, at = i): never => {
    throw new At(at, reason);
  };
  const describe = () => (i >= text.length ? 'end of file' : `'${text[i] ?? ''}'`);
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++;
  };
  const expect = (ch: string, what: string) => {
    space();
    if (text[i] !== ch) fail(`expected ${what}, found ${describe()}`);
    i++;
  };
  const string = () => {
    const start = i;
    i++;
    for (;;) {
      if (i >= text.length) fail('unterminated string', start);
      const ch = text[i] as string;
      if (ch === '"') {
        i++;
        return;
      }
      if (ch === '\n' || ch === '\r')
        fail('unterminated string (strings cannot span lines)', start);
      if (ch < ' ') fail('control character in a string (write \\t for a tab)');
      if (ch === '\\') {
        const next = text[i + 1] ?? '';
        if (next === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('bad \\u escape');
          i += 6;
          continue;
        }
        if (!'"\\/bfnrt'.includes(next) || next === '') fail(`bad escape \\${next}`);
        i += 2;
        continue;
      }
      i++;
    }
  };
  const value = (): void => {
    space();
    const ch = text[i];
    if (ch === '{') {
      i++;
      space();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        space();
        if (text[i] !== '"') {
          fail(
            text[i] === '}'
              ? 'trailing comma before }'
              : `expected a property name in double quotes, found ${describe()}`,
          );
        }
        string();
        expect(':', "':' after the property name");
        value();
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail(`expected ',' or '}' after a property value, found ${describe()}`);
      }
    }
    if (ch === '[') {
      i++;
      space();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        space();
        if (text[i] === ']') fail('trailing comma before ]');
        value();
        space();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail(`expected ',' or ']' after an array element, found ${describe()}`);
      }
    }
    if (ch === '"') return string();
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(
      text.slice(i),
    );
    if (!literal) fail(`unexpected ${describe()}`);
    i += (literal as RegExpExecArray)[0].length;
  };
  try {
    value();
    space();
    if (i < text.length) fail(`unexpected ${describe()} after the end of the JSON value`);
  } catch (err) {
    if (err instanceof At) return { offset: err.offset, reason: err.reason };
    throw err;
  }
  return { offset: 0, reason: 'invalid JSON' };
}

/** Reads and parses a spec file; relative data paths are relative to its directory. */
export async function readSpecFile(file: string): Promise<JobSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'ENOENT' ? `${file}: file not found` : `${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return parseJobSpec(parseJsonText(text, file), { baseDir: path.dirname(path.resolve(file)) });
}
