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

/** Builds the rows of one batch from the planes (see [`rowsFromColumns`]). */
type RowBuilder = (
  n: number,
  numbers: Float64Array,
  codes: Uint32Array,
  at: number[],
  strings: (string[] | undefined)[],
) => Row[];

/**
 * Row builders compiled per column list (names and kinds). A builder that
 * writes each row as one object literal is 2-3x faster than filling `{}`
 * field by field (one fixed object shape, no keyed stores); `null` marks a
 * column list that cannot be compiled.
 */
const compiled = new Map<string, RowBuilder | null>();
/** Most distinct column lists kept (one per query shape, usually a handful). */
const MAX_COMPILED = 64;
/** Cleared when the platform refuses code generation (Cloudflare Workers, a strict CSP). */
let canCompile = true;

/** The rows of `columns`: NaN in a plane is null (JSON writes NaN and ±Infinity as null). */
export function rowsFromColumns(columns: RowColumns, numbers: Float64Array, codes: Uint32Array): Row[] {
  const build = canCompile ? compiledBuilder(columns.fields) : undefined;
  if (build === undefined) return rowsFromColumnsByField(columns, numbers, codes);
  const at = columns.fields.map((f) => f.at);
  const strings = columns.fields.map((f) => f.strings);
  return build(columns.n, numbers, codes, at, strings);
}

function compiledBuilder(fields: RowColumnField[]): RowBuilder | undefined {
  const key = JSON.stringify(fields.map((f) => [f.name, f.kind]));
  let build = compiled.get(key);
  if (build === undefined) {
    build = compileBuilder(fields);
    if (!canCompile) return undefined;
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(key, build);
  }
  return build ?? undefined;
}

/** `(n, numbers, codes, at, strings) => rows`, each row one object literal. */
function compileBuilder(fields: RowColumnField[]): RowBuilder | null {
  const reads: string[] = [];
  const properties: string[] = [];
  fields.forEach((field, j) => {
    reads.push(`const a${j} = at[${j}], s${j} = strings[${j}] ?? [];`);
    // `__proto__: x` in a literal sets the prototype; JSON.parse makes an own property.
    const name = field.name === "__proto__" ? `["__proto__"]` : JSON.stringify(field.name);
    const value =
      field.kind === "number"
        ? `(v = numbers[a${j} + i]) === v ? v : null`
        : field.kind === "boolean"
          ? `(v = numbers[a${j} + i]) === v ? v === 1 : null`
          : `(c = codes[a${j} + i]) === 0 ? null : s${j}[c - 1]`;
    properties.push(`${name}: ${value}`);
  });
  const body = `"use strict";
${reads.join("\n")}
const rows = new Array(n);
let v = 0, c = 0;
for (let i = 0; i < n; i++) rows[i] = { ${properties.join(", ")} };
return rows;`;
  try {
    return new Function("n", "numbers", "codes", "at", "strings", body) as RowBuilder;
  } catch (error) {
    // EvalError where code generation is disallowed: build rows field by field from now on.
    if (error instanceof EvalError) canCompile = false;
    return null;
  }
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
