// Loads the wasm module once per JavaScript realm, in whichever runtime we are in.
import init, { initSync } from "../pkg/riffle.js";

/**
 * Where the wasm comes from. By default Riffle finds `riffle_bg.wasm` next to
 * itself. Cloudflare Workers must pass the imported module
 * (`import wasm from "riffle-sql/riffle_bg.wasm"`), as they forbid compiling
 * wasm from bytes at run time.
 */
export type WasmSource = WebAssembly.Module | BufferSource | URL | string | Response;

let loaded: Promise<void> | undefined;
let memory: WebAssembly.Memory | undefined;

/** The instance's linear memory (after `loadWasm`), for writing input straight into it. */
export function wasmMemory(): WebAssembly.Memory {
  if (memory === undefined) throw new Error("the Riffle wasm module is not loaded");
  return memory;
}

interface RuntimeGlobals {
  Deno?: { readFile(path: URL): Promise<Uint8Array> };
  process?: { versions?: { node?: string } };
}

/** Initialises the wasm module; later calls reuse the first. */
export function loadWasm(source?: WasmSource): Promise<void> {
  loaded ??= instantiate(source).catch((error: unknown) => {
    loaded = undefined;
    throw error;
  });
  return loaded;
}

async function instantiate(source?: WasmSource): Promise<void> {
  if (source instanceof WebAssembly.Module) {
    memory = initSync({ module: source }).memory;
    return;
  }
  if (source !== undefined) {
    if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
      memory = initSync({ module: source }).memory;
    } else {
      memory = (await init({ module_or_path: source })).memory;
    }
    return;
  }
  const url = new URL("../pkg/riffle_bg.wasm", import.meta.url);
  const runtime = globalThis as RuntimeGlobals;
  if (runtime.Deno) {
    memory = initSync({ module: await runtime.Deno.readFile(url) }).memory;
  } else if (runtime.process?.versions?.node) {
    // Node's fetch cannot read file: URLs, so read the bytes instead.
    const specifier = "node:fs/promises";
    const fs = (await import(specifier)) as { readFile(path: URL): Promise<Uint8Array> };
    memory = initSync({ module: await fs.readFile(url) }).memory;
  } else {
    memory = (await init({ module_or_path: url })).memory;
  }
}
