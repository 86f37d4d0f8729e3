// The conformance suite (tests/shared/conformance.mjs) in Node, with the
// WebSocket source against the local event server (`ws` on 127.0.0.1).
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebSocket } from "ws";
import { Riffle, RiffleError } from "riffle-sql";
import { startEventServer } from "../../demo/event-server.mjs";
import { CONFORMANCE_FEED as FEED, conformance } from "../shared/conformance.mjs";

test("conformance suite in Node", async () => {
  const server = await startEventServer(FEED);
  try {
    const results = await conformance(Riffle, RiffleError, { webSocket: { url: server.url, config: server.config, WebSocket } });
    assert.ok(results.length >= 15, `${results.length} checks`);
    assert.deepEqual(results.filter((r) => r.failure !== null), []);
  } finally {
    await server.close();
  }
});
