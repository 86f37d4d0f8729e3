// What users get: the `npm pack` tarball installed into an empty project.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

test("the packed tarball installs offline and runs a windowed query", () => {
  const dir = mkdtempSync(join(tmpdir(), "riffle-pack-"));
  try {
    const packed = JSON.parse(
      execFileSync("npm", ["pack", "--json", "--pack-destination", dir], { cwd: root, encoding: "utf8" }),
    );
    const files = packed[0].files.map((f) => f.path);
    for (const required of ["dist/index.js", "dist/index.d.ts", "pkg/riffle.js", "pkg/riffle_bg.wasm", "package.json"]) {
      assert.ok(files.includes(required), `tarball has ${required}: ${files.join(", ")}`);
    }
    assert.ok(!files.some((f) => f.startsWith("src/") || f.startsWith("tests/")), "no sources or tests shipped");

    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", join(dir, packed[0].filename)], {
      cwd: dir,
      stdio: "pipe",
    });
    writeFileSync(
      join(dir, "main.js"),
      `import { Riffle } from "riffle-sql";
       const engine = await Riffle.create();
       await engine.sql("CREATE STREAM clicks (page VARCHAR, ts TIMESTAMP, WATERMARK FOR ts AS ts)");
       const q = engine.query("SELECT page, window_start, count(*) AS n FROM TUMBLE(clicks, ts, INTERVAL '10' SECOND) GROUP BY page, window_start");
       const out = [];
       q.subscribe((rows) => out.push(...rows));
       engine.push("clicks", [{ page: "/", ts: 1000 }, { page: "/", ts: 2000 }, { page: "/a", ts: 12000 }]);
       engine.finish();
       console.log(JSON.stringify(out));`,
    );
    const output = execFileSync("node", ["main.js"], { cwd: dir, encoding: "utf8" });
    assert.deepEqual(JSON.parse(output), [
      { page: "/", window_start: 0, n: 2 },
      { page: "/a", window_start: 10_000, n: 1 },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The download is a product figure: the release wasm must stay under 5 MB
// gzip (README: build figures). A wasm-dev or unoptimised build is not judged.
test("the release wasm stays under its 5 MB gzip budget", async (t) => {
  const { readFileSync } = await import("node:fs");
  const { gzipSync } = await import("node:zlib");
  const wasm = readFileSync(new URL("../../pkg/riffle_bg.wasm", import.meta.url));
  // wasm-opt drops the ~8.5 MB name section; a module still this large did not go through it.
  if (wasm.length > 30e6) return t.skip("built without wasm-opt (RIFFLE_WASM_OPT=0 or wasm-dev)");
  const gzip = gzipSync(wasm, { level: 9 }).length;
  t.diagnostic(`wasm: ${(wasm.length / 1e6).toFixed(2)} MB raw, ${(gzip / 1e6).toFixed(3)} MB gzip`);
  assert.ok(gzip < 5e6, `${(gzip / 1e6).toFixed(3)} MB gzip is over the 5 MB budget`);
});
