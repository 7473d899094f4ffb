/**
 * One error type for every dataset reader, so the server can turn a host's bad file into a clear
 * message (and a stable code for tests and the admin console) without knowing which parser ran.
 */

/** Stable codes; the message text may change, these may not. */
export type DatasetErrorCode =
  /** The input ends before the data its header announces. */
  | 'ERR_TRUNCATED'
  /** Bytes left over after the data the header announces. */
  | 'ERR_TRAILING_BYTES'
  /** No samples, or a sample with no features. */
  | 'ERR_EMPTY'
  /** Feature array length or shape does not match the declared counts. */
  | 'ERR_SHAPE'
  /** A feature value is NaN or infinite. */
  | 'ERR_NON_FINITE'
  /** Features and labels disagree on the number of samples. */
  | 'ERR_LABEL_COUNT'
  /** A label is negative, fractional, or not below the declared class count. */
  | 'ERR_LABEL_VALUE'
  /** More distinct classes than MAX_CLASSES. */
  | 'ERR_TOO_MANY_CLASSES'
  | 'ERR_IDX_MAGIC'
  | 'ERR_IDX_TYPE'
  | 'ERR_IDX_DIMS'
  /** The CSV bytes are not valid UTF-8. */
  | 'ERR_CSV_ENCODING'
  /** No data rows. */
  | 'ERR_CSV_EMPTY'
  /** A row has a different number of fields than the first. */
  | 'ERR_CSV_COLUMNS'
  /** A feature cell is empty or not a number. */
  | 'ERR_CSV_NUMBER'
  /** An unterminated quoted field, or text after a closing quote. */
  | 'ERR_CSV_QUOTE'
  /** labelColumn names no column. */
  | 'ERR_CSV_LABEL_COLUMN'
  /** An empty label cell. */
  | 'ERR_CSV_LABEL'
  | 'ERR_NPY_MAGIC'
  | 'ERR_NPY_VERSION'
  | 'ERR_NPY_HEADER'
  | 'ERR_NPY_DTYPE'
  /** meshgrad's own binary dataset format (binary.ts). */
  | 'ERR_DATASET_MAGIC'
  | 'ERR_DATASET_VERSION'
  | 'ERR_DATASET_HEADER'
  | 'ERR_DATASET_CHECKSUM'
  /** The digit arrays handed to mnistFromDigitArrays are malformed. */
  | 'ERR_MNIST_DATA'
  /** A text dataset that is not valid UTF-8, or too short for one window. */
  | 'ERR_TEXT_ENCODING'
  | 'ERR_TEXT_LENGTH';

/** Where in the input the problem is; only the fields that apply are set. */
export interface DatasetErrorLocation {
  /** Byte offset into a binary input (IDX, NPY, meshgrad binary). */
  readonly byteOffset?: number;
  /** 1-based line in a text input (CSV). */
  readonly line?: number;
  /** 1-based column (field number, not character) in a CSV line. */
  readonly column?: number;
  /** A named field: a CSV header name, an NPY header key, a binary header field. */
  readonly field?: string;
  /** 0-based sample (row) index. */
  readonly sample?: number;
  /** 0-based feature index within a sample. */
  readonly feature?: number;
}

/** Thrown by every dataset reader and validator for input it cannot accept. */
export class DatasetFormatError extends Error {
  override readonly name = 'DatasetFormatError';

  constructor(
    readonly code: DatasetErrorCode,
    /** What is wrong, without the location: that is appended from `where`. */
    detail: string,
    readonly where: DatasetErrorLocation = {},
  ) {
    const at = describeLocation(where);
    super(at ? `${detail} (at ${at})` : detail);
  }
}

function describeLocation(where: DatasetErrorLocation): string {
  const parts: string[] = [];
  if (where.line !== undefined) parts.push(`line ${where.line}`);
  if (where.column !== undefined) parts.push(`column ${where.column}`);
  if (where.field !== undefined) parts.push(`field '${where.field}'`);
  if (where.byteOffset !== undefined) parts.push(`byte ${where.byteOffset}`);
  if (where.sample !== undefined) parts.push(`sample ${where.sample}`);
  if (where.feature !== undefined) parts.push(`feature ${where.feature}`);
  return parts.join(', ');
}
