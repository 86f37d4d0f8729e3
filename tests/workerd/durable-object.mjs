// A Durable Object that owns a Riffle engine and checkpoints to its own
// storage; phase 2 runs after a restart of workerd and restores.
import wasm from "../../pkg/riffle_bg.wasm";
import { DurableObjectStore, Riffle } from "../../dist/index.js";
import { DDL, QUERY, generateTrades } from "../shared/scenario.mjs";

export class EngineObject {
  constructor(ctx) {
    this.ctx = ctx;
  }

  async fetch(request) {
    try {
      const phase = new URL(request.url).searchParams.get("phase");
      const trades = generateTrades(5, 3_000);
      const engine = await Riffle.create({ wasm, store: new DurableObjectStore(this.ctx.storage) });
      await engine.sql(DDL);
      const rows = [];
      engine.query(QUERY).subscribe((batch) => rows.push(...batch));
      let start = 0;
      if (phase === "2") start = (await engine.restore()).offsets.trades;
      const end = phase === "1" ? 1_500 : trades.length;
      for (let i = start; i < end; i += 250) engine.push("trades", trades.slice(i, Math.min(i + 250, end)));
      if (phase === "1") await engine.checkpoint();
      else engine.finish();
      engine.close();
      return Response.json({ rows, start, stored: await new DurableObjectStore(this.ctx.storage).list() });
    } catch (error) {
      return Response.json({ failure: String(error && error.stack ? error.stack : error) }, { status: 500 });
    }
  }
}

export default {
  fetch(request, env) {
    return env.ENGINE.get(env.ENGINE.idFromName("engine")).fetch(request);
  },
};
