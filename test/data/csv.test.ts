import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { parseCsvRows, parseCsvTable, CsvError } from '../../src/data/csv.js';

const iris = readFileSync(new URL('../fixtures/csv/iris.csv', import.meta.url), 'utf8');

test('reads scikit-learn\'s iris.csv: header with counts and class names', () => {
  const t = parseCsvTable(iris);
  assert.equal(t.numRows, 150);
  assert.equal(t.numFeatures, 4);
  assert.deepEqual(t.classNames, ['setosa', 'versicolor', 'virginica']);
  assert.deepEqual([...t.features.subarray(0, 4)], [5.1, 3.5, 1.4, 0.2]);
  assert.deepEqual([...t.features.subarray(596)], [5.9, 3.0, 5.1, 1.8]);
  const counts = [0, 0, 0];
  for (const l of t.labels) counts[l]!++;
  assert.deepEqual(counts, [50, 50, 50]);
  assert.equal(t.featureNames, undefined);
});

test('a table without header (like digits.csv) is all data', () => {
  const t = parseCsvTable('0,0,5,13,0\n0,1,16,2,1\n3,0,0,4,9\n');
  assert.equal(t.numRows, 3);
  assert.equal(t.numFeatures, 4);
  assert.deepEqual([...t.labels], [0, 1, 9]);
  assert.deepEqual([...t.features.subarray(4, 8)], [0, 1, 16, 2]);
  assert.equal(t.classNames, undefined);
});

test('a header of names, string labels numbered in sorted order, CRLF and quotes', () => {
  const text = 'height,"width, cm",species\r\n1.5,2,dog\r\n2.5,"3",cat\r\n\r\n3.5,4,dog\r\n';
  const t = parseCsvTable(text);
  assert.deepEqual(t.featureNames, ['height', 'width, cm']);
  assert.deepEqual(t.classNames, ['cat', 'dog']);
  assert.deepEqual([...t.labels], [1, 0, 1]);
  assert.deepEqual([...t.features], [1.5, 2, 2.5, 3, 3.5, 4]);
});

test('labelColumn chooses the label column, or none', () => {
  const first = parseCsvTable('2,0.5,0.25\n1,1.5,1.25\n', { labelColumn: 0, header: 'none' });
  assert.deepEqual([...first.labels], [2, 1]);
  assert.deepEqual([...first.features], [0.5, 0.25, 1.5, 1.25]);
  const none = parseCsvTable('1,2\n3,4\n', { labelColumn: null });
  assert.equal(none.numFeatures, 2);
  assert.equal(none.labels.length, 0);
});

test('parseCsvRows keeps quoted delimiters, doubled quotes and empty quoted fields', () => {
  assert.deepEqual(parseCsvRows('a,"b,c","say ""hi""",""\nx'), [['a', 'b,c', 'say "hi"', ''], ['x']]);
});

test('errors name the line, the column and the value', () => {
  assert.throws(() => parseCsvTable('1,2,0\n3,0\n'), (e: unknown) => e instanceof CsvError && /line 2 has 2 fields but the first data row has 3/.test(e.message));
  assert.throws(() => parseCsvTable('1,2,0\n3,x,1\n'), /line 2, column 2 is "x", not a number/);
  assert.throws(() => parseCsvTable('3,2,a,b\n1,2,0\n', { header: 'sklearn' }), /header says 3 samples and 2 features but the table has 1 rows/);
  assert.throws(() => parseCsvTable('2,1,a\n1,0\n2,1\n'), /row 2 has label 1 but the header names only 1 classes/);
  assert.throws(() => parseCsvTable('1,"2\n'), /never closes/);
  assert.throws(() => parseCsvTable('a,b,c,d\n1,2,0\n'), /the header line has 4 fields but the data rows have 3/);
  assert.throws(() => parseCsvTable('1,2\n', { labelColumn: 5 }), /labelColumn 5 is outside the 2 columns/);
  assert.throws(() => parseCsvTable(''), /no rows/);
});
