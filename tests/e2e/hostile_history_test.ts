// Issue 11's "700 updates of 900 KB meta" row, against a real srv with a
// store: once it grew srv to 1.27 GB and made `get_events{since:0}` drop the
// asking connection ("Invalid string length"). Now the meta cap refuses such
// updates; and with the caps raised, the history they make is still served
// within bounds: the memory ring and one catch-up reply are bounded by bytes
// (--max-reply-bytes), so the asker gets the newest events that fit, marked
// truncated, and keeps its connection. The full 700 runs in no test: 120
// updates already make a history twice the reply budget.
import assert from "node:assert/strict";
import { type Json, startSrv, TestClient } from "../_harness.ts";
import { linuxOnly, mib, rssBytes } from "../_proc.ts";

const PAD = "m".repeat(900 * 1024);
const REPLY_BUDGET = 64 * 1024 * 1024;

async function withDataDir(fn: (dir: string, data: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "srv-hostile-history-" });
  try {
    await fn(dir, `${dir}/data`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A registered client with one block; returns the block id. */
async function oneBlock(c: TestClient): Promise<string> {
  const ws = await c.request({ cmd: "create_workspace", name: "w" });
  const tab = await c.request({ cmd: "create_tab", workspace_id: ws.workspace_id, name: "t" });
  await c.next(); // active_tab_changed
  const block = await c.request({ cmd: "create_block", tab_id: tab.tab_id, meta: { n: 0 } });
  return block.block_id;
}

Deno.test("row 5 at the defaults: 900 KB meta updates are refused by name, the tree and the history stay small", async () => {
  await withDataDir(async (dir, data) => {
    const srv = await startSrv({ dir, flags: ["--data-dir", data] });
    const c = await TestClient.connect(srv.socket);
    try {
      await c.register(1);
      const block = await oneBlock(c);
      for (let i = 0; i < 20; i++) {
        const refused = await c.request({
          cmd: "update_block_meta",
          block_id: block,
          meta_patch: { i, pad: PAD },
        });
        assert.equal(refused.event, "error");
        assert.equal(refused.code, "invalid_command");
        assert.match(refused.message, /--max-meta-bytes/);
      }
      const snapshot = await c.request({ cmd: "get_srv_snapshot" });
      assert.deepEqual(
        snapshot.meta.blocks[block],
        { n: 0 },
        "the refused patches changed nothing",
      );
      const list = await c.request({ cmd: "get_events", since: 0 });
      assert.equal(list.event, "event_list");
      assert.equal(list.truncated, false);
      assert.ok(
        JSON.stringify(list.events).length < 64 * 1024,
        "refusals are not logged, so the history holds no padding",
      );
    } finally {
      await c.dispose();
      assert.equal(await srv.stop("SIGTERM"), 0);
    }
  });
});

Deno.test(
  "row 5 with the caps raised: a history twice the reply budget is caught up in bounded replies, before and after a restart",
  { ignore: linuxOnly("reads srv's RSS from /proc") },
  async () => {
    await withDataDir(async (dir, data) => {
      const flags = [
        "--data-dir",
        data,
        "--max-meta-bytes",
        String(1 << 20),
        "--max-state-bytes",
        String(1 << 30),
      ];
      const updates = 120; // ~108 MB of history, against a 64 MiB reply budget
      let srv = await startSrv({ dir, flags });
      let c = await TestClient.connect(srv.socket, 128 * 1024 * 1024);
      let peak = 0;
      try {
        await c.register(1);
        const block = await oneBlock(c);
        let last = 0;
        for (let i = 1; i <= updates; i++) {
          const updated = await c.request({
            cmd: "update_block_meta",
            block_id: block,
            meta_patch: { i, pad: PAD },
          });
          assert.equal(updated.event, "block_meta_updated");
          last = Number(updated.version);
          if (i % 30 === 0) peak = Math.max(peak, rssBytes(srv.pid));
        }
        const check = async (when: string) => {
          const list = await c.request({ cmd: "get_events", since: 0 });
          assert.equal(list.event, "event_list", when);
          assert.equal(list.truncated, true, `${when}: older events were left out, and said so`);
          const events = list.events as Json[];
          const bytes = events.reduce((n: number, e: Json) => n + JSON.stringify(e).length + 1, 0);
          assert.ok(bytes <= REPLY_BUDGET, `${when}: ${bytes} bytes in one reply`);
          assert.ok(events.length >= 30, `${when}: the newest events that fit, not a handful`);
          assert.equal(Number(events.at(-1).version), last, `${when}: ends at the newest event`);
          const pong = await c.request({ cmd: "ping", nonce: 7 });
          assert.equal(pong.event, "pong", `${when}: the asker keeps its connection`);
          peak = Math.max(peak, rssBytes(srv.pid));
        };
        await check("live");
        await c.dispose();
        assert.equal(await srv.stop("SIGTERM"), 0);
        srv = await startSrv({ dir, flags });
        c = await TestClient.connect(srv.socket, 128 * 1024 * 1024);
        await c.register(2);
        // The restart's own register events came after the last update.
        const snapshot = await c.request({ cmd: "get_srv_snapshot" });
        assert.equal(snapshot.meta.blocks[block].i, updates, "the tree survived the restart");
        last = Number((await c.request({ cmd: "ping", nonce: 8 })).version);
        await check("after a restart");
        assert.ok(peak < 600 * 1024 * 1024, `srv RSS peaked at ${mib(peak)}`);
      } finally {
        await c.dispose();
        await srv.stop("SIGTERM");
      }
    });
  },
);
