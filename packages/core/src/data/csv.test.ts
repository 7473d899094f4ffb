import { describe, expect, it } from 'vitest';
import { parseCsv } from './csv.ts';
import { catchFormatError } from './format-error.testing.ts';
import { Rng } from '../util/rng.ts';

const rows = (ds: { x: Float32Array; features: number; count: number }): number[][] =>
  Array.from({ length: ds.count }, (_, i) =>
    Array.from(ds.x.subarray(i * ds.features, (i + 1) * ds.features)),
  );

describe('parseCsv: valid files', () => {
  it('reads a header, numeric features and integer labels in the last column', () => {
    const ds = parseCsv('x1,x2,label\n1.5,-2,3\n0,.25,0\n1e3,7.,1\n', { name: 'basic' });
    expect(ds.name).toBe('basic');
    expect(ds.header).toEqual(['x1', 'x2', 'label']);
    expect(ds.labelColumn).toBe(2);
    expect([ds.count, ds.features, ds.classes]).toEqual([3, 2, 4]);
    expect(rows(ds)).toEqual([
      [1.5, -2],
      [0, 0.25],
      [1000, 7],
    ]);
    expect(Array.from(ds.labels ?? [])).toEqual([3, 0, 1]);
    expect(ds.classNames).toBeNull();
  });

  it('maps string labels to classes in sorted order and reports the mapping', () => {
    const text = [
      'sepal,petal,species',
      '5.1,1.4,setosa',
      '7.0,4.7,versicolor',
      '6.3,6.0,"virginica"',
      '4.9,1.5,setosa',
    ].join('\n');
    const ds = parseCsv(text);
    expect(ds.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(Array.from(ds.labels ?? [])).toEqual([0, 1, 2, 0]);
    expect(ds.classes).toBe(3);
    // One non-integer label makes every label a name, numbers included.
    const mixed = parseCsv('a,b\n1,10\n2,2\n3,x\n');
    expect(mixed.classNames).toEqual(['10', '2', 'x']);
    expect(Array.from(mixed.labels ?? [])).toEqual([0, 1, 2]);
  });

  it('chooses the label column by name, index or negative index, or none', () => {
    const text = 'a,y,b\n1,0,2\n3,1,4\n';
    for (const labelColumn of ['y', 1, -2] as const) {
      const ds = parseCsv(text, { labelColumn });
      expect(ds.labelColumn).toBe(1);
      expect(rows(ds)).toEqual([
        [1, 2],
        [3, 4],
      ]);
      expect(Array.from(ds.labels ?? [])).toEqual([0, 1]);
    }
    const unlabelled = parseCsv('1,2\n3,4\n', { labelColumn: null });
    expect(unlabelled.header).toBeNull();
    expect([unlabelled.features, unlabelled.classes, unlabelled.labels]).toEqual([2, 0, null]);
  });

  it('detects headers automatically, and obeys an explicit header setting', () => {
    expect(parseCsv('0,1,label\n0.5,0.5,1\n').header).toEqual(['0', '1', 'label']);
    expect(parseCsv('1,2,0\n3,4,1\n').header).toBeNull();
    expect(parseCsv('5.1,1.4,setosa\n7.0,4.7,versicolor\n').header).toBeNull();
    const forced = parseCsv('5.1,1.4,species\n7.0,4.7,versicolor\n', { header: true });
    expect(forced.header).toEqual(['5.1', '1.4', 'species']);
    expect(forced.count).toBe(1);
    expect(parseCsv('1,2,3\n', { header: false }).count).toBe(1);
  });

  it('handles CRLF, a byte-order mark, blank lines, padding, quotes, other delimiters and bytes', () => {
    const text = '\ufeffa;b;c\r\n\r\n 1 ; "2" ;0\r\n  \r\n"3";"4";" 1"\r\n';
    const ds = parseCsv(new TextEncoder().encode(text), { delimiter: ';' });
    expect(ds.header).toEqual(['a', 'b', 'c']);
    expect(rows(ds)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(Array.from(ds.labels ?? [])).toEqual([0, 1]);
    const tabs = parseCsv('1\t2\tcat\n3\t4\t"say ""hi"", dog"\n', { delimiter: '\t' });
    expect(tabs.classNames).toEqual(['cat', 'say "hi", dog']);
  });

  it('scales features but not labels', () => {
    const ds = parseCsv('255,0,7\n51,102,2\n', { scale: 1 / 255 });
    expect(rows(ds)).toEqual([
      [1, 0],
      [Math.fround(51 / 255), Math.fround(102 / 255)],
    ]);
    expect(Array.from(ds.labels ?? [])).toEqual([7, 2]);
  });

  it('round-trips random data written in varied styles', () => {
    const rng = new Rng(17);
    for (let trial = 0; trial < 20; trial++) {
      const count = 1 + rng.int(30);
      const features = 1 + rng.int(6);
      const values = Array.from({ length: count * features }, () =>
        Math.fround((rng.next() - 0.5) * 10 ** (rng.int(8) - 3)),
      );
      const labels = Array.from({ length: count }, () => rng.int(5));
      const delimiter = [',', ';', '\t'][rng.int(3)] as string;
      const lines = Array.from({ length: count }, (_, i) => {
        const cells = values
          .slice(i * features, (i + 1) * features)
          .map((v) => (rng.next() < 0.3 ? v.toExponential() : String(v)))
          .map((cell) => (rng.next() < 0.2 ? `"${cell}"` : rng.next() < 0.2 ? ` ${cell} ` : cell));
        return [...cells, String(labels[i])].join(delimiter);
      });
      const header = Array.from({ length: features + 1 }, (_, c) => `col${c}`).join(delimiter);
      const text = [header, ...lines].join(rng.next() < 0.5 ? '\n' : '\r\n');
      const ds = parseCsv(text, { delimiter });
      expect(ds.header?.length).toBe(features + 1);
      expect(Array.from(ds.x)).toEqual(values);
      expect(Array.from(ds.labels ?? [])).toEqual(labels);
    }
  });
});

describe('parseCsv: malformed files', () => {
  it('rejects empty files and header-only files', () => {
    catchFormatError(() => parseCsv(''), 'ERR_CSV_EMPTY');
    catchFormatError(() => parseCsv(' \n\r\n\n'), 'ERR_CSV_EMPTY');
    expect(catchFormatError(() => parseCsv('a,b,c\n'), 'ERR_CSV_EMPTY').where).toEqual({ line: 1 });
  });

  it('rejects a ragged row, naming its line', () => {
    const err = catchFormatError(() => parseCsv('a,b,c\n1,2,0\n\n3,4\n5,6,1\n'), 'ERR_CSV_COLUMNS');
    expect(err.where).toEqual({ line: 4 });
    expect(err.message).toMatch(/expected 3 fields.*found 2.*line 4/);
    catchFormatError(() => parseCsv('1,2,0\r\n3,4,1,9\r\n'), 'ERR_CSV_COLUMNS');
  });

  it('rejects a non-number cell with its line, column and column name', () => {
    const text = 'x1,x2,x3,label\n1,2,3,0\n4,five,6,1\n';
    const err = catchFormatError(() => parseCsv(text), 'ERR_CSV_NUMBER');
    expect(err.where).toEqual({ line: 3, column: 2, field: 'x2' });
    expect(err.message).toBe("csv: 'five' is not a number (at line 3, column 2, field 'x2')");
    const noHeader = catchFormatError(() => parseCsv('1,2,0\n\n\n3,0x10,1\n'), 'ERR_CSV_NUMBER');
    expect(noHeader.where).toEqual({ line: 4, column: 2 });
    for (const bad of ['', 'NaN', 'Infinity', '1.2.3', '1e', '--1', '12a', '1 2']) {
      const e = catchFormatError(() => parseCsv(`a,b,c\n1,2,0\n3,"${bad}",1\n`), 'ERR_CSV_NUMBER');
      expect(e.where).toEqual({ line: 3, column: 2, field: 'b' });
    }
  });

  it('rejects broken quoting', () => {
    const open = catchFormatError(() => parseCsv('1,"2,0\n3,4,1\n'), 'ERR_CSV_QUOTE');
    expect(open.where).toEqual({ line: 1, column: 2 });
    expect(open.message).toMatch(/unterminated/);
    const after = catchFormatError(() => parseCsv('1,2,0\n3,"4"x,1\n'), 'ERR_CSV_QUOTE');
    expect(after.where).toEqual({ line: 2, column: 2 });
  });

  it('rejects bad label columns and labels', () => {
    const text = 'a,b,c\n1,2,0\n';
    expect(
      catchFormatError(() => parseCsv(text, { labelColumn: 'd' }), 'ERR_CSV_LABEL_COLUMN').message,
    ).toMatch(/no column named 'd' \(columns: a, b, c\)/);
    catchFormatError(() => parseCsv(text, { labelColumn: 3 }), 'ERR_CSV_LABEL_COLUMN');
    catchFormatError(() => parseCsv(text, { labelColumn: -4 }), 'ERR_CSV_LABEL_COLUMN');
    catchFormatError(
      () => parseCsv('1,2\n', { header: false, labelColumn: 'a' }),
      'ERR_CSV_LABEL_COLUMN',
    );
    catchFormatError(() => parseCsv('1\n2\n'), 'ERR_CSV_LABEL_COLUMN');
    expect(catchFormatError(() => parseCsv('a,b\n1,0\n2, \n'), 'ERR_CSV_LABEL').where).toEqual({
      line: 3,
      column: 2,
      field: 'b',
    });
    const huge = catchFormatError(() => parseCsv('1,0\n2,99999999999\n'), 'ERR_TOO_MANY_CLASSES');
    expect(huge.where).toEqual({ line: 2, column: 2 });
  });

  it('rejects bytes that are not UTF-8 and bad delimiters', () => {
    catchFormatError(() => parseCsv(new Uint8Array([0x31, 0x2c, 0xff, 0x0a])), 'ERR_CSV_ENCODING');
    expect(() => parseCsv('1,2\n', { delimiter: '::' })).toThrow(RangeError);
    expect(() => parseCsv('1,2\n', { delimiter: '"' })).toThrow(RangeError);
  });
});
