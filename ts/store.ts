// Where checkpoints live: one interface, one class per backend.
import { RiffleError } from "./errors.js";

/**
 * A place to keep checkpoints. `save` must be atomic: after a crash a
 * checkpoint is either fully there or not at all. Ids sort in the order
 * checkpoints were taken.
 */
export interface CheckpointStore {
  /** Stores a checkpoint under `id` and deletes all but the newest `keep`. */
  save(id: string, bytes: Uint8Array, keep: number): Promise<void>;
  /** Ids of the stored checkpoints, oldest first. */
  list(): Promise<string[]>;
  /** A checkpoint's bytes, or undefined if it is gone. */
  load(id: string): Promise<Uint8Array | undefined>;
}

/** Keeps checkpoints in memory: for tests and for engines that only need an undo point. */
export class MemoryStore implements CheckpointStore {
  readonly #checkpoints = new Map<string, Uint8Array>();

  async save(id: string, bytes: Uint8Array, keep: number): Promise<void> {
    this.#checkpoints.set(id, bytes.slice());
    const ids = await this.list();
    for (const old of ids.slice(0, Math.max(0, ids.length - keep))) this.#checkpoints.delete(old);
  }

  async list(): Promise<string[]> {
    return [...this.#checkpoints.keys()].sort();
  }

  async load(id: string): Promise<Uint8Array | undefined> {
    return this.#checkpoints.get(id)?.slice();
  }
}

/**
 * Keeps checkpoints in IndexedDB (browsers). A save is one readwrite
 * transaction holding the new checkpoint and the deletion of old ones, so
 * it commits atomically. Quota errors become RiffleError STORAGE.
 */
export class IndexedDBStore implements CheckpointStore {
  readonly #name: string;
  #db: Promise<IDBDatabase> | undefined;

  /** A store in the IndexedDB database `name`. */
  constructor(name = "riffle-checkpoints") {
    this.#name = name;
  }

  #open(): Promise<IDBDatabase> {
    this.#db ??= new Promise((resolve, reject) => {
      const request = indexedDB.open(this.#name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore("checkpoints");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(storageError("open", request.error));
    });
    return this.#db;
  }

  async save(id: string, bytes: Uint8Array, keep: number): Promise<void> {
    const db = await this.#open();
    const ids = await this.list();
    await new Promise<void>((resolve, reject) => {
      const tx = db.transaction("checkpoints", "readwrite");
      const store = tx.objectStore("checkpoints");
      store.put(bytes, id);
      const all = [...ids.filter((x) => x !== id), id].sort();
      for (const old of all.slice(0, Math.max(0, all.length - keep))) store.delete(old);
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(storageError("save", tx.error));
      tx.onabort = () => reject(storageError("save", tx.error));
    });
  }

  async list(): Promise<string[]> {
    const db = await this.#open();
    return new Promise((resolve, reject) => {
      const request = db.transaction("checkpoints").objectStore("checkpoints").getAllKeys();
      request.onsuccess = () => resolve((request.result as IDBValidKey[]).map(String).sort());
      request.onerror = () => reject(storageError("list", request.error));
    });
  }

  async load(id: string): Promise<Uint8Array | undefined> {
    const db = await this.#open();
    return new Promise((resolve, reject) => {
      const request = db.transaction("checkpoints").objectStore("checkpoints").get(id);
      request.onsuccess = () => resolve(request.result as Uint8Array | undefined);
      request.onerror = () => reject(storageError("load", request.error));
    });
  }
}

interface NodeFs {
  mkdir(path: string, options: { recursive: true }): Promise<unknown>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Uint8Array>;
  rm(path: string, options: { force: true }): Promise<void>;
  open(path: string, flags: string): Promise<{ sync(): Promise<void>; close(): Promise<void> }>;
}

/**
 * Keeps checkpoints as files in a directory (Node, Deno with its Node
 * compatibility). A save writes a temporary file, syncs it and renames it
 * into place, so a crash never leaves a half-written checkpoint.
 */
export class FileStore implements CheckpointStore {
  readonly #dir: string;

  /** A store in directory `dir` (created if missing). */
  constructor(dir: string) {
    this.#dir = dir;
  }

  async #fs(): Promise<NodeFs> {
    const specifier = "node:fs/promises";
    const fs = (await import(specifier)) as NodeFs;
    await fs.mkdir(this.#dir, { recursive: true });
    return fs;
  }

  async save(id: string, bytes: Uint8Array, keep: number): Promise<void> {
    const path = `${this.#dir}/${id}.ckpt`;
    const temporary = `${path}.tmp`;
    let fs: NodeFs | undefined;
    try {
      fs = await this.#fs();
      await fs.writeFile(temporary, bytes);
      const handle = await fs.open(temporary, "r+");
      await handle.sync();
      await handle.close();
      await fs.rename(temporary, path);
    } catch (error) {
      await fs?.rm(temporary, { force: true }).catch(() => undefined);
      throw storageError("save", error);
    }
    const ids = await this.list();
    for (const old of ids.slice(0, Math.max(0, ids.length - keep))) {
      await fs.rm(`${this.#dir}/${old}.ckpt`, { force: true });
    }
  }

  async list(): Promise<string[]> {
    const fs = await this.#fs();
    return (await fs.readdir(this.#dir))
      .filter((name) => name.endsWith(".ckpt"))
      .map((name) => name.slice(0, -".ckpt".length))
      .sort();
  }

  async load(id: string): Promise<Uint8Array | undefined> {
    const fs = await this.#fs();
    try {
      return new Uint8Array(await fs.readFile(`${this.#dir}/${id}.ckpt`));
    } catch {
      return undefined;
    }
  }
}

function storageError(action: string, cause: unknown): RiffleError {
  const detail = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  return new RiffleError("STORAGE", `could not ${action} a checkpoint: ${detail}`, { cause });
}

/** The part of Cloudflare's `DurableObjectStorage` this store uses. */
export interface DurableObjectStorageLike {
  /** Reads one value. */
  get(key: string): Promise<unknown>;
  /** Writes several values atomically. */
  put(entries: Record<string, unknown>): Promise<void>;
  /** Deletes several keys. */
  delete(keys: string[]): Promise<number>;
  /** Lists keys with a prefix. */
  list(options: { prefix: string }): Promise<Map<string, unknown>>;
}

/** Values per Durable Object `put`, and bytes per value (the limit is 2 MB with the key). */
const DO_KEYS_PER_PUT = 128;
const DO_CHUNK_BYTES = 1 << 20;

/**
 * Keeps checkpoints in Durable Object storage, chunked to fit its per-value
 * limit. The chunks go first and the index entry last: a checkpoint whose
 * index is missing does not exist, so a crash mid-save leaves only garbage
 * that the next save removes.
 */
export class DurableObjectStore implements CheckpointStore {
  readonly #storage: DurableObjectStorageLike;
  readonly #prefix: string;

  /** A store in `storage` (a Durable Object's `ctx.storage`) under `prefix`. */
  constructor(storage: DurableObjectStorageLike, prefix = "riffle/") {
    this.#storage = storage;
    this.#prefix = prefix;
  }

  async save(id: string, bytes: Uint8Array, keep: number): Promise<void> {
    try {
      const chunks: Record<string, unknown> = {};
      let count = 0;
      for (let at = 0; at < bytes.length || count === 0; at += DO_CHUNK_BYTES) {
        chunks[`${this.#prefix}chunk/${id}/${count}`] = bytes.slice(at, at + DO_CHUNK_BYTES);
        count += 1;
      }
      const keys = Object.keys(chunks);
      for (let i = 0; i < keys.length; i += DO_KEYS_PER_PUT) {
        await this.#storage.put(Object.fromEntries(keys.slice(i, i + DO_KEYS_PER_PUT).map((k) => [k, chunks[k]])));
      }
      await this.#storage.put({ [`${this.#prefix}index/${id}`]: { chunks: count, bytes: bytes.length } });
    } catch (error) {
      throw storageError("save", error);
    }
    const ids = await this.list();
    const stale = ids.slice(0, Math.max(0, ids.length - keep));
    const known = new Set(ids.slice(ids.length - keep));
    // Old checkpoints, and chunks of saves that never got their index.
    const doomed = stale.map((old) => `${this.#prefix}index/${old}`);
    for (const key of (await this.#storage.list({ prefix: `${this.#prefix}chunk/` })).keys()) {
      const owner = key.slice(`${this.#prefix}chunk/`.length).split("/")[0];
      if (!known.has(owner)) doomed.push(key);
    }
    for (let i = 0; i < doomed.length; i += DO_KEYS_PER_PUT) await this.#storage.delete(doomed.slice(i, i + DO_KEYS_PER_PUT));
  }

  async list(): Promise<string[]> {
    const index = await this.#storage.list({ prefix: `${this.#prefix}index/` });
    return [...index.keys()].map((key) => key.slice(`${this.#prefix}index/`.length)).sort();
  }

  async load(id: string): Promise<Uint8Array | undefined> {
    const entry = (await this.#storage.get(`${this.#prefix}index/${id}`)) as { chunks: number; bytes: number } | undefined;
    if (!entry) return undefined;
    const out = new Uint8Array(entry.bytes);
    let at = 0;
    for (let i = 0; i < entry.chunks; i++) {
      const chunk = (await this.#storage.get(`${this.#prefix}chunk/${id}/${i}`)) as Uint8Array | ArrayBuffer | undefined;
      if (!chunk) return undefined;
      const bytes = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk);
      // A damaged store: let the checkpoint's own checks report it.
      out.set(bytes.subarray(0, Math.max(0, Math.min(bytes.length, out.length - at))), at);
      at += bytes.length;
    }
    return out;
  }
}
