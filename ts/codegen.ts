/**
 * Functions generated from source text, for the per-batch loops over rows
 * and fields (result rows, column-wise events): a loop specialised to one
 * list of field names reads and writes each field by a constant name (one
 * object shape, no keyed accesses), 2-3x faster than a generic loop.
 *
 * Some platforms refuse code generation (Cloudflare Workers; pages whose
 * Content-Security-Policy lacks 'unsafe-eval'); then {@link Specialized.get}
 * answers undefined from the first refusal on, and callers run their
 * generic loop.
 * @module
 */

/** Cleared at the first refusal: the platform forbids code generation. */
let allowed = true;

/** Most distinct keys kept per cache (one per query or stream shape, usually a handful). */
const MAX_ENTRIES = 64;

/** Generated functions by key (e.g. the field list they are specialised to). */
export class Specialized<F> {
  readonly #entries = new Map<string, F | null>();
  readonly #parameters: readonly string[];

  /** Functions of `parameters`, with bodies written by the caller. */
  constructor(parameters: readonly string[]) {
    this.#parameters = parameters;
  }

  /**
   * The function for `key`, compiled from `body()` the first time; undefined
   * where code generation is refused or `body()` does not compile.
   */
  get(key: string, body: () => string): F | undefined {
    if (!allowed) return undefined;
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = compile<F>(this.#parameters, `"use strict";\n${body()}`);
      if (!allowed) return undefined;
      if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
      this.#entries.set(key, entry);
    }
    return entry ?? undefined;
  }
}

function compile<F>(parameters: readonly string[], body: string): F | null {
  try {
    return new Function(...parameters, body) as F;
  } catch (error) {
    // EvalError: the platform disallows code generation (from now on, generic loops).
    if (error instanceof EvalError) allowed = false;
    return null;
  }
}

/** A JavaScript string literal of `text`, for property names in generated code. */
export function literal(text: string): string {
  return JSON.stringify(text);
}
