// A Cloudflare Worker running Riffle: the wasm is imported as a module, as
// Workers require (they refuse to compile wasm from bytes at run time).
import wasm from "../../pkg/riffle_bg.wasm";
import { Riffle, RiffleError } from "../../dist/index.js";
import { conformance } from "../shared/conformance.mjs";
import { diffRows, generateTrades, referenceWindows, runScenario } from "../shared/scenario.mjs";

export default {
  async fetch(request) {
    try {
      const url = new URL(request.url);
      if (url.pathname === "/conformance") {
        const ws = url.searchParams.get("ws");
        const webSocket = ws ? { url: ws, config: JSON.parse(url.searchParams.get("config")) } : undefined;
        return Response.json({ results: await conformance(Riffle, RiffleError, { wasm, webSocket }) });
      }
      const trades = generateTrades(1, 5_000);
      const { rows, metrics, beforeFinish } = await runScenario(Riffle, trades, { wasm });
      const engine = await Riffle.create({ wasm });
      let code = null;
      try {
        engine.query("SELECT * FROM missing");
      } catch (error) {
        code = error instanceof RiffleError ? error.code : String(error);
      }
      return Response.json({
        difference: diffRows(rows, referenceWindows(trades)),
        eventsIn: metrics.eventsIn,
        beforeFinish,
        code,
      });
    } catch (error) {
      return Response.json({ failure: String(error && error.stack ? error.stack : error) }, { status: 500 });
    }
  },
};
