/**
 * Riffle: streaming SQL for the edge.
 *
 * ```ts
 * const engine = await Riffle.create();
 * await engine.sql(`CREATE STREAM trades (symbol VARCHAR, price DOUBLE, ts TIMESTAMP,
 *                   WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)`);
 * const q = engine.query(`SELECT symbol, window_start, count(*) AS n
 *                         FROM TUMBLE(trades, ts, INTERVAL '1' MINUTE)
 *                         GROUP BY symbol, window_start, window_end`);
 * q.subscribe((rows) => console.table(rows));
 * engine.push("trades", [{ symbol: "A", price: 1.5, ts: Date.now() }]);
 * engine.finish();
 * ```
 * @module
 */
import { Engine as WasmEngine, lastPanic } from "../pkg/riffle.js";
import { parseLayout, toColumns, toNdjson, type ColumnLayout } from "./columns.js";
import { attachStrings, rowsFromColumns, type RowColumns, type RowPlanes } from "./row-columns.js";
import { fromEngineError, RiffleError } from "./errors.js";
import { loadWasm, wasmMemory, type WasmSource } from "./load.js";
import { Connection, type ConnectOptions } from "./connect.js";
import type { CheckpointStore } from "./store.js";

/** Encodes NDJSON pushes: natively, much faster than passing a string to wasm. */
const utf8 = new TextEncoder();

/**
 * Pushes NDJSON text, encoded by `TextEncoder.encodeInto` straight into
 * wasm memory (no intermediate `Uint8Array`, no copy by the glue code).
 * One byte per UTF-16 unit suffices for ASCII; otherwise three always do.
 */
function pushText(engine: WasmEngine, stream: string, text: string): string {
  let room = text.length;
  for (;;) {
    const at = engine.reserveInput(room);
    // After reserveInput: growing the memory replaces its buffer.
    const { read, written } = utf8.encodeInto(text, new Uint8Array(wasmMemory().buffer, at, room));
    if (read === text.length) return engine.pushJsonInput(stream, written ?? 0);
    room = text.length * 3;
  }
}

export { RiffleError, type RiffleErrorCode } from "./errors.js";
export type { WasmSource } from "./load.js";
export {
  Connection,
  type ConnectionState,
  type ConnectionStats,
  type ConnectOptions,
  type ReconnectOptions,
  type SocketMessage,
} from "./connect.js";
export {
  DurableObjectStore,
  FileStore,
  IndexedDBStore,
  MemoryStore,
  type CheckpointStore,
  type DurableObjectStorageLike,
} from "./store.js";

/** A value in a result row. Timestamps are epoch milliseconds. */
export type Value = string | number | boolean | null | Value[] | { [key: string]: Value };

/** A result row: column name to value. */
export type Row = Record<string, Value>;

/**
 * An event pushed to a stream: field name to value. Timestamp fields take
 * epoch milliseconds, ISO-8601 strings or `Date`s. Fields the stream does
 * not declare are ignored.
 */
export type Event = Record<string, unknown>;

/** Options for {@link Riffle.create}. */
export interface RiffleOptions {
  /** Where to load the wasm from; found automatically except on Cloudflare Workers. */
  wasm?: WasmSource;
  /** Wall clock in epoch ms, for idle timeouts. Default `Date.now`. */
  clock?: () => number;
  /** Where {@link Riffle.checkpoint} writes and {@link Riffle.restore} reads. */
  store?: CheckpointStore;
  /** Checkpoints to keep in the store (older ones are deleted). Default 3. */
  keepCheckpoints?: number;
  /** Take a checkpoint every this many milliseconds (needs `store`). */
  checkpointIntervalMs?: number;
  /** In browsers, checkpoint when the page is hidden or left (needs `store`). Default true. */
  checkpointOnHide?: boolean;
  /** Called when an automatic checkpoint fails; the engine keeps running. */
  onCheckpointError?: (error: RiffleError) => void;
  /**
   * Creates the streams and queries. With a `store`, the newest valid
   * checkpoint is restored right after it; see {@link Riffle.restored}.
   */
  setup?: (engine: Riffle) => void | Promise<void>;
  /** With `setup`: start empty when the stored checkpoints are of other queries. */
  startEmptyOnMismatch?: boolean;
  /** How {@link Riffle.enqueue} coalesces events into pushes. */
  batching?: BatchingOptions;
  /** Receives errors of automatic flushes of enqueued events. */
  onError?: (error: unknown) => void;
  /**
   * How often (ms) to tell the engine the time when a stream declares an
   * idle timeout, so windows close on a quiet feed. Default 1000; 0 turns
   * the timer off (call {@link Riffle.tick} yourself).
   */
  tickIntervalMs?: number;
}

/** What {@link Riffle.checkpoint} wrote. */
export interface CheckpointInfo {
  /** Id in the store; ids sort in the order checkpoints were taken. */
  id: string;
  /** Size in bytes. */
  bytes: number;
}

/** Where each stream stood when a checkpoint was taken. */
export interface StreamPositions {
  /** Per stream, events already counted: replay your source from there. */
  offsets: Record<string, number>;
  /** Per stream, the position the application supplied with its last push, if any. */
  resumeTokens: Record<string, string | undefined>;
}

/** What {@link Riffle.restore} restored. */
export interface RestoreResult extends StreamPositions {
  /** Id of the checkpoint restored. */
  id: string;
  /** Newer checkpoints that failed their checks and were skipped. */
  skipped: { id: string; error: RiffleError }[];
}

/** A row a `bad_rows = 'dead_letter'` stream dropped, and why. */
export interface DeadLetter {
  /** The stream. */
  stream: string;
  /** Position of the row in its push (0-based). */
  row: number;
  /** What is wrong with it. */
  reason: string;
  /** The row as pushed (JSON), when known. */
  text: string | null;
}

/** How {@link Riffle.enqueue} coalesces events into pushes. */
export interface BatchingOptions {
  /** Push as soon as a stream has this many events buffered. Default 1000. */
  maxEvents?: number;
  /**
   * Otherwise push this many milliseconds after the first buffered event;
   * 0 (default) pushes at the end of the current task (a microtask).
   */
  lingerMs?: number;
  /** Refuse events beyond this many buffered per stream (backpressure). Default 100,000. */
  maxBuffered?: number;
}

/** Options of a push. */
export interface PushOptions {
  /**
   * The application's position in its source after these events (a message
   * sequence number, a log offset): kept in checkpoints and returned by restore.
   */
  resumeToken?: string;
}

/** Kind of a change in a changelog result (GROUP BY without a window). */
export type ChangeKind = "insert" | "update_before" | "update_after" | "delete";

/** Options for {@link Riffle.query} that SQL does not express. */
export interface QueryOptions {
  /**
   * Rows that arrive after their window closed: `"drop"` (default) drops and
   * counts them; `"sideOutput"` also hands them to {@link Query.subscribeLate}.
   */
  late?: "drop" | "sideOutput";
  /**
   * For GROUP BY without a window: forget a group once the watermark has
   * moved this many milliseconds past its last update (emitted as a delete).
   */
  stateTtlMs?: number;
  /**
   * For window queries: late rows up to this many milliseconds after a window
   * closed still update it; results become a changelog (`_op`).
   */
  allowedLatenessMs?: number;
  /**
   * How results are delivered: `"rows"` (default), arrays of plain objects
   * ({@link Query}); or `"arrow"`, one Arrow IPC stream per delivery as a
   * `Uint8Array` ({@link ArrowQuery}), e.g. for apache-arrow's `tableFromIPC`.
   */
  output?: "rows" | "arrow";
}

/** {@link QueryOptions} for a query delivering rows. */
export type RowQueryOptions = QueryOptions & { output?: "rows" };

/** {@link QueryOptions} for a query delivering Arrow IPC. */
export type ArrowQueryOptions = QueryOptions & { output: "arrow" };

/** Counters of a query, for dashboards and tests. */
export interface QueryMetrics {
  /** Events accepted by the query's stream. */
  eventsIn: number;
  /** Rows of the stream dropped as bad (`bad_rows = 'skip'` or `'dead_letter'`). */
  badRows: number;
  /** Events dropped because their window had already closed. */
  lateEventsDropped: number;
  /** The stream's watermark (epoch ms); null before the first event and after finish. */
  watermark: number | null;
  /** Whether the stream was finished. */
  finished: boolean;
  /** Windows holding state. */
  openWindows: number;
  /** Windows emitted so far. */
  windowsEmitted: number;
  /** Approximate bytes of query state. */
  stateBytes: number;
  /** Each join of the query, in plan order: its inputs' counters. */
  joins: JoinMetrics[];
  /** Each lookup join (a stream joined with a table), in plan order. */
  lookups: LookupMetrics[];
}

/** Counters of one lookup join. */
export interface LookupMetrics {
  /** The table it reads. */
  table: string;
  /** Stream rows that reached it. */
  rowsIn: number;
  /** Of those, rows that found their table row (and met the condition). */
  rowsMatched: number;
}

/** What {@link Riffle.upsert} or {@link Riffle.delete} changed. */
export interface TableChange {
  /** Rows with a key the table did not hold. */
  inserted: number;
  /** Rows that replaced the row of their key. */
  updated: number;
  /** Rows removed. */
  deleted: number;
}

/** Counters of one join of a query. */
export interface JoinMetrics {
  /** Its left input. */
  left: JoinSideMetrics;
  /** Its right input. */
  right: JoinSideMetrics;
}

/** Counters of one input of a join. */
export interface JoinSideMetrics {
  /** Rows that reached the join on this side. */
  rowsIn: number;
  /** Of those, rows dropped as late. */
  lateRowsDropped: number;
  /** Rows of this side the join holds now. */
  rowsHeld: number;
}

/** Receives each batch of result rows a push (or finish) produced. */
export type Listener<R extends Row> = (rows: R[]) => void;

/**
 * Receives the results a push (or finish) produced as one Arrow IPC stream
 * (schema and one record batch); timestamps keep their Arrow type.
 */
export type ArrowListener = (ipc: Uint8Array) => void;

/** One entry of the engine's JSON answer: rows, or the index of an Arrow IPC buffer. */
interface RawOutput {
  query: number;
  late: boolean;
  rows?: Row[];
  /** Rows handed over column-wise: the planes wait in wasm (`takeRowNumbers`, `takeRowCodes`, `takeRowText`, `takeRowTextLengths`). */
  columns?: RowColumns;
  arrow?: number;
}

/** Concatenates two JSON arrays of outputs without parsing them. */
function mergeOutputs(first: string, second: string): string {
  if (first === "[]") return second;
  if (second === "[]") return first;
  return `${first.slice(0, -1)},${second.slice(1)}`;
}

/**
 * What every continuous query has, whatever form its results take: `D` is
 * what {@link QueryBase.subscribe} listeners receive, `L` what late-row
 * listeners receive.
 */
export abstract class QueryBase<D, L> {
  readonly #engine: Riffle;
  readonly #listeners = new Set<(delivery: D) => void>();
  readonly #lateListeners = new Set<(delivery: L) => void>();

  /** @internal */
  constructor(
    engine: Riffle,
    /** Id within the engine. */
    readonly id: number,
    /** The SQL text. */
    readonly sql: string,
    /** Result column names, in order. */
    readonly columns: readonly string[],
  ) {
    this.#engine = engine;
  }

  /** Calls `listener` with each completed result; returns an unsubscribe function. */
  subscribe(listener: (delivery: D) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Whether results are a changelog: each row then has an `_op` column
   * ({@link ChangeKind}). True for GROUP BY without a window, EMIT ON UPDATE
   * and allowed lateness.
   */
  get changelog(): boolean {
    return this.columns.includes("_op");
  }

  /**
   * Calls `listener` with late input rows, as they were pushed, when the
   * query was created with `{ late: "sideOutput" }`.
   */
  subscribeLate(listener: (delivery: L) => void): () => void {
    this.#lateListeners.add(listener);
    return () => {
      this.#lateListeners.delete(listener);
    };
  }

  /**
   * Stops the query: its operators and their state are removed, its
   * listeners get nothing more, and views it read can be dropped. Closing
   * twice is a no-op.
   */
  close(): void {
    this.#engine.closeQuery(this.id);
    this.#listeners.clear();
    this.#lateListeners.clear();
  }

  /** Current counters. */
  metrics(): QueryMetrics {
    return JSON.parse(this.#engine.callEngine((e) => e.queryMetrics(this.id))) as QueryMetrics;
  }

  /** Hands results to the listeners; what they throw goes to `errors`. */
  protected deliverResults(delivery: D, errors: unknown[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(delivery);
      } catch (error) {
        errors.push(error);
      }
    }
  }

  /** Hands late rows to the late listeners; what they throw goes to `errors`. */
  protected deliverLate(delivery: L, errors: unknown[]): void {
    for (const listener of this.#lateListeners) {
      try {
        listener(delivery);
      } catch (error) {
        errors.push(error);
      }
    }
  }
}

/** A continuous query delivering plain objects. Results arrive through {@link Query.subscribe}. */
export class Query<R extends Row = Row> extends QueryBase<R[], Row[]> {
  /** How results are delivered. */
  readonly output = "rows";

  /** @internal */
  deliver(rows: Row[], late: boolean, errors: unknown[]): void {
    if (late) this.deliverLate(rows, errors);
    else this.deliverResults(rows as R[], errors);
  }
}

/**
 * A continuous query created with `{ output: "arrow" }`: each delivery is one
 * Arrow IPC stream (`Uint8Array`) holding the rows a push (or finish)
 * produced, late rows included when subscribed with {@link ArrowQuery.subscribeLate}.
 */
export class ArrowQuery extends QueryBase<Uint8Array, Uint8Array> {
  /** How results are delivered. */
  readonly output = "arrow";

  /** @internal */
  deliver(ipc: Uint8Array, late: boolean, errors: unknown[]): void {
    if (late) this.deliverLate(ipc, errors);
    else this.deliverResults(ipc, errors);
  }
}

/**
 * A running `INSERT INTO stream SELECT ...`, started by {@link Riffle.sql}:
 * its results become events of the stream, for every query that reads it.
 */
export class InsertJob {
  readonly #engine: Riffle;

  /** @internal */
  constructor(
    engine: Riffle,
    /** Id within the engine (shared with queries). */
    readonly id: number,
    /** The SQL text. */
    readonly sql: string,
  ) {
    this.#engine = engine;
  }

  /**
   * Stops the job: its operators and state go, and the stream no longer
   * waits for its watermark. Rows it already inserted stay. Closing twice
   * is a no-op.
   */
  close(): void {
    this.#engine.closeQuery(this.id);
  }
}

/** A streaming SQL engine. Pushes are synchronous: results are delivered before `push` returns. */
export class Riffle {
  #engine: WasmEngine | undefined;
  #broken: RiffleError | undefined;
  readonly #queries = new Map<number, Query<Row> | ArrowQuery | InsertJob>();
  /** Per stream, how its events are handed over column-wise (streams never change). */
  readonly #layouts = new Map<string, ColumnLayout>();
  readonly #deadLetterListeners = new Set<(letters: DeadLetter[]) => void>();
  readonly #buffers = new Map<string, Event[]>();
  #flushScheduled = false;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #clock: () => number;
  readonly #tickIntervalMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly #options: RiffleOptions;
  #checkpointTimer: ReturnType<typeof setInterval> | undefined;
  #checkpointChain: Promise<unknown> = Promise.resolve();
  #checkpointSequence = 0;
  #onHide: (() => void) | undefined;
  readonly #connections = new Set<Connection>();

  private constructor(engine: WasmEngine, options: RiffleOptions) {
    this.#engine = engine;
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
    this.#tickIntervalMs = options.tickIntervalMs ?? 1000;
    if (options.store) this.#startCheckpointTriggers();
  }

  #startCheckpointTriggers(): void {
    const automatic = (): void => {
      this.checkpoint().catch((error: unknown) => {
        const riffleError = error instanceof RiffleError ? error : new RiffleError("STORAGE", String(error), { cause: error });
        if (this.#options.onCheckpointError) this.#options.onCheckpointError(riffleError);
      });
    };
    const interval = this.#options.checkpointIntervalMs;
    if (interval !== undefined && interval > 0) {
      const timer = setInterval(automatic, interval);
      (timer as { unref?: () => void }).unref?.();
      this.#checkpointTimer = timer;
    }
    const page = globalThis as { addEventListener?: (type: string, listener: () => void) => void; document?: { visibilityState?: string } };
    if (this.#options.checkpointOnHide !== false && page.document && page.addEventListener) {
      this.#onHide = () => {
        if (page.document?.visibilityState !== "visible") automatic();
      };
      page.addEventListener("pagehide", this.#onHide);
      page.addEventListener("visibilitychange", this.#onHide);
    }
  }

  /**
   * What was restored when the engine was created with `setup` and a
   * `store`: the checkpoint and where to replay from; null if nothing was.
   */
  restored: RestoreResult | null = null;

  /**
   * Loads the wasm (once per realm) and creates an engine. With `setup` and a
   * `store`, runs setup and restores the newest valid checkpoint.
   */
  static async create(options: RiffleOptions = {}): Promise<Riffle> {
    await loadWasm(options.wasm);
    let engine: Riffle;
    try {
      engine = new Riffle(new WasmEngine(), options);
    } catch (error) {
      throw fromEngineError(error);
    }
    if (options.setup) {
      await options.setup(engine);
      if (options.store) engine.restored = await engine.restore({ startEmptyOnMismatch: options.startEmptyOnMismatch });
    }
    return engine;
  }

  /**
   * Runs a DDL statement:
   * `CREATE STREAM name (columns..., WATERMARK FOR ts AS ts - INTERVAL '2' SECOND) [WITH (idle_timeout = INTERVAL '5' SECOND)]`,
   * `CREATE TABLE name (columns..., PRIMARY KEY (key))` (no watermark: a
   * table the application fills with {@link Riffle.upsert}, which streams
   * join as it stands when each event is processed),
   * `CREATE [OR REPLACE | TEMPORARY] VIEW name AS SELECT ...` (shared by every
   * query that reads it), `DROP VIEW [IF EXISTS] name`, or
   * `INSERT INTO stream SELECT ...`, which starts a job whose results become
   * events of the stream (resolves to the job, to close it; `undefined`
   * for DDL).
   */
  async sql(statement: string): Promise<InsertJob | undefined> {
    const id = this.callEngine((e) => e.execute(statement));
    this.#startClock();
    if (id === undefined) return undefined;
    const job = new InsertJob(this, id, statement);
    this.#queries.set(id, job);
    return job;
  }

  /** The streaming operator graph a query would run (with or without a leading EXPLAIN). */
  explain(sql: string): string {
    return this.callEngine((e) => e.explain(sql));
  }

  /**
   * Asserts that no more events at or before `time` will arrive on `stream`:
   * its watermark moves there (never back) and completed windows are emitted.
   */
  advanceWatermark(stream: string, time: number | Date): void {
    const millis = time instanceof Date ? time.getTime() : time;
    this.#dispatch(this.callEngine((e) => e.advanceWatermark(stream, millis)));
  }

  /**
   * Tells the engine the wall-clock time. Streams with an idle timeout that
   * have been quiet that long let their watermark follow the clock. Called
   * by a timer when a stream declares an idle timeout.
   */
  tick(now: number = this.#clock()): void {
    this.#dispatch(this.callEngine((e) => e.tick(now)));
  }

  /**
   * Registers a continuous query over a stream. Window queries emit each
   * window once when it closes (`EMIT ON WINDOW CLOSE`), or a changelog with
   * `EMIT ON UPDATE` (per push) or `EMIT EVERY INTERVAL '1' SECOND` (per
   * period, on the engine's clock); GROUP BY without a window emits a
   * changelog per push.
   */
  query<R extends Row = Row>(sql: string, options?: RowQueryOptions): Query<R>;
  query(sql: string, options: ArrowQueryOptions): ArrowQuery;
  query(sql: string, options?: QueryOptions): Query<Row> | ArrowQuery;
  query(sql: string, options: QueryOptions = {}): Query<Row> | ArrowQuery {
    const output = options.output ?? "rows";
    const id = this.callEngine((e) => e.createQuery(sql, options.late, options.stateTtlMs, options.allowedLatenessMs, output));
    const columns = this.callEngine((e) => e.queryColumns(id));
    const query = output === "arrow" ? new ArrowQuery(this, id, sql, columns) : new Query<Row>(this, id, sql, columns);
    this.#queries.set(id, query);
    // EMIT EVERY queries emit on the engine's clock.
    this.#startClock();
    return query;
  }

  /**
   * Pushes events to a stream. A rejected push (typed error) changes nothing.
   * Plain objects cross into wasm column-wise (one typed array per declared
   * field); values that need JSON's judgement (a string in a number field, a
   * nested object) send the push as NDJSON instead, with the same results.
   */
  push(stream: string, events: readonly Event[], options: PushOptions = {}): void {
    if (events.length === 0) return;
    const layout = this.#layout(stream);
    const columns = layout === null ? null : toColumns(layout, events);
    const text = columns === null ? toNdjson(events) : undefined;
    this.#ingest(stream, options, (e) => {
      if (columns !== null) {
        const { rows, numbers, codes, dictionary, lengths } = columns;
        const pushed = e.pushColumns(stream, rows, numbers, codes, dictionary, lengths);
        if (pushed !== undefined) return pushed;
      }
      return pushText(e, stream, text ?? toNdjson(events));
    });
  }

  /** The stream's column layout, asked once; null for a stream the engine does not know (NDJSON then reports it). */
  #layout(stream: string): ColumnLayout | null {
    const known = this.#layouts.get(stream);
    if (known) return known;
    let layout: ColumnLayout;
    try {
      layout = parseLayout(this.callEngine((e) => e.streamLayout(stream)));
    } catch (error) {
      if (error instanceof RiffleError && error.code === "UNKNOWN_STREAM") return null;
      throw error;
    }
    this.#layouts.set(stream, layout);
    return layout;
  }

  /** Pushes newline-delimited JSON text, decoded inside wasm against the stream's schema. */
  pushJson(stream: string, ndjson: string, options: PushOptions = {}): void {
    this.#ingest(stream, options, (e) => pushText(e, stream, ndjson));
  }

  /** Ticks the clock, pushes with `push`, records the resume token, delivers results and dead letters. */
  #ingest(stream: string, options: PushOptions, push: (engine: WasmEngine) => string): void {
    const now = this.#clock();
    this.#dispatch(
      this.callEngine((e) => {
        // The arrival time is what idle detection measures from.
        const ticked = e.needsClock() ? e.tick(now) : "[]";
        const pushed = mergeOutputs(ticked, push(e));
        if (options.resumeToken !== undefined) e.setResumeToken(stream, options.resumeToken);
        return pushed;
      }),
    );
    this.#deliverDeadLetters();
  }

  /**
   * Buffers events and pushes them in batches (by size, at the end of the
   * task, or after `batching.lingerMs`): many small calls cost one push.
   * Returns false, accepting nothing, when the stream's buffer is full —
   * slow down or drop. Errors of the automatic pushes go to `onError`.
   */
  enqueue(stream: string, events: Event | readonly Event[]): boolean {
    const list = Array.isArray(events) ? (events as readonly Event[]) : [events as Event];
    const batching = this.#options.batching ?? {};
    const buffer = this.#buffers.get(stream) ?? [];
    if (buffer.length + list.length > (batching.maxBuffered ?? 100_000)) return false;
    for (const event of list) buffer.push(event);
    this.#buffers.set(stream, buffer);
    if (buffer.length >= (batching.maxEvents ?? 1000)) {
      this.#flushStream(stream);
    } else {
      this.#scheduleFlush(batching.lingerMs ?? 0);
    }
    return true;
  }

  /** Events buffered by {@link Riffle.enqueue} and not pushed yet. */
  buffered(stream?: string): number {
    if (stream !== undefined) return this.#buffers.get(stream)?.length ?? 0;
    let total = 0;
    for (const buffer of this.#buffers.values()) total += buffer.length;
    return total;
  }

  /** Pushes every buffered event now. Throws what the pushes throw. */
  flush(): void {
    if (this.#lingerTimer !== undefined) clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    this.#flushScheduled = false;
    const errors: unknown[] = [];
    for (const stream of [...this.#buffers.keys()]) {
      try {
        this.#flushStream(stream);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, "several pushes failed");
  }

  #flushStream(stream: string): void {
    const buffer = this.#buffers.get(stream);
    if (!buffer || buffer.length === 0) return;
    this.#buffers.delete(stream);
    this.push(stream, buffer);
  }

  #scheduleFlush(lingerMs: number): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    const run = (): void => {
      try {
        this.flush();
      } catch (error) {
        if (this.#options.onError) this.#options.onError(error);
        else queueMicrotask(() => {
          throw error;
        });
      }
    };
    if (lingerMs > 0) {
      this.#lingerTimer = setTimeout(run, lingerMs);
    } else {
      queueMicrotask(run);
    }
  }

  /**
   * Pushes Arrow IPC stream bytes, e.g. `tableToIPC(table, "stream")` from
   * apache-arrow: columns cross into wasm in bulk, never as JS values.
   * Columns are matched by name and cast to the declared types; timestamp
   * columns keep their unit.
   */
  pushArrow(stream: string, ipc: Uint8Array, options: PushOptions = {}): void {
    this.#ingest(stream, options, (e) => e.pushArrow(stream, ipc));
  }

  /**
   * Inserts or replaces rows of a table (`CREATE TABLE ... PRIMARY KEY`) by
   * key; of several rows with one key, the last wins. Events pushed from
   * now on meet the new rows; results already delivered stay as they were.
   * Every row needs the key's fields; other missing fields are NULL. A
   * refused call (typed error) changes nothing.
   */
  upsert(table: string, rows: readonly Event[]): TableChange {
    const text = utf8.encode(toNdjson(rows));
    return JSON.parse(this.callEngine((e) => e.upsertJson(table, text))) as TableChange;
  }

  /**
   * {@link Riffle.upsert} from Arrow IPC stream bytes (`tableToIPC(table,
   * "stream")`): columns are matched by name and cast to the declared types.
   */
  upsertArrow(table: string, ipc: Uint8Array): TableChange {
    return JSON.parse(this.callEngine((e) => e.upsertArrow(table, ipc))) as TableChange;
  }

  /**
   * Removes rows of a table by key: each object holds the key's fields
   * (others are ignored). Absent keys are ignored. A refused call changes
   * nothing.
   */
  delete(table: string, keys: readonly Event[]): TableChange {
    const text = utf8.encode(toNdjson(keys));
    return JSON.parse(this.callEngine((e) => e.deleteJson(table, text))) as TableChange;
  }

  /** Rows a table holds now. */
  tableSize(table: string): number {
    return this.callEngine((e) => e.tableSize(table));
  }

  /**
   * Feeds `stream` from a WebSocket: each message is pushed as it arrives
   * (NDJSON or JSON array text, or Arrow IPC bytes), with its resume
   * position, so checkpoints record where to resume. Dropped connections are
   * retried with backoff and jitter and resume from the last position pushed;
   * after a restore, from the restored one.
   *
   * ```ts
   * engine.connect("trades", {
   *   url: "wss://feed.example/trades",
   *   subscribe: (from) => JSON.stringify({ subscribe: "trades", from: Number(from ?? 0) }),
   * });
   * ```
   */
  connect(stream: string, options: ConnectOptions): Connection {
    this.callEngine(() => undefined);
    const resumeFrom = options.resumeFrom ?? this.restored?.resumeTokens[stream];
    const connection = new Connection(stream, { ...options, resumeFrom }, {
      pushText: (text, position) => this.pushJson(stream, text, position === undefined ? {} : { resumeToken: position }),
      pushBytes: (bytes, position) => this.pushArrow(stream, bytes, position === undefined ? {} : { resumeToken: position }),
    });
    this.#connections.add(connection);
    connection.onState((state) => {
      if (state === "closed") this.#connections.delete(connection);
    });
    return connection;
  }

  /**
   * Calls `listener` with the rows that streams declared with
   * `WITH (bad_rows = 'dead_letter')` dropped, after each push; returns an
   * unsubscribe function.
   */
  subscribeDeadLetters(listener: (letters: DeadLetter[]) => void): () => void {
    this.#deadLetterListeners.add(listener);
    return () => {
      this.#deadLetterListeners.delete(listener);
    };
  }

  #deliverDeadLetters(): void {
    const letters = JSON.parse(this.callEngine((e) => e.takeDeadLetters())) as DeadLetter[];
    if (letters.length === 0) return;
    for (const listener of this.#deadLetterListeners) listener(letters);
  }

  /** End of input on every stream: closes and emits every open window. */
  finish(): void {
    this.#dispatch(this.callEngine((e) => e.finish()));
  }

  /**
   * A consistent snapshot of every stream's position and every query's
   * state, taken between two pushes: one self-checking buffer.
   */
  snapshot(): Uint8Array {
    return this.callEngine((e) => e.checkpoint());
  }

  /**
   * Restores a snapshot into this engine, which must have the same streams
   * and queries (same SQL, same order) and nothing pushed yet. Returns each
   * stream's offset (events already counted): replay your source from there.
   * A damaged snapshot throws CORRUPT_CHECKPOINT; one of other queries
   * throws CHECKPOINT_MISMATCH. Nothing changes when either is thrown.
   */
  restoreSnapshot(snapshot: Uint8Array): StreamPositions {
    const raw = JSON.parse(this.callEngine((e) => e.restore(snapshot))) as Record<string, { offset: number; resumeToken: string | null }>;
    const positions: StreamPositions = { offsets: {}, resumeTokens: {} };
    for (const [stream, position] of Object.entries(raw)) {
      positions.offsets[stream] = position.offset;
      positions.resumeTokens[stream] = position.resumeToken ?? undefined;
    }
    return positions;
  }

  /**
   * Takes a snapshot and writes it to the configured store, keeping the
   * newest `keepCheckpoints`. Storage errors are RiffleError STORAGE; the
   * engine keeps running either way.
   */
  async checkpoint(): Promise<CheckpointInfo> {
    const store = this.#options.store;
    if (!store) throw new RiffleError("NO_STORE", "checkpoint() needs a store: Riffle.create({ store: new IndexedDBStore() })");
    const bytes = this.snapshot();
    const sequence = (this.#checkpointSequence += 1);
    const id = `${String(this.#clock()).padStart(16, "0")}-${String(sequence).padStart(6, "0")}`;
    const keep = Math.max(1, this.#options.keepCheckpoints ?? 3);
    // One write at a time, in order.
    const write = this.#checkpointChain.then(() => store.save(id, bytes, keep));
    this.#checkpointChain = write.catch(() => undefined);
    await write;
    return { id, bytes: bytes.length };
  }

  /**
   * Restores the newest valid checkpoint from the store, after the streams
   * and queries were created. Damaged checkpoints are skipped (and reported)
   * in favour of older ones. Returns null when the store holds none, or when
   * it holds only checkpoints of other queries and `startEmptyOnMismatch` is
   * set; otherwise such a checkpoint throws CHECKPOINT_MISMATCH.
   */
  async restore(options: { startEmptyOnMismatch?: boolean } = {}): Promise<RestoreResult | null> {
    const store = this.#options.store;
    if (!store) throw new RiffleError("NO_STORE", "restore() needs a store: Riffle.create({ store: new IndexedDBStore() })");
    const skipped: { id: string; error: RiffleError }[] = [];
    const ids = (await store.list()).reverse();
    for (const id of ids) {
      const bytes = await store.load(id);
      if (!bytes) continue;
      try {
        this.restored = { id, ...this.restoreSnapshot(bytes), skipped };
        return this.restored;
      } catch (error) {
        if (!(error instanceof RiffleError)) throw error;
        if (error.code === "CORRUPT_CHECKPOINT") {
          skipped.push({ id, error });
          continue;
        }
        if (error.code === "CHECKPOINT_MISMATCH" && options.startEmptyOnMismatch) return null;
        throw error;
      }
    }
    return null;
  }

  /** Frees the engine's memory and stops its timers; later calls throw ENGINE_CLOSED. */
  close(): void {
    for (const connection of [...this.#connections]) connection.close();
    if (this.#lingerTimer !== undefined) clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    this.#buffers.clear();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#checkpointTimer !== undefined) clearInterval(this.#checkpointTimer);
    this.#checkpointTimer = undefined;
    const page = globalThis as { removeEventListener?: (type: string, listener: () => void) => void };
    if (this.#onHide && page.removeEventListener) {
      page.removeEventListener("pagehide", this.#onHide);
      page.removeEventListener("visibilitychange", this.#onHide);
    }
    this.#engine?.free();
    this.#engine = undefined;
    this.#queries.clear();
    this.#layouts.clear();
  }

  /** @internal Closes query `id` (see {@link QueryBase.close}). */
  closeQuery(id: number): void {
    if (!this.#queries.has(id)) return;
    this.callEngine((e) => e.closeQuery(id));
    this.#queries.delete(id);
  }

  /** @internal Calls into wasm, turning thrown values into RiffleErrors. */
  callEngine<T>(call: (engine: WasmEngine) => T): T {
    if (this.#broken) throw this.#broken;
    if (!this.#engine) throw new RiffleError("ENGINE_CLOSED", "the engine was closed");
    try {
      return call(this.#engine);
    } catch (error) {
      if (error instanceof WebAssembly.RuntimeError) {
        let detail = error.message;
        try {
          detail = lastPanic() ?? detail;
        } catch {
          // The instance may be unusable; keep the trap's message.
        }
        this.#broken = new RiffleError("ENGINE_PANICKED", `the engine stopped on an internal error: ${detail}`, {
          cause: error,
        });
        throw this.#broken;
      }
      throw fromEngineError(error);
    }
  }

  #startClock(): void {
    if (this.#timer !== undefined || this.#tickIntervalMs <= 0) return;
    if (!this.callEngine((e) => e.needsClock())) return;
    const timer = setInterval(() => {
      try {
        this.tick();
      } catch (error) {
        // A subscriber threw or the engine broke; surface it without killing the timer's realm.
        queueMicrotask(() => {
          throw error;
        });
      }
    }, this.#tickIntervalMs);
    // Never keep a Node or Deno process alive just for the clock.
    (timer as { unref?: () => void }).unref?.();
    this.#timer = timer;
  }

  #dispatch(json: string): void {
    const outputs = JSON.parse(json) as RawOutput[];
    if (outputs.length === 0) return;
    // Arrow results wait in wasm; the JSON numbers them.
    const ipc = outputs.some((o) => o.arrow !== undefined) ? this.callEngine((e) => e.takeArrowOutputs()) : [];
    // So do the planes of rows handed over column-wise.
    let planes: RowPlanes | null = null;
    if (outputs.some((o) => o.columns !== undefined)) {
      planes = this.callEngine((e) => ({
        numbers: e.takeRowNumbers(),
        codes: e.takeRowCodes(),
        text: e.takeRowText(),
        lengths: e.takeRowTextLengths(),
      }));
      attachStrings(
        outputs.flatMap((o) => (o.columns ? [o.columns] : [])),
        planes,
      );
    }
    for (const output of outputs) {
      if (output.columns !== undefined && planes !== null) {
        output.rows = rowsFromColumns(output.columns, planes.numbers, planes.codes);
      }
    }
    // One delivery per query (and per kind) per call, in emission order.
    const byQuery = new Map<string, { id: number; late: boolean; rows: Row[]; ipc: Uint8Array[] }>();
    for (const output of outputs) {
      const key = `${output.query}:${output.late}`;
      let entry = byQuery.get(key);
      if (!entry) byQuery.set(key, (entry = { id: output.query, late: output.late, rows: output.rows ?? [], ipc: [] }));
      // A loop, not push(...rows): spreading 100k+ rows overflows the stack.
      else if (output.rows) for (const row of output.rows) entry.rows.push(row);
      if (output.arrow !== undefined) {
        const bytes = ipc[output.arrow];
        if (bytes) entry.ipc.push(bytes);
      }
    }
    const errors: unknown[] = [];
    for (const { id, late, rows, ipc: buffers } of byQuery.values()) {
      const query = this.#queries.get(id);
      if (query instanceof ArrowQuery) for (const bytes of buffers) query.deliver(bytes, late, errors);
      else if (query instanceof Query) query.deliver(rows, late, errors);
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, "several subscribers threw");
  }
}
