// A Worker whose Durable Object owns a Riffle engine that ingests a trade
// feed over WebSocket, answers queries over HTTP and checkpoints to its own
// storage; after workerd restarts it restores and resumes the feed from the
// checkpoint's position.
//
//   POST /start?feed=ws://…   create (or restore) the engine and connect to the feed
//   GET  /results             windows emitted so far, feed position, metrics
//   POST /checkpoint          checkpoint now (also every CHECKPOINT_EVERY messages)
import wasm from "../../pkg/riffle_bg.wasm";
import { DurableObjectStore, Riffle } from "../../dist/index.js";
import { FEED_DDL as DDL, FEED_QUERY as QUERY } from "../shared/conformance.mjs";

const CHECKPOINT_EVERY = 5;

export class FeedObject {
  constructor(ctx) {
    this.ctx = ctx;
    this.engine = null;
    this.rows = [];
  }

  async start(feed) {
    if (this.engine) return;
    let query;
    this.engine = await Riffle.create({
      wasm,
      tickIntervalMs: 0,
      store: new DurableObjectStore(this.ctx.storage),
      keepCheckpoints: 2,
      setup: async (engine) => {
        await engine.sql(DDL);
        query = engine.query(QUERY);
      },
    });
    this.query = query;
    // Rows emitted before the last checkpoint; later ones come again after a restore.
    this.rows = this.engine.restored ? ((await this.ctx.storage.get("rows")) ?? []) : [];
    query.subscribe((rows) => this.rows.push(...rows));
    let messages = 0;
    this.connection = this.engine.connect("trades", {
      url: feed,
      subscribe: (from) => JSON.stringify({ subscribe: "trades", from: Number(from ?? 0) }),
      reconnect: { initialDelayMs: 100, maxDelayMs: 2000 },
    });
    this.connection.onState((state) => {
      if (state === "open") messages = this.connection.stats().messages;
    });
    // Checkpoint every few messages, from the object's own event loop.
    this.timer = setInterval(() => {
      const now = this.connection.stats().messages;
      if (now - messages >= CHECKPOINT_EVERY) {
        messages = now;
        this.checkpoint().catch(() => {});
      }
    }, 20);
  }

  async checkpoint() {
    // The rows and the snapshot (taken synchronously inside checkpoint()) describe the same moment;
    // both writes start in this turn, so the object's storage commits them together.
    const rows = this.rows.slice();
    const written = this.engine.checkpoint();
    await this.ctx.storage.put("rows", rows);
    return written;
  }

  async fetch(request) {
    try {
      const url = new URL(request.url);
      if (url.pathname === "/start") {
        await this.start(url.searchParams.get("feed"));
        return Response.json({ restored: this.engine.restored?.resumeTokens.trades ?? null });
      }
      if (!this.engine) return Response.json({ error: "not started" }, { status: 409 });
      if (url.pathname === "/checkpoint") {
        const info = await this.checkpoint();
        return Response.json(info);
      }
      if (url.pathname === "/results") {
        return Response.json({ rows: this.rows, position: this.connection.position ?? null, state: this.connection.state, metrics: this.query.metrics() });
      }
      return new Response("not found", { status: 404 });
    } catch (error) {
      return Response.json({ failure: String(error && error.stack ? error.stack : error) }, { status: 500 });
    }
  }
}

export default {
  fetch(request, env) {
    return env.FEED.get(env.FEED.idFromName("feed")).fetch(request);
  },
};
