/** Stable error codes. Codes from the engine keep their meaning across versions. */
export type RiffleErrorCode =
  | "SQL_PARSE"
  | "SQL_PLAN"
  | "UNSUPPORTED"
  | "UNKNOWN_STREAM"
  | "STREAM_EXISTS"
  | "UNKNOWN_QUERY"
  | "INVALID_INPUT"
  | "EXECUTION"
  | "FINISHED"
  /** A checkpoint that fails its checks (truncated, modified, not a checkpoint). */
  | "CORRUPT_CHECKPOINT"
  /** A checkpoint of other streams or queries than this engine's. */
  | "CHECKPOINT_MISMATCH"
  | "INTERNAL"
  /** A checkpoint store failed (quota, permissions, I/O); the engine keeps running. */
  | "STORAGE"
  /** No checkpoint store was configured. */
  | "NO_STORE"
  /** The wasm instance hit a bug and stopped; create a new engine after a reload. */
  | "ENGINE_PANICKED"
  /** The engine was closed with `close()`. */
  | "ENGINE_CLOSED"
  /** No WebSocket class in this runtime (Node < 22): pass one to `connect`. */
  | "NO_WEBSOCKET"
  /** A WebSocket failed to open or closed; the connection retries unless told not to. */
  | "CONNECTION"
  /** A message over `maxMessageBytes` that could not be split; it was skipped. */
  | "MESSAGE_TOO_LARGE"
  /** A wait (e.g. `connection.when("open")`) ran out of time. */
  | "TIMEOUT";

const ENGINE_CODES: ReadonlySet<string> = new Set([
  "SQL_PARSE",
  "SQL_PLAN",
  "UNSUPPORTED",
  "UNKNOWN_STREAM",
  "STREAM_EXISTS",
  "UNKNOWN_QUERY",
  "INVALID_INPUT",
  "EXECUTION",
  "FINISHED",
  "CORRUPT_CHECKPOINT",
  "CHECKPOINT_MISMATCH",
  "INTERNAL",
]);

/** Every error Riffle throws: `code` says what went wrong, `message` what to fix. */
export class RiffleError extends Error {
  readonly code: RiffleErrorCode;

  constructor(code: RiffleErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RiffleError";
    this.code = code;
  }
}

/** Converts an error thrown by the wasm bindings into a RiffleError. */
export function fromEngineError(error: unknown): RiffleError {
  if (error instanceof RiffleError) return error;
  if (error instanceof Error) {
    const code = (error as Error & { code?: unknown }).code;
    if (typeof code === "string" && ENGINE_CODES.has(code)) {
      return new RiffleError(code as RiffleErrorCode, error.message);
    }
    return new RiffleError("INTERNAL", error.message, { cause: error });
  }
  return new RiffleError("INTERNAL", String(error), { cause: error });
}
