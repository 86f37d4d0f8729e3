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
