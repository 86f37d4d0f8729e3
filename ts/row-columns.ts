/**
 * Result rows handed over column-wise (src/codec/row_columns.rs): numbers
 * and booleans in one Float64Array plane, strings as codes into each
 * column's distinct strings, which come as one UTF-8 text plane cut by a
 * plane of lengths. Builds exactly the rows `JSON.parse` of the engine's
 * JSON rows would give, without formatting and parsing every value as text.
 */
import { literal, Specialized } from "./codegen.js";
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
  /** `string` columns: their distinct strings are `count` entries of the text planes from entry `first`. */
  first?: number;
  count?: number;
  /** `string` columns, once cut from the text planes ([`attachStrings`]): code `k` is `strings[k - 1]`, 0 is null. */
  strings?: string[];
}

/** The planes of one engine call's column-wise deliveries. */
export interface RowPlanes {
  numbers: Float64Array;
  codes: Uint32Array;
  /** Distinct strings, UTF-8, one after another. */
  text: Uint8Array;
  /** Their lengths in UTF-16 code units. */
  lengths: Uint32Array;
}

// ignoreBOM: a string that starts with U+FEFF keeps it (the default decoder drops a leading BOM).
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** Gives each string column of `batches` its distinct strings, cut from the text planes. */
export function attachStrings(batches: RowColumns[], planes: RowPlanes): void {
  if (planes.lengths.length === 0) return;
  const text = utf8.decode(planes.text);
  const starts = new Uint32Array(planes.lengths.length + 1);
  for (let i = 0; i < planes.lengths.length; i++) starts[i + 1] = starts[i] + planes.lengths[i];
  for (const batch of batches) {
    for (const field of batch.fields) {
      if (field.kind !== "string" || field.first === undefined) continue;
      const count = field.count ?? 0;
      const strings = new Array<string>(count);
      for (let k = 0; k < count; k++) strings[k] = text.slice(starts[field.first + k], starts[field.first + k + 1]);
      field.strings = strings;
    }
  }
}

/** Builds the rows of one batch from the planes (see [`rowsFromColumns`]). */
type RowBuilder = (
  n: number,
  numbers: Float64Array,
  codes: Uint32Array,
  at: number[],
  strings: (string[] | undefined)[],
) => Row[];

/** Row builders per column list (names and kinds): each row one object literal. */
const builders = new Specialized<RowBuilder>(["n", "numbers", "codes", "at", "strings"]);

/** The rows of `columns`: NaN in a plane is null (JSON writes NaN and ±Infinity as null). */
export function rowsFromColumns(columns: RowColumns, numbers: Float64Array, codes: Uint32Array): Row[] {
  const key = JSON.stringify(columns.fields.map((f) => [f.name, f.kind]));
  const build = builders.get(key, () => builderSource(columns.fields));
  if (build === undefined) return rowsFromColumnsByField(columns, numbers, codes);
  const at = columns.fields.map((f) => f.at);
  const strings = columns.fields.map((f) => f.strings);
  return build(columns.n, numbers, codes, at, strings);
}

/** The body of `(n, numbers, codes, at, strings) => rows`, each row one object literal. */
function builderSource(fields: RowColumnField[]): string {
  const reads: string[] = [];
  const properties: string[] = [];
  fields.forEach((field, j) => {
    reads.push(`const a${j} = at[${j}], s${j} = strings[${j}] ?? [];`);
    // `__proto__: x` in a literal sets the prototype; JSON.parse makes an own property.
    const name = field.name === "__proto__" ? `["__proto__"]` : literal(field.name);
    const value =
      field.kind === "number"
        ? `(v = numbers[a${j} + i]) === v ? v : null`
        : field.kind === "boolean"
          ? `(v = numbers[a${j} + i]) === v ? v === 1 : null`
          : `(c = codes[a${j} + i]) === 0 ? null : s${j}[c - 1]`;
    properties.push(`${name}: ${value}`);
  });
  return `${reads.join("\n")}
const rows = new Array(n);
let v = 0, c = 0;
for (let i = 0; i < n; i++) rows[i] = { ${properties.join(", ")} };
return rows;`;
}

/** [`rowsFromColumns`] without generated code: fills each row field by field. */
export function rowsFromColumnsByField(columns: RowColumns, numbers: Float64Array, codes: Uint32Array): Row[] {
  const n = columns.n;
  const rows: Row[] = new Array(n);
  for (let i = 0; i < n; i++) rows[i] = {};
  // Column by column: every row gets its keys in the same order, so all
  // rows share one object shape.
  for (const { name, kind, at, strings } of columns.fields) {
    // Assigning `__proto__` would set the prototype; JSON.parse makes an own property.
    const set =
      name === "__proto__"
        ? (row: Row, value: Row[string]) => {
            Object.defineProperty(row, name, { value, enumerable: true, writable: true, configurable: true });
          }
        : (row: Row, value: Row[string]) => {
            row[name] = value;
          };
    if (kind === "number") {
      for (let i = 0; i < n; i++) {
        const value = numbers[at + i];
        set(rows[i], value === value ? value : null);
      }
    } else if (kind === "boolean") {
      for (let i = 0; i < n; i++) {
        const value = numbers[at + i];
        set(rows[i], value === value ? value === 1 : null);
      }
    } else {
      const list = strings ?? [];
      for (let i = 0; i < n; i++) {
        const code = codes[at + i];
        set(rows[i], code === 0 ? null : list[code - 1]);
      }
    }
  }
  return rows;
}
