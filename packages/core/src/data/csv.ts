/**
 * CSV datasets: one sample per line, numeric feature columns, optionally one label column.
 *
 * Accepted: a header row or none, a one-character delimiter, `\n` or `\r\n` line ends, a UTF-8
 * byte-order mark, blank lines (skipped), spaces around cells, and RFC 4180 quoting ("a, b",
 * "say ""hi""") within one line. Not accepted: quoted fields spanning lines, empty feature cells
 * (missing values), NaN or infinities.
 */
import { makeDataset, MAX_CLASSES, type Dataset } from './dataset.ts';
import { DatasetFormatError, type DatasetErrorLocation } from './errors.ts';
import { decodeUtf8, scaled } from './bytes.ts';

export interface CsvOptions {
  /** One character; default `,`. */
  readonly delimiter?: string;
  /**
   * Whether the first row names the columns; default 'auto': yes when `labelColumn` is a name,
   * when the file has a single row of non-numbers, or when some cell of the first row is not a
   * number while the cell below it is.
   */
  readonly header?: 'auto' | boolean;
  /**
   * The label column: a header name, or a 0-based index (negative counts from the end), or
   * null for unlabelled data. Default: the last column.
   */
  readonly labelColumn?: string | number | null;
  /** Multiplies every feature; default 1. */
  readonly scale?: number;
  /** Dataset name; default `csv`. */
  readonly name?: string;
}

/** A dataset read from CSV, with what the reader decided about the file. */
export interface CsvDataset extends Dataset {
  /** The header row, or null when the file has none. */
  readonly header: readonly string[] | null;
  /** 0-based index of the label column, or null when unlabelled. */
  readonly labelColumn: number | null;
  /**
   * When labels were class names rather than non-negative integers: the name of each class
   * index, in sorted (code unit) order. Null when labels were integers or absent.
   */
  readonly classNames: readonly string[] | null;
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const NON_NEGATIVE_INTEGER = /^\d+$/;

function isNumber(cell: string): boolean {
  return NUMBER.test(cell.trim());
}

interface Row {
  /** 1-based line number in the file. */
  readonly line: number;
  readonly cells: string[];
}

/**
 * Parses CSV text (or UTF-8 bytes) into a dataset.
 *
 * Labels: when every label cell is a non-negative integer, those integers are the classes;
 * otherwise every distinct label is a class name, classes are numbered in sorted order, and
 * `classNames` reports the mapping.
 * @throws DatasetFormatError: ERR_CSV_ENCODING, ERR_CSV_EMPTY, ERR_CSV_COLUMNS, ERR_CSV_NUMBER,
 *   ERR_CSV_QUOTE, ERR_CSV_LABEL_COLUMN, ERR_CSV_LABEL, or a makeDataset code; the location has
 *   the 1-based line and column and, with a header, the column's name.
 */
export function parseCsv(input: string | Uint8Array, options: CsvOptions = {}): CsvDataset {
  const name = options.name ?? 'csv';
  const delimiter = options.delimiter ?? ',';
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new RangeError(
      `parseCsv: delimiter must be one character other than a quote or line end`,
    );
  }
  const text = decodeInput(input, name);

  const rows: Row[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).endsWith('\r')
      ? (lines[i] as string).slice(0, -1)
      : (lines[i] as string);
    if (line.trim() === '') continue;
    rows.push({ line: i + 1, cells: splitLine(line, delimiter, i + 1, name) });
  }
  const first = rows[0];
  if (!first) throw new DatasetFormatError('ERR_CSV_EMPTY', `${name}: the file has no rows`);

  const hasHeader = decideHeader(options, rows);
  const header = hasHeader ? first.cells.map((cell) => cell.trim()) : null;
  const dataRows = hasHeader ? rows.slice(1) : rows;
  const columns = first.cells.length;
  if (dataRows.length === 0) {
    throw new DatasetFormatError(
      'ERR_CSV_EMPTY',
      `${name}: the file has a header but no data rows`,
      {
        line: first.line,
      },
    );
  }
  for (const row of dataRows) {
    if (row.cells.length !== columns) {
      throw new DatasetFormatError(
        'ERR_CSV_COLUMNS',
        `${name}: expected ${columns} fields (as in line ${first.line}), found ${row.cells.length}`,
        { line: row.line },
      );
    }
  }

  const labelColumn = resolveLabelColumn(options.labelColumn, header, columns, name);
  const features = labelColumn === null ? columns : columns - 1;
  const locate = (row: Row, column: number): DatasetErrorLocation => {
    const field = header?.[column];
    return field === undefined
      ? { line: row.line, column: column + 1 }
      : { line: row.line, column: column + 1, field };
  };

  const x = new Float32Array(dataRows.length * features);
  const labelCells: string[] = [];
  const labelRows: Row[] = [];
  dataRows.forEach((row, r) => {
    let f = r * features;
    row.cells.forEach((raw, column) => {
      const cell = raw.trim();
      if (column === labelColumn) {
        if (cell === '') {
          throw new DatasetFormatError(
            'ERR_CSV_LABEL',
            `${name}: empty label`,
            locate(row, column),
          );
        }
        labelCells.push(cell);
        labelRows.push(row);
        return;
      }
      if (!NUMBER.test(cell)) {
        const what =
          cell === ''
            ? 'empty cell (missing values are not supported)'
            : `'${cell}' is not a number`;
        throw new DatasetFormatError('ERR_CSV_NUMBER', `${name}: ${what}`, locate(row, column));
      }
      x[f++] = Number(cell);
    });
  });

  let labels: Uint32Array | null = null;
  let classNames: string[] | null = null;
  if (labelColumn !== null) {
    ({ labels, classNames } = toLabels(labelCells));
    // Checked here rather than left to makeDataset so the error can name the line.
    const tooBig = labels.findIndex((label) => label >= MAX_CLASSES);
    const row = labelRows[tooBig];
    if (row) {
      throw new DatasetFormatError(
        'ERR_TOO_MANY_CLASSES',
        `${name}: label ${labelCells[tooBig]} is not below the limit of ${MAX_CLASSES} classes`,
        locate(row, labelColumn),
      );
    }
  }
  const ds = makeDataset({ name, x: scaled(x, options.scale ?? 1, name), features, labels });
  return { ...ds, header, labelColumn, classNames };
}

function decodeInput(input: string | Uint8Array, name: string): string {
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = decodeUtf8(input);
    } catch {
      throw new DatasetFormatError('ERR_CSV_ENCODING', `${name}: the file is not valid UTF-8`);
    }
  }
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Splits one line into raw (untrimmed) cells, honouring double quotes. */
function splitLine(line: string, delimiter: string, lineNumber: number, name: string): string[] {
  if (!line.includes('"')) return line.split(delimiter);
  const cells: string[] = [];
  const quoteError = (detail: string): never => {
    throw new DatasetFormatError('ERR_CSV_QUOTE', `${name}: ${detail}`, {
      line: lineNumber,
      column: cells.length + 1,
    });
  };
  const isPadding = (ch: string | undefined) => (ch === ' ' || ch === '\t') && ch !== delimiter;
  let start = 0;
  for (;;) {
    let at = start;
    while (isPadding(line[at])) at++;
    if (line[at] === '"') {
      let value = '';
      at++;
      for (;;) {
        const close = line.indexOf('"', at);
        if (close < 0) quoteError('unterminated quoted field (fields may not span lines)');
        value += line.slice(at, close);
        at = close + 1;
        if (line[at] !== '"') break;
        value += '"';
        at++;
      }
      while (isPadding(line[at])) at++;
      if (at < line.length && line[at] !== delimiter)
        quoteError('unexpected text after a closing quote');
      cells.push(value);
    } else {
      const next = line.indexOf(delimiter, start);
      at = next < 0 ? line.length : next;
      cells.push(line.slice(start, at));
    }
    if (at >= line.length) return cells;
    start = at + 1;
  }
}

function decideHeader(options: CsvOptions, rows: readonly Row[]): boolean {
  const setting = options.header ?? 'auto';
  if (setting !== 'auto') return setting;
  if (typeof options.labelColumn === 'string') return true;
  const [first, second] = rows as [Row, Row | undefined];
  if (!second) return first.cells.every((cell) => !isNumber(cell));
  return first.cells.some((cell, column) => {
    const below = second.cells[column];
    return !isNumber(cell) && below !== undefined && isNumber(below);
  });
}

function resolveLabelColumn(
  choice: string | number | null | undefined,
  header: readonly string[] | null,
  columns: number,
  name: string,
): number | null {
  if (choice === null) return null;
  const fail = (detail: string): never => {
    throw new DatasetFormatError('ERR_CSV_LABEL_COLUMN', `${name}: ${detail}`);
  };
  let index: number;
  if (choice === undefined) {
    index = columns - 1;
  } else if (typeof choice === 'string') {
    if (!header) return fail(`labelColumn '${choice}' needs a header row`);
    index = header.indexOf(choice);
    if (index < 0) return fail(`no column named '${choice}' (columns: ${header.join(', ')})`);
  } else {
    if (!Number.isInteger(choice) || choice >= columns || choice < -columns) {
      return fail(`labelColumn ${choice} is outside the ${columns} columns`);
    }
    index = choice < 0 ? columns + choice : choice;
  }
  if (columns < 2) {
    fail('a labelled file needs at least two columns (use labelColumn: null for unlabelled data)');
  }
  return index;
}

function toLabels(cells: readonly string[]): { labels: Uint32Array; classNames: string[] | null } {
  if (cells.every((cell) => NON_NEGATIVE_INTEGER.test(cell))) {
    // Saturate instead of wrapping modulo 2³², so an oversized label is caught, not aliased.
    const labels = Uint32Array.from(cells, (cell) => Math.min(Number(cell), 0xffffffff));
    return { labels, classNames: null };
  }
  const classNames = [...new Set(cells)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const indexOf = new Map(classNames.map((className, index) => [className, index]));
  return { labels: Uint32Array.from(cells, (cell) => indexOf.get(cell) as number), classNames };
}
