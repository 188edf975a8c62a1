// In-process: the domain over the in-memory transport. One client edits, another
// watches; both see the same events in the same order, and a snapshot
// afterwards matches the tree both can rebuild from those events.
import assert from "node:assert/strict";
import { evolve } from "../../srv/core/evolve.ts";
import { initialState, snapshotOf, type State } from "../../srv/core/state.ts";
import { type ReducerEvent } from "../../srv/core/decide.ts";
import type { Json } from "../_harness.ts";
import { withServer as withSrv } from "../_in_process.ts";
import { TREE_KEYS } from "../_fixtures.ts";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

Deno.test("two clients see one edit stream; the snapshot matches the fold of it", async () => {
  await withSrv(async (_srv, connect) => {
    const editor = await connect();
    const watcher = await connect();
    await editor.register(10, "host");
    await watcher.take(3);
    await watcher.register(11, "renderer");
    await editor.take(2);

    const seen: Json[] = [];
    const send = async (command: Json, expect: number): Promise<Json[]> => {
      await editor.send(command);
      const mine = await editor.take(expect);
      const theirs = await watcher.take(expect);
      assert.deepEqual(theirs, mine, `${command.cmd}: both clients see the same events`);
      seen.push(...mine);
      return mine;
    };

    const [ws] = await send({ cmd: "create_workspace", name: "main" }, 1);
    assert.match(ws.workspace_id, UUID_V4);
    const w = ws.workspace_id;
    const [t1, active] = await send({ cmd: "create_tab", workspace_id: w, name: "shell" }, 2);
    assert.equal(active.event, "active_tab_changed");
    assert.match(t1.tab_id, UUID_V4);
    const [t2] = await send({ cmd: "create_tab", workspace_id: w, name: "logs" }, 1);
    const [b1] = await send({ cmd: "create_block", tab_id: t1.tab_id, meta: { kind: "term" } }, 1);
    await send({ cmd: "create_block", tab_id: t1.tab_id }, 1);
    await send({
      cmd: "move_block",
      block_id: b1.block_id,
      src_tab_id: t1.tab_id,
      dst_tab_id: t2.tab_id,
      dst_index: 0,
    }, 1);
    await send({
      cmd: "update_tab_meta",
      tab_id: t2.tab_id,
      meta_patch: { title: "Logs", x: null },
    }, 1);
    await send({ cmd: "reorder_tab", workspace_id: w, tab_id: t2.tab_id, new_index: 0 }, 1);
    const [err] = await send({ cmd: "create_tab", workspace_id: "nope", name: "x" }, 1);
    assert.deepEqual(err, {
      event: "error",
      code: "invalid_command",
      message: "CreateTab: workspace not found: nope",
      fatal: false,
      version: err.version,
    });
    await send({ cmd: "delete_tab", workspace_id: w, tab_id: t1.tab_id }, 2);
    // A no-op sends nothing: the barrier shows the stream is empty.
    await editor.send({ cmd: "delete_block", tab_id: t2.tab_id, block_id: "nope" });
    assert.deepEqual(await editor.drainUntilPrivateReply(), []);

    for (let i = 1; i < seen.length; i++) {
      assert.equal(seen[i].version, seen[i - 1].version + 1, "versions rise by one");
    }
    const [snap] = await send({ cmd: "get_srv_snapshot" }, 1);
    let state: State = initialState();
    for (const e of seen) state = evolve(state, e as ReducerEvent);
    const view = snapshotOf(state);
    for (const key of TREE_KEYS) {
      assert.deepEqual(snap[key], view[key], key);
    }
    assert.deepEqual(snap.tab_order[w], [t2.tab_id]);
    assert.deepEqual(snap.meta.tabs[t2.tab_id], { title: "Logs" });
    assert.deepEqual(snap.active_tabs, [[w, t2.tab_id]]);

    // The log replays the same domain events a late joiner would need.
    const list = await editor.request({ cmd: "get_events", since: seen[0].version - 1 });
    assert.deepEqual(
      list.events,
      seen.filter((e) => e.event !== "error" && e.event !== "srv_snapshot"),
    );
  });
});

Deno.test("a meta_patch that is not an object is a private parse error, not a broadcast", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    const b = await connect();
    await a.register(1);
    await b.take(3);
    const ws = await a.request({ cmd: "create_workspace", name: "w" });
    await b.next();
    const e = await a.request({
      cmd: "update_workspace_meta",
      workspace_id: ws.workspace_id,
      meta_patch: [1],
    });
    assert.equal(e.code, "invalid_command");
    assert.equal(e.version, 0);
    assert.match(e.message, /^parse failed: invalid value for `meta_patch`/);
    assert.deepEqual(await b.drainUntilPrivateReply(), []);
  });
});

Deno.test("a pipelined burst reaches every connection as the log holds it, refusals in their places", async () => {
  await withSrv(async (_srv, connect) => {
    const editor = await connect();
    const watcher = await connect();
    await editor.register(20, "host");
    await watcher.take(3);
    await watcher.register(21, "renderer");
    await editor.take(2);
    await editor.send({ cmd: "create_workspace", name: "w" });
    const [ws] = await editor.take(1);
    await editor.send({ cmd: "create_tab", workspace_id: ws.workspace_id, name: "t" });
    const [tab] = await editor.take(2);
    await editor.send({ cmd: "create_block", tab_id: tab.tab_id, meta: { n: 0 } });
    const [block] = await editor.take(1);
    await watcher.take(4);
    // One write: turns where every line is a logged broadcast (sent as the
    // log's own bytes) and turns mixed with a refused command.
    const lines: string[] = [];
    for (let i = 1; i <= 300; i++) {
      lines.push(JSON.stringify(
        i % 97 === 0
          ? { cmd: "update_block_meta", block_id: "nope", meta_patch: { n: i } }
          : { cmd: "update_block_meta", block_id: block.block_id, meta_patch: { n: i, s: "é😀" } },
      ));
    }
    await editor.writeRaw(new TextEncoder().encode(lines.join("\n") + "\n"));
    const mine = await editor.take(300);
    const theirs = await watcher.take(300);
    assert.deepEqual(theirs, mine, "both connections read the same lines");
    assert.deepEqual(
      mine.filter((e) => e.event === "error").map((e) => e.message),
      [97, 194, 291].map(() => "UpdateBlockMeta: block not found: nope"),
    );
    const updates = mine.filter((e) => e.event === "block_meta_updated");
    assert.deepEqual(
      updates.map((e) => e.meta_patch.n),
      lines.map((_, i) => i + 1).filter((n) => n % 97 !== 0),
    );
    assert.ok(updates.every((e) => e.meta_patch.s === "é😀"));
    // What was broadcast is what the log answers for.
    const list = await editor.request({ cmd: "get_events", since: block.version });
    assert.deepEqual(list.events, updates);
  });
});
