/**
 * Result rows handed over column-wise (src/codec/row_columns.rs): numbers
 * and booleans in one Float64Array plane, strings as codes into each
 * column's distinct strings. Builds exactly the rows `JSON.parse` of the
 * engine's JSON rows would give, without formatting and parsing every
 * number as text.
 */
import type { Row } from "./index.js";

/** One delivered batch, as described in the engine's JSON. */
export interface RowColumns {
  /** Rows in the batch. */
  n: number;
  /** Its columns in result order. */
  fields: RowColumnField[];
}

/** One column: its plane (numbers for `number`/`boolean`, codes for `string`) starts at `at`. */
export interface RowColumnField {
  name: string;
  kind: "number" | "boolean" | "string";
  at: number;
  /** `string` columns: code `k` is `strings[k - 1]`, 0 is null. */
  strings?: string[];
}

/** The rows of `columns`: NaN in a plane is null (JSON writes NaN and ±Infinity as null). */
export function rowsFromColumns(columns: RowColumns, numbers: Float64Array, codes: Uint32Array): Row[] {
  const n = columns.n;
  const rows: Row[] = new Array(n);
  for (let i = 0; i < n; i++) rows[i] = {};
  // Column by column: every row gets its keys in the same order, so all
  // rows share one object shape.
  for (const { name, kind, at, strings } of columns.fields) {
    if (kind === "number") {
      for (let i = 0; i < n; i++) {
        const value = numbers[at + i];
        rows[i][name] = value === value ? value : null;
      }
    } else if (kind === "boolean") {
      for (let i = 0; i < n; i++) {
        const value = numbers[at + i];
        rows[i][name] = value === value ? value === 1 : null;
      }
    } else {
      const list = strings ?? [];
      for (let i = 0; i < n; i++) {
        const code = codes[at + i];
        rows[i][name] = code === 0 ? null : list[code - 1];
      }
    }
  }
  return rows;
}
