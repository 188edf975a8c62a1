// In-process: the hostile-input and delivery rows of issue 11 that are
// about the protocol alone (caps, parse errors, the register timeout, the
// reply budget), over the in-memory transport. The rows that measure the
// process (RSS, restarts, the CLI) stay in tests/e2e/.
import assert from "node:assert/strict";
import type { Json, TestClient } from "../_harness.ts";
import { withServer as withSrv } from "../_in_process.ts";

const encoder = new TextEncoder();

async function workspaceWithTab(c: TestClient): Promise<{ ws: string; tab: string }> {
  const ws = (await c.request({ cmd: "create_workspace", name: "w" })).workspace_id;
  const tab = (await c.request({ cmd: "create_tab", workspace_id: ws, name: "t" })).tab_id;
  assert.equal((await c.next()).event, "active_tab_changed");
  return { ws, tab };
}

/** Pipelines `n` commands built by `make`, in writes of 500, and waits for their answers. */
async function pipeline(c: TestClient, n: number, make: (i: number) => Json): Promise<void> {
  for (let done = 0; done < n; done += 500) {
    const count = Math.min(500, n - done);
    const lines = Array.from({ length: count }, (_, i) => JSON.stringify(make(done + i)));
    await c.writeRaw(encoder.encode(lines.join("\n") + "\n"));
    await c.take(count);
  }
}

Deno.test("--max-state-bytes bounds all names and metas together", async () => {
  // "w"+{} and "t"+{} are 6 bytes; a block meta {"k":"…"} of 8 + n bytes.
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    await a.register(100);
    const { tab } = await workspaceWithTab(a);
    assert.equal(
      (await a.request({ cmd: "create_block", tab_id: tab, meta: { k: "x".repeat(86) } })).event,
      "block_created",
    );
    const error = await a.request({ cmd: "create_block", tab_id: tab, meta: 1 });
    assert.equal(
      error.message,
      "CreateBlock: names and metas would total 101 bytes, over the limit of 100 (--max-state-bytes)",
    );
    assert.equal((await a.request({ cmd: "ping", nonce: 1 })).event, "pong");
  }, { flags: ["--memory", "--max-state-bytes", "100"] });
});

Deno.test("a name with a lone surrogate is a parse error (the store could not keep it)", async () => {
  await withSrv(async (_srv, connect) => {
    const c = await connect();
    await c.register(1);
    const ws = (await c.request({ cmd: "create_workspace", name: "ok" })).workspace_id;
    const tab = (await c.request({ cmd: "create_tab", workspace_id: ws, name: "t" })).tab_id;
    await c.next(); // active_tab_changed
    for (
      const command of [
        { cmd: "create_workspace", name: "a\ud800b" },
        { cmd: "rename_workspace", workspace_id: ws, name: "\udc00" },
        { cmd: "create_tab", workspace_id: ws, name: "\ud83d".repeat(341) + "a" },
        { cmd: "rename_tab", tab_id: tab, name: "x\ud800" },
      ]
    ) {
      const e = await c.request(command);
      assert.equal(e.event, "error");
      assert.equal(e.version, 0);
      assert.match(e.message, /^parse failed: .*lone surrogate/);
    }
    // A surrogate pair is a character like any other; metadata keeps lone ones.
    assert.equal((await c.request({ cmd: "rename_tab", tab_id: tab, name: "😀" })).name, "😀");
    const meta = await c.request({
      cmd: "update_tab_meta",
      tab_id: tab,
      meta_patch: { s: "\ud800" },
    });
    assert.equal(meta.meta_patch.s, "\ud800");
    const snapshot = await c.request({ cmd: "get_srv_snapshot" });
    assert.deepEqual(snapshot.workspaces, [[ws, "ok"]]);
  });
});

Deno.test("150 connections that never register are closed after --register-timeout; registered ones stay", async () => {
  await withSrv(async (_srv, connect) => {
    const registered = await connect();
    await registered.register(1);
    const idle = await Promise.all(
      Array.from({ length: 150 }, () => connect()),
    );
    try {
      for (const c of idle) {
        assert.deepEqual(await c.next(), {
          event: "error",
          code: "not_registered",
          message: "register within 0.3 s",
          fatal: true,
          version: 0,
        });
        assert.ok(await c.closedByServer(), "then closed");
      }
      // Connected before any of them, so past its own timeout too.
      assert.equal((await registered.request({ cmd: "get_server_info" })).connections, 1);
      assert.equal((await registered.request({ cmd: "ping", nonce: 5 })).event, "pong");
    } finally {
      await Promise.all(idle.map((c) => c.dispose()));
    }
  }, { flags: ["--memory", "--register-timeout", "300ms"] });
});

Deno.test("get_events past --max-reply-bytes answers with the newest events that fit and truncated: true", async () => {
  await withSrv(async (_srv, connect) => {
    const c = await connect();
    await c.register(1);
    const ws = await c.request({ cmd: "create_workspace", name: "budget" });
    await pipeline(c, 200, (i) => ({
      cmd: "update_workspace_meta",
      workspace_id: ws.workspace_id,
      meta_patch: { pad: `${i}`.padEnd(1000, "b") },
    }));
    const newest = ws.version + 200;
    const all = await c.request({ cmd: "get_events", since: 0 });
    assert.equal(all.truncated, true, "older events were left out");
    assert.ok(all.events.length > 10 && all.events.length < 100, `${all.events.length} events`);
    assert.equal(all.events.at(-1).version, newest, "the newest are the ones kept");
    all.events.forEach((e: Json, i: number) =>
      i > 0 && assert.equal(e.version, newest - all.events.length + 1 + i)
    );
    assert.ok(JSON.stringify(all).length <= 64 * 1024);
    const recent = await c.request({ cmd: "get_events", since: newest - 5 });
    assert.equal(recent.truncated, false, "what fits comes whole");
    assert.equal(recent.events.length, 5);
  }, { flags: ["--memory", "--max-reply-bytes", "65536"] });
});
