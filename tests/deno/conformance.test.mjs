// The conformance suite under Deno, with the WebSocket source (Deno's own
// WebSocket) against the event server running in a Node child process.
import { Riffle, RiffleError } from "../../dist/index.js";
import { CONFORMANCE_FEED, conformance } from "../shared/conformance.mjs";

Deno.test("conformance suite under Deno", async () => {
  const args = [new URL("../../demo/event-server.mjs", import.meta.url).pathname, "--port", "0"];
  for (const [key, value] of Object.entries(CONFORMANCE_FEED)) args.push(`--${key}`, String(value));
  const server = new Deno.Command("node", { args, stdout: "piped", stderr: "inherit" }).spawn();
  try {
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let first = "";
    while (!first.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the event server exited before printing its URL");
      first += value;
    }
    reader.releaseLock();
    const { url } = JSON.parse(first.split("\n")[0]);
    const results = await conformance(Riffle, RiffleError, { webSocket: { url, config: CONFORMANCE_FEED } });
    const failures = results.filter((r) => r.failure !== null);
    if (results.length < 15) throw new Error(`only ${results.length} checks ran`);
    if (failures.length > 0) throw new Error(`failed: ${JSON.stringify(failures, null, 1)}`);
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await server.stdout.cancel().catch(() => {});
  }
});
