/**
 * Column-wise events: an array of plain objects becomes one typed column per
 * declared field, handed to wasm in bulk (a few typed arrays and one string
 * instead of one JSON text per event).
 *
 * The engine builds from the columns exactly the batch NDJSON decoding builds
 * from `JSON.stringify` of the same objects, so results, bad-row reports and
 * offsets are the same on both paths. Whatever this module cannot represent
 * with certainty (a string in a number field, a nested object, a class
 * instance, a lone surrogate, ...) makes {@link toColumns} return null, and the
 * caller pushes NDJSON, which judges and reports as it always did.
 * @module
 */
import { literal, Specialized } from "./codegen.js";
import { RiffleError } from "./errors.js";

/** How the engine takes one declared field (see `src/codec/columns.rs`). */
export type ColumnKind = "number" | "boolean" | "timestamp" | "string" | "other";

/** A stream's declared fields and how each is handed over. */
export interface ColumnLayout {
  readonly fields: readonly { readonly name: string; readonly kind: ColumnKind }[];
  /** Planes of `Float64Array` values: number, boolean and timestamp fields. */
  readonly numberPlanes: number;
  /** Planes of `Uint32Array` string codes: string and timestamp fields. */
  readonly codePlanes: number;
}

/** One push's events as columns, in the layout's order. */
export interface Columns {
  rows: number;
  /** One plane of `rows` per number-like field; NaN is null. */
  numbers: Float64Array;
  /** One plane of `rows` per string-like field; 0 is no string, k is the k-th distinct string. */
  codes: Uint32Array;
  /** The distinct strings, concatenated. */
  dictionary: string;
  /** Their lengths (UTF-16 code units). */
  lengths: Uint32Array;
}

const KINDS: ReadonlySet<string> = new Set(["number", "boolean", "timestamp", "string", "other"]);

/** Reads the engine's `streamLayout` answer. */
export function parseLayout(json: string): ColumnLayout {
  const raw = JSON.parse(json) as { name: string; kind: string }[];
  const fields = raw.map(({ name, kind }) => ({ name, kind: (KINDS.has(kind) ? kind : "other") as ColumnKind }));
  return {
    fields,
    numberPlanes: fields.filter((f) => f.kind === "number" || f.kind === "boolean" || f.kind === "timestamp").length,
    codePlanes: fields.filter((f) => f.kind === "string" || f.kind === "timestamp").length,
  };
}

/**
 * `Date`s within these bounds serialise as plain `YYYY-MM-DDTHH:mm:ss.sssZ`,
 * which JSON decoding reads back as the same millisecond; others go to NDJSON.
 */
const FIRST_PLAIN_DATE = Date.UTC(1000, 0, 1);
const LAST_PLAIN_DATE = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const nativeWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Whether a string has no lone surrogates (which JSON and UTF-8 treat differently). */
const isWellFormed: (s: string) => boolean = nativeWellFormed
  ? (s) => nativeWellFormed.call(s)
  : (s) => !LONE_SURROGATE.test(s);

/** Values `JSON.stringify` leaves out of an object, so the field reads as null. */
function absent(value: unknown): boolean {
  return value === undefined || value === null || typeof value === "function" || typeof value === "symbol";
}

/** Distinct strings of one push, numbered from 1. */
class Dictionary {
  readonly #codes = new Map<string, number>();
  readonly strings: string[] = [];
  /** False once a string was seen that must go through NDJSON. */
  ok = true;

  code(value: string): number {
    let code = this.#codes.get(value);
    if (code === undefined) {
      if (!isWellFormed(value)) this.ok = false;
      code = this.strings.push(value);
      this.#codes.set(value, code);
    }
    return code;
  }
}

/**
 * The events as columns for `layout`, or null when some value must be
 * judged by NDJSON decoding (then push `JSON.stringify` of each event).
 */
export function toColumns(layout: ColumnLayout, events: readonly Record<string, unknown>[]): Columns | null {
  const rows = events.length;
  const numbers = new Float64Array(rows * layout.numberPlanes);
  const codes = new Uint32Array(rows * layout.codePlanes);
  const dictionary = new Dictionary();
  const key = JSON.stringify(layout.fields.map((f) => [f.name, f.kind]));
  const extract = extractors.get(key, () => extractorSource(layout));
  const ok = extract
    ? extract(events, rows, numbers, codes, dictionary, Object.prototype, Object.getPrototypeOf)
    : fillByField(layout, events, numbers, codes, dictionary);
  if (!ok || !dictionary.ok) return null;
  const strings = dictionary.strings;
  const lengths = new Uint32Array(strings.length);
  for (let i = 0; i < strings.length; i++) lengths[i] = strings[i].length;
  return { rows, numbers, codes, dictionary: strings.join(""), lengths };
}

/** Fills the planes from `events`; false when some value must go through NDJSON. */
type Extractor = (
  events: readonly Record<string, unknown>[],
  rows: number,
  numbers: Float64Array,
  codes: Uint32Array,
  dictionary: Dictionary,
  objectPrototype: object,
  prototypeOf: (value: object) => unknown,
) => boolean;

/** Extractors per layout: one loop over the events reading each field by its constant name. */
const extractors = new Specialized<Extractor>(["events", "rows", "numbers", "codes", "dictionary", "objectPrototype", "prototypeOf"]);

/** The body of an {@link Extractor}: the checks of {@link fillByField}, row by row. */
function extractorSource(layout: ColumnLayout): string {
  const absent = `(v === undefined || v === null || typeof v === "function" || typeof v === "symbol")`;
  const lines: string[] = [];
  let numberPlane = 0;
  let codePlane = 0;
  for (const { name, kind } of layout.fields) {
    lines.push(`v = event[${literal(name)}];`);
    const n = `numbers[${numberPlane} * rows + row]`;
    const c = `codes[${codePlane} * rows + row]`;
    switch (kind) {
      case "number":
        lines.push(`if (typeof v === "number") ${n} = v; else if ${absent} ${n} = NaN; else return false;`);
        numberPlane += 1;
        break;
      case "boolean":
        lines.push(`if (typeof v === "boolean") ${n} = v ? 1 : 0; else if ${absent} ${n} = NaN; else return false;`);
        numberPlane += 1;
        break;
      case "timestamp":
        lines.push(
          `if (typeof v === "number") ${n} = v;`,
          `else if (typeof v === "string") { ${n} = NaN; ${c} = dictionary.code(v); }`,
          `else if (v instanceof Date) { const millis = v.getTime(); if (millis < ${FIRST_PLAIN_DATE} || millis > ${LAST_PLAIN_DATE}) return false; ${n} = millis; }`,
          `else if ${absent} ${n} = NaN; else return false;`,
        );
        numberPlane += 1;
        codePlane += 1;
        break;
      case "string":
        lines.push(`if (typeof v === "string") ${c} = dictionary.code(v); else if (!${absent}) return false;`);
        codePlane += 1;
        break;
      case "other":
        lines.push(`if (!${absent}) return false;`);
        break;
    }
  }
  return `let v;
for (let row = 0; row < rows; row++) {
  const event = events[row];
  if (typeof event !== "object" || event === null) return false;
  const prototype = prototypeOf(event);
  if (prototype !== objectPrototype && prototype !== null) return false;
  ${lines.join("\n  ")}
}
return true;`;
}

/** {@link toColumns}' work without generated code: field by field. */
function fillByField(
  layout: ColumnLayout,
  events: readonly Record<string, unknown>[],
  numbers: Float64Array,
  codes: Uint32Array,
  dictionary: Dictionary,
): boolean {
  const rows = events.length;
  for (let row = 0; row < rows; row++) {
    const event = events[row];
    if (typeof event !== "object" || event === null) return false;
    // Class instances may have getters or toJSON that JSON.stringify sees differently.
    const prototype: unknown = Object.getPrototypeOf(event);
    if (prototype !== Object.prototype && prototype !== null) return false;
  }
  let numberOffset = 0;
  let codeOffset = 0;
  for (const { name, kind } of layout.fields) {
    let ok: boolean;
    switch (kind) {
      case "number":
        ok = numberColumn(events, name, numbers, numberOffset);
        numberOffset += rows;
        break;
      case "boolean":
        ok = booleanColumn(events, name, numbers, numberOffset);
        numberOffset += rows;
        break;
      case "timestamp":
        ok = timestampColumn(events, name, numbers, numberOffset, codes, codeOffset, dictionary);
        numberOffset += rows;
        codeOffset += rows;
        break;
      case "string":
        ok = stringColumn(events, name, codes, codeOffset, dictionary);
        codeOffset += rows;
        break;
      case "other":
        ok = events.every((event) => absent(event[name]));
        break;
    }
    if (!ok || !dictionary.ok) return false;
  }
  return true;
}

function numberColumn(events: readonly Record<string, unknown>[], name: string, out: Float64Array, offset: number): boolean {
  for (let row = 0; row < events.length; row++) {
    const value = events[row][name];
    if (typeof value === "number") out[offset + row] = value;
    else if (absent(value)) out[offset + row] = NaN;
    else return false;
  }
  return true;
}

function booleanColumn(events: readonly Record<string, unknown>[], name: string, out: Float64Array, offset: number): boolean {
  for (let row = 0; row < events.length; row++) {
    const value = events[row][name];
    if (typeof value === "boolean") out[offset + row] = value ? 1 : 0;
    else if (absent(value)) out[offset + row] = NaN;
    else return false;
  }
  return true;
}

function timestampColumn(
  events: readonly Record<string, unknown>[],
  name: string,
  numbers: Float64Array,
  numberOffset: number,
  codes: Uint32Array,
  codeOffset: number,
  dictionary: Dictionary,
): boolean {
  for (let row = 0; row < events.length; row++) {
    const value = events[row][name];
    if (typeof value === "number") {
      numbers[numberOffset + row] = value;
    } else if (typeof value === "string") {
      numbers[numberOffset + row] = NaN;
      codes[codeOffset + row] = dictionary.code(value);
    } else if (value instanceof Date) {
      // An invalid Date serialises as null, like NaN.
      const millis = value.getTime();
      if (millis < FIRST_PLAIN_DATE || millis > LAST_PLAIN_DATE) return false;
      numbers[numberOffset + row] = millis;
    } else if (absent(value)) {
      numbers[numberOffset + row] = NaN;
    } else {
      return false;
    }
  }
  return true;
}

function stringColumn(
  events: readonly Record<string, unknown>[],
  name: string,
  codes: Uint32Array,
  offset: number,
  dictionary: Dictionary,
): boolean {
  for (let row = 0; row < events.length; row++) {
    const value = events[row][name];
    if (typeof value === "string") codes[offset + row] = dictionary.code(value);
    else if (!absent(value)) return false;
  }
  return true;
}

/** The events as NDJSON; an event `JSON.stringify` refuses (a BigInt, a cycle) is INVALID_INPUT. */
export function toNdjson(events: readonly Record<string, unknown>[]): string {
  let text = "";
  for (let row = 0; row < events.length; row++) {
    let line: string | undefined;
    try {
      line = JSON.stringify(events[row]);
    } catch (error) {
      throw new RiffleError("INVALID_INPUT", `event ${row} cannot be written as JSON: ${String(error)}`, { cause: error });
    }
    text += line + "\n";
  }
  return text;
}
