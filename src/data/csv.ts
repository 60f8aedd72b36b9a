// CSV tables of numeric features plus a label column, as scikit-learn ships its small datasets:
// the first line is `n_samples,n_features,<class names...>` (or absent, as in digits.csv), then one row
// per sample, the features followed by an integer class label. A header of column names is handled too.

export interface CsvTable {
  numRows: number;
  numFeatures: number;
  /** numRows × numFeatures, row-major. */
  features: Float64Array;
  /** One class index per row (0-based); empty when the table has no label column. */
  labels: Int32Array;
  /** Class names from a scikit-learn header, or the distinct label strings in sorted order; else undefined. */
  classNames: string[] | undefined;
  /** Column names from a header of names, without the label column; else undefined. */
  featureNames: string[] | undefined;
}

export interface CsvTableOptions {
  /**
   * How to read the first line. 'auto' (default): a scikit-learn header when its first two fields equal
   * the number of data rows and of feature columns; a header of names when it has a non-numeric field
   * that the other rows have not; otherwise data. 'sklearn', 'names' and 'none' force one reading.
   */
  header?: 'auto' | 'sklearn' | 'names' | 'none';
  /** Index of the label column; negative counts from the end. Default -1 (the last); null: no labels. */
  labelColumn?: number | null;
  delimiter?: string;
}

export class CsvError extends Error {
  override name = 'CsvError';
}

/** Splits CSV text into rows of fields (RFC 4180 quoting; CRLF or LF; blank lines skipped). */
export function parseCsvRows(text: string, delimiter = ','): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let fieldWasQuoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') {
      quoted = true;
      fieldWasQuoted = true;
    } else if (c === delimiter) {
      row.push(field);
      field = '';
      fieldWasQuoted = false;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (!(row.length === 1 && row[0] === '' && !fieldWasQuoted)) rows.push(row);
      row = [];
      field = '';
      fieldWasQuoted = false;
    } else field += c;
  }
  if (quoted) throw new CsvError(`csv: a quoted field opened on row ${rows.length + 1} never closes; add the closing '"'.`);
  row.push(field);
  if (!(row.length === 1 && row[0] === '' && !fieldWasQuoted)) rows.push(row);
  return rows;
}

const isNumber = (s: string): boolean => s.trim() !== '' && Number.isFinite(Number(s));

/** Parses a CSV table of numeric features and a class-label column. */
export function parseCsvTable(text: string, options: CsvTableOptions = {}): CsvTable {
  const rows = parseCsvRows(text, options.delimiter ?? ',');
  if (rows.length === 0) throw new CsvError('csv: the text has no rows; give a table with at least one data row.');
  const header = chooseHeader(rows, options.header ?? 'auto');
  const body = header === 'none' ? rows : rows.slice(1);
  if (body.length === 0) throw new CsvError('csv: the table has a header but no data rows.');
  const width = body[0]!.length;
  if (header === 'names' && rows[0]!.length !== width) {
    throw new CsvError(`csv: the header line has ${rows[0]!.length} fields but the data rows have ${width}; give one name per column.`);
  }
  const labelColumn = normaliseLabelColumn(options.labelColumn === undefined ? -1 : options.labelColumn, width);
  const numFeatures = labelColumn === null ? width : width - 1;

  const features = new Float64Array(body.length * numFeatures);
  const labelTexts: string[] = [];
  body.forEach((row, r) => {
    const line = r + 1 + (header === 'none' ? 0 : 1);
    if (row.length !== width) {
      throw new CsvError(`csv: line ${line} has ${row.length} fields but the first data row has ${width}; every row needs the same number of fields.`);
    }
    let f = 0;
    row.forEach((field, c) => {
      if (c === labelColumn) {
        labelTexts.push(field.trim());
        return;
      }
      if (!isNumber(field)) {
        throw new CsvError(`csv: line ${line}, column ${c + 1} is ${JSON.stringify(field)}, not a number; feature columns must be numeric.`);
      }
      features[r * numFeatures + f++] = Number(field);
    });
  });

  let classNames: string[] | undefined;
  let labels = new Int32Array(0);
  if (labelColumn !== null) {
    if (labelTexts.every((t) => /^\d+$/.test(t))) {
      labels = Int32Array.from(labelTexts, Number);
    } else {
      // String labels: number the distinct values in sorted order, so the mapping does not depend on row order.
      const distinct = [...new Set(labelTexts)].sort();
      const index = new Map(distinct.map((name, i) => [name, i]));
      labels = Int32Array.from(labelTexts, (t) => index.get(t)!);
      classNames = distinct;
    }
  }

  let featureNames: string[] | undefined;
  if (header === 'sklearn') {
    const [nSamples, nFeatures, ...names] = rows[0]!.map((s) => s.trim());
    if (Number(nSamples) !== body.length || Number(nFeatures) !== numFeatures) {
      throw new CsvError(
        `csv: the header says ${nSamples} samples and ${nFeatures} features but the table has ${body.length} rows and ${numFeatures} feature columns; the file is truncated or not in scikit-learn's layout.`,
      );
    }
    if (names.length > 0) classNames = names;
  } else if (header === 'names') {
    featureNames = rows[0]!.map((s) => s.trim()).filter((_, c) => c !== labelColumn);
  }
  if (classNames !== undefined) {
    const bad = labels.findIndex((l) => l >= classNames!.length);
    if (bad >= 0) {
      throw new CsvError(`csv: row ${bad + 1} has label ${labels[bad]} but the header names only ${classNames.length} classes (${classNames.join(', ')}).`);
    }
  }
  return { numRows: body.length, numFeatures, features, labels, classNames, featureNames };
}

function chooseHeader(rows: string[][], wanted: NonNullable<CsvTableOptions['header']>): 'sklearn' | 'names' | 'none' {
  if (wanted !== 'auto') return wanted;
  const first = rows[0]!;
  const dataRows = rows.length - 1;
  const width = rows[1]?.length;
  if (
    width !== undefined &&
    /^\d+$/.test(first[0]!.trim()) &&
    /^\d+$/.test((first[1] ?? '').trim()) &&
    Number(first[0]) === dataRows &&
    Number(first[1]) === width - 1
  ) {
    return 'sklearn';
  }
  // A non-numeric field in the first line where the second line has a number is a column name.
  if (rows.length > 1 && first.some((f, c) => !isNumber(f) && isNumber(rows[1]![c] ?? ''))) return 'names';
  return 'none';
}

function normaliseLabelColumn(column: number | null, width: number): number | null {
  if (column === null) return null;
  const c = column < 0 ? width + column : column;
  if (!Number.isInteger(c) || c < 0 || c >= width) {
    throw new CsvError(`csv: labelColumn ${column} is outside the ${width} columns; use an index in [-${width}, ${width - 1}] or null.`);
  }
  return c;
}
