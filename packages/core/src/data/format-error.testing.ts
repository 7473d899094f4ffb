/** For the data parsers' unit tests only. */
import { expect } from 'vitest';
import { DatasetFormatError, type DatasetErrorCode } from './errors.ts';

/** Runs `run`, expects it to throw a DatasetFormatError with `code`, and returns the error. */
export function catchFormatError(run: () => unknown, code: DatasetErrorCode): DatasetFormatError {
  try {
    run();
  } catch (err) {
    if (!(err instanceof DatasetFormatError)) throw err;
    expect(err.code).toBe(code);
    return err;
  }
  throw new Error(`expected DatasetFormatError ${code}, nothing was thrown`);
}
