/**
 * The WebSocket source: keeps a stream fed from a WebSocket, reconnecting
 * with backoff and jitter and resuming from the last position the engine
 * counted, so a replaying server loses or repeats nothing.
 * @module
 */
import { RiffleError } from "./errors.js";

/** What a connection is doing. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "paused" | "closed";

/** How a dropped connection is retried. */
export interface ReconnectOptions {
  /** Delay before the first retry. Default 250 ms. */
  initialDelayMs?: number;
  /** Longest delay between retries. Default 10 s. */
  maxDelayMs?: number;
  /** Each failed retry multiplies the delay by this. Default 2. */
  factor?: number;
  /** Fraction of each delay drawn at random (0 = none, 1 = full jitter). Default 0.5. */
  jitter?: number;
  /** Give up (state "closed") after this many failed retries in a row. Default unlimited. */
  maxAttempts?: number;
}

/** A message as it arrived: text, or bytes for binary messages. */
export type SocketMessage = string | Uint8Array;

/** Options of {@link Riffle.connect}. */
export interface ConnectOptions {
  /** Server URL, or a function of the resume position (for servers that take it in the URL). */
  url: string | ((position: string | undefined) => string);
  /**
   * `"json"` (default): text messages of NDJSON or a JSON array, decoded in
   * wasm. `"arrow"`: binary messages of Arrow IPC stream bytes.
   */
  format?: "json" | "arrow";
  /** The message to send when a connection opens, given the resume position (e.g. a subscribe request). */
  subscribe?: (position: string | undefined) => string | Uint8Array | undefined;
  /**
   * The resume position after a message, given the one before it. Default
   * for `"json"`: positions are line offsets (the previous position plus the
   * message's non-empty lines), as servers that replay from an offset use.
   */
  position?: (message: SocketMessage, previous: string | undefined) => string | undefined;
  /**
   * Where to start. Default: the position restored from the last checkpoint
   * (`engine.restored`), or the server's choice when there is none.
   */
  resumeFrom?: string;
  /** Retry dropped connections (default true, with the defaults of {@link ReconnectOptions}). */
  reconnect?: boolean | ReconnectOptions;
  /**
   * Larger messages are not pushed whole: NDJSON is pushed in pieces of at
   * most this size (in UTF-16 units), anything else is reported as
   * MESSAGE_TOO_LARGE and skipped. Default 16 MiB.
   */
  maxMessageBytes?: number;
  /**
   * The WebSocket class; default `globalThis.WebSocket` (browsers, Deno,
   * Workers, Node ≥ 22). On Node 20 pass the `ws` package's: `{ WebSocket }`.
   */
  WebSocket?: abstract new (url: string, protocols?: string | string[]) => unknown;
  /** WebSocket subprotocols. */
  protocols?: string | string[];
}

/** Counters of a connection. */
export interface ConnectionStats {
  /** Current state. */
  state: ConnectionState;
  /** Messages pushed. */
  messages: number;
  /** Bytes (text: UTF-16 units) received. */
  bytes: number;
  /** Connections opened after the first. */
  reconnects: number;
  /** Resume position after the last message pushed. */
  position: string | undefined;
  /** The last error, if any. */
  lastError: RiffleError | undefined;
}

/** What the connection needs of the engine. */
export interface ConnectionSink {
  pushText(text: string, position: string | undefined): void;
  pushBytes(bytes: Uint8Array, position: string | undefined): void;
}

/** The subset of the WebSocket API used, met by browsers, Deno, workerd and `ws`. */
interface SocketLike {
  binaryType: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}
type SocketClass = new (url: string, protocols?: string | string[]) => SocketLike;

const DEFAULT_MAX_MESSAGE = 16 << 20;

/** Non-empty lines of NDJSON text. */
function countLines(text: string): number {
  let count = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    for (let i = start; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c !== 32 && c !== 9 && c !== 13) {
        count += 1;
        break;
      }
    }
    start = end + 1;
  }
  return count;
}

/** Line offsets: the previous offset plus this message's lines. */
function lineOffsets(message: SocketMessage, previous: string | undefined): string | undefined {
  if (typeof message !== "string") return previous;
  return String(Number(previous ?? 0) + countLines(message));
}

/** Splits NDJSON into pieces of at most `limit` units at line ends; a longer line is its own piece. */
function splitLines(text: string, limit: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + limit);
    if (end < text.length) {
      const newline = text.lastIndexOf("\n", end);
      end = newline > start ? newline + 1 : text.indexOf("\n", end) + 1 || text.length;
    }
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}

/**
 * A WebSocket feeding one stream. Created by {@link Riffle.connect}; lives
 * until {@link Connection.close} or the engine closes.
 */
export class Connection {
  readonly #stream: string;
  readonly #options: ConnectOptions;
  readonly #sink: ConnectionSink;
  readonly #Socket: SocketClass;
  #socket: SocketLike | undefined;
  #state: ConnectionState = "connecting";
  #position: string | undefined;
  #attempt = 0;
  #opened = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #messages = 0;
  #bytes = 0;
  #lastError: RiffleError | undefined;
  readonly #stateListeners = new Set<(state: ConnectionState) => void>();
  readonly #errorListeners = new Set<(error: RiffleError) => void>();

  /** @internal */
  constructor(stream: string, options: ConnectOptions, sink: ConnectionSink) {
    this.#stream = stream;
    this.#options = options;
    this.#sink = sink;
    this.#position = options.resumeFrom;
    const Socket = (options.WebSocket ?? (globalThis as { WebSocket?: unknown }).WebSocket) as SocketClass | undefined;
    if (typeof Socket !== "function") {
      throw new RiffleError(
        "NO_WEBSOCKET",
        "this runtime has no global WebSocket (Node < 22): pass one, e.g. connect(stream, { url, WebSocket }) with `import { WebSocket } from \"ws\"`",
      );
    }
    this.#Socket = Socket;
    this.#open();
  }

  /** The stream this connection feeds. */
  get stream(): string {
    return this.#stream;
  }

  /** What the connection is doing now. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Resume position after the last message pushed (what a reconnect asks for). */
  get position(): string | undefined {
    return this.#position;
  }

  /** Counters, for dashboards and tests. */
  stats(): ConnectionStats {
    return {
      state: this.#state,
      messages: this.#messages,
      bytes: this.#bytes,
      reconnects: Math.max(0, this.#opened - 1),
      position: this.#position,
      lastError: this.#lastError,
    };
  }

  /** Calls `listener` on every state change; returns an unsubscribe function. */
  onState(listener: (state: ConnectionState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /**
   * Calls `listener` with every error: failed connections, rejected pushes
   * (the message is skipped and the position moves past it), oversized
   * messages. Returns an unsubscribe function.
   */
  onError(listener: (error: RiffleError) => void): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  /** Resolves when the connection reaches `state` (now or later); rejects after `timeoutMs`. */
  when(state: ConnectionState, timeoutMs = 30_000): Promise<void> {
    if (this.#state === state) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new RiffleError("TIMEOUT", `connection to stream '${this.#stream}' did not become ${state} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onState((now) => {
        if (now !== state) return;
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  }

  /** Stops reading (closes the socket) until {@link Connection.resume}; nothing is lost with a replaying server. */
  pause(): void {
    if (this.#state === "closed" || this.#state === "paused") return;
    this.#drop();
    this.#setState("paused");
  }

  /** Reconnects after {@link Connection.pause}, from the current position. */
  resume(): void {
    if (this.#state !== "paused") return;
    this.#attempt = 0;
    this.#open();
  }

  /** Closes the socket for good. */
  close(): void {
    if (this.#state === "closed") return;
    this.#drop();
    this.#setState("closed");
  }

  #open(): void {
    this.#setState(this.#opened === 0 ? "connecting" : "reconnecting");
    const url = typeof this.#options.url === "function" ? this.#options.url(this.#position) : this.#options.url;
    let socket: SocketLike;
    try {
      socket = new this.#Socket(url, this.#options.protocols);
    } catch (error) {
      this.#report(new RiffleError("CONNECTION", `cannot open ${url}: ${String(error)}`, { cause: error }));
      this.#retry();
      return;
    }
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    socket.onopen = () => {
      if (socket !== this.#socket) return;
      this.#opened += 1;
      this.#attempt = 0;
      const hello = this.#options.subscribe?.(this.#position);
      if (hello !== undefined) socket.send(hello);
      this.#setState("open");
    };
    socket.onmessage = (event) => {
      if (socket === this.#socket) this.#receive(event.data);
    };
    socket.onerror = () => {
      // A close event follows with the code; report there.
    };
    socket.onclose = (event) => {
      if (socket !== this.#socket) return;
      this.#socket = undefined;
      this.#report(new RiffleError("CONNECTION", `connection to ${url} closed (code ${event.code ?? "?"}${event.reason ? `: ${event.reason}` : ""})`));
      this.#retry();
    };
  }

  #retry(): void {
    const reconnect = this.#options.reconnect ?? true;
    if (reconnect === false) {
      this.#setState("closed");
      return;
    }
    const options: ReconnectOptions = reconnect === true ? {} : reconnect;
    this.#attempt += 1;
    if (this.#attempt > (options.maxAttempts ?? Infinity)) {
      this.#report(new RiffleError("CONNECTION", `gave up after ${this.#attempt - 1} failed reconnects`));
      this.#setState("closed");
      return;
    }
    const base = Math.min(options.maxDelayMs ?? 10_000, (options.initialDelayMs ?? 250) * (options.factor ?? 2) ** (this.#attempt - 1));
    const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
    const delay = base * (1 - jitter * Math.random());
    this.#setState("reconnecting");
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#state === "reconnecting") this.#open();
    }, delay);
  }

  #receive(data: unknown): void {
    let message: SocketMessage;
    if (typeof data === "string") message = data;
    else if (data instanceof ArrayBuffer) message = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) message = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else {
      this.#report(new RiffleError("INVALID_INPUT", `unsupported WebSocket message type ${Object.prototype.toString.call(data)}`));
      return;
    }
    const size = typeof message === "string" ? message.length : message.byteLength;
    this.#bytes += size;
    const next = (this.#options.position ?? (this.#options.format === "arrow" ? undefined : lineOffsets))?.(message, this.#position);
    const limit = this.#options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE;
    try {
      if (this.#options.format === "arrow") {
        if (typeof message === "string") throw new RiffleError("INVALID_INPUT", "expected binary Arrow IPC messages, got text");
        if (size > limit) throw tooLarge(size, limit);
        this.#sink.pushBytes(message, next);
      } else {
        const text = typeof message === "string" ? message : new TextDecoder().decode(message);
        if (size <= limit) {
          this.#sink.pushText(text, next);
        } else if (text.trimStart().startsWith("[")) {
          throw tooLarge(size, limit);
        } else {
          // Oversized NDJSON goes in line-aligned pieces; only the last carries the position.
          const pieces = splitLines(text, limit);
          for (const [i, piece] of pieces.entries()) {
            if (piece.length > limit) {
              this.#report(tooLarge(piece.length, limit, "one line"));
              continue;
            }
            this.#sink.pushText(piece, i === pieces.length - 1 ? next : this.#position);
          }
        }
      }
    } catch (error) {
      const riffleError = error instanceof RiffleError ? error : new RiffleError("INTERNAL", String(error), { cause: error });
      this.#report(riffleError);
      if (riffleError.code === "ENGINE_CLOSED" || riffleError.code === "ENGINE_PANICKED") {
        this.close();
        return;
      }
    }
    // A message the engine refused is not retried: replaying it would fail again.
    this.#position = next;
    this.#messages += 1;
  }

  #drop(): void {
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) {
      try {
        socket.close(1000, "closed by the client");
      } catch {
        // Already closing.
      }
    }
  }

  #report(error: RiffleError): void {
    this.#lastError = error;
    for (const listener of this.#errorListeners) listener(error);
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of this.#stateListeners) listener(state);
  }
}

function tooLarge(size: number, limit: number, what = "a message"): RiffleError {
  return new RiffleError("MESSAGE_TOO_LARGE", `${what} of ${size} bytes is over maxMessageBytes (${limit}); skipped`);
}
