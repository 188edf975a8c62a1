// The runtime's floor (bench/floor_server.ts) is the yardstick that says
// whether a missed target is out of srv's reach in this runtime: it must
// really do the protocol's work (answer every command with its event, to
// every connection; with a data dir, commit each turn's lines and the
// changed block rows), and the report must read its figures right.

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { floorReading, TARGETS } from "../../bench/_report.ts";
import { startTarget } from "../../bench/_servers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A connection read line by line. */
class Lines {
  readonly conn: Deno.Conn;
  #text = "";
  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }
  async next(count: number): Promise<string[]> {
    const buf = new Uint8Array(64 * 1024);
    while (this.#text.split("\n").length - 1 < count) {
      const n = await this.conn.read(buf);
      if (n === null) throw new Error(`closed after ${JSON.stringify(this.#text)}`);
      this.#text += decoder.decode(buf.subarray(0, n));
    }
    const all = this.#text.split("\n");
    this.#text = all.slice(count).join("\n");
    return all.slice(0, count);
  }
}

Deno.test("the floor answers every command with its event, to every connection, in order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-floor-" });
  const server = await startTarget("floor_store", { dir, srv: {} });
  try {
    const a = new Lines(await Deno.connect({ transport: "unix", path: server.socket }));
    const b = new Lines(await Deno.connect({ transport: "unix", path: server.socket }));
    await a.conn.write(encoder.encode(`{"cmd":"register","kind":"tool","pid":1,"version":"t"}\n`));
    const [registered] = await a.next(1);
    assert.match(registered, /^\{"event":"registered",.*"version":1\}$/);
    assert.deepEqual(await b.next(1), [registered]);
    await b.conn.write(encoder.encode(`{"cmd":"create_block","tab_id":"t"}\n`));
    const [created] = await b.next(1);
    assert.deepEqual(await a.next(1), [created]);
    const id = JSON.parse(created).block_id;
    assert.match(id, /^[0-9a-f-]{36}$/);
    const patch = '{"title":"~/src/x","n":1}';
    await a.conn.write(encoder.encode(
      `{"cmd":"ping","nonce":1099511627775}\n` +
        `{"cmd":"update_block_meta","block_id":"${id}","meta_patch":${patch}}\n`,
    ));
    const expected = [
      '{"event":"pong","nonce":1099511627775,"version":3}',
      `{"event":"block_meta_updated","block_id":"${id}","meta_patch":${patch},"version":4}`,
    ];
    assert.deepEqual(await a.next(2), expected);
    assert.deepEqual(await b.next(2), expected);
    a.conn.close();
    b.conn.close();
  } finally {
    await server.stop();
  }
  // Each turn committed its lines and the block's row (the tree rows in the
  // transaction of their events), as srv's store must.
  const db = new DatabaseSync(`${dir}/data/floor.sqlite`);
  const batches = db.prepare("SELECT lines FROM batches ORDER BY first_version").all()
    .map((r) => String(r.lines)).join("");
  assert.equal(batches.split("\n").length - 1, 4);
  const row = db.prepare("SELECT meta FROM blocks").get();
  assert.deepEqual(JSON.parse(String(row?.meta)), { title: "~/src/x", n: 1 });
  db.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a target against an outside baseline is out of reach only when the floor misses it too", () => {
  const pipe = TARGETS.find((t) => t.key === "r.pipe.echo")!;
  const read = (srv: number, floor: number) =>
    floorReading(pipe, { "r.pipe.echo": srv, "rf.pipe.echo": floor });
  assert.equal(read(0.3, 0.4), "out of reach in this runtime: the floor misses it too");
  assert.equal(read(0.3, 0.6), "in srv's part: the floor meets it");
  // Within 5% of the limit either side, the floor's verdict is noise.
  assert.match(read(0.3, 0.48), /^at the limit/);
  assert.match(read(0.3, 0.52), /^at the limit/);
  // Met, or no floor figure: nothing to explain.
  assert.equal(read(0.55, 0.4), "");
  assert.equal(floorReading(pipe, { "r.pipe.echo": 0.3 }), "");
  // A target measured as "at most" reads the same way round.
  const rtt = TARGETS.find((t) => t.key === "r.rtt_p50.echo")!;
  assert.equal(
    floorReading(rtt, { "r.rtt_p50.echo": 1.4, "rf.rtt_p50.echo": 1.3 }),
    "out of reach in this runtime: the floor misses it too",
  );
});

Deno.test("store on ÷ off is out of reach when the floor's durable write alone exceeds what the ratio leaves", () => {
  const store = TARGETS.find((t) => t.key === "r.meta.store")!;
  // srv --memory: 4 µs a command, so at 0.85x the store may add 0.71 µs.
  const figures = (floorOn: number) => ({
    "r.meta.store": 0.5,
    "wl.meta0.srv": 250_000,
    "wl.meta0.srv_store": 125_000,
    "wl.meta0.floor": 1_000_000,
    "wl.meta0.floor_store": floorOn,
  });
  // The floor's write adds 1 µs (1 → 2 µs a command): more than 0.71.
  assert.match(floorReading(store, figures(500_000)), /^out of reach in this runtime/);
  assert.match(
    floorReading(store, figures(500_000)),
    /may add 0\.71; .* adds 1\.00, srv's store 4\.00$/,
  );
  // It adds 0.25 µs: srv's own store is what costs.
  assert.match(floorReading(store, figures(800_000)), /^in srv's part/);
  // It adds 0.70 µs: at the limit.
  assert.match(floorReading(store, figures(1_000_000 / 1.7)), /^at the limit/);
});

Deno.test("one srv workload ÷ another is out of reach when the floor's cost alone exceeds the budget", () => {
  const meta = TARGETS.find((t) => t.key === "r.meta.ping")!;
  // ping costs srv 1.2 µs, so at 0.6x update_block_meta may cost 2 µs.
  const figures = (floorMeta: number) => ({
    "r.meta.ping": 0.4,
    "wl.ping0.srv": 1e6 / 1.2,
    "wl.meta0.srv": 1e6 / 3,
    "wl.meta0.floor": floorMeta,
  });
  assert.match(
    floorReading(meta, figures(1e6 / 2.5)),
    /^out of reach in this runtime unless `ping`/,
  );
  assert.match(floorReading(meta, figures(1e6 / 1.5)), /^in srv's part: `ping` costs srv 1\.20 µs/);
  assert.match(floorReading(meta, figures(1e6 / 2.05)), /^at the limit/);
});
