// An observer's get_srv_snapshot (docs/PROTOCOL.md §10, §11.1) under the
// shared budget of unread replies (srv/server/server.ts, #observerSnapshot),
// in-process so what observers that never read absorb is exactly the
// pipe's capacity: the line of one state version is shared (counted once),
// and a connection already holding its floor is refused a new version's
// snapshot once the budget is spent.
import assert from "node:assert/strict";
import type { Json, TestClient } from "../_harness.ts";
import { withServer } from "../_in_process.ts";
import type { MemoryConnection } from "../../srv/transport/memory.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MiB = 1024 * 1024;
const PAD = "x".repeat(60 * 1024);

function flags(hard: number): string[] {
  return [
    "--memory",
    "--max-queue-bytes",
    String(hard),
    "--soft-queue-bytes",
    String(hard),
    "--soft-queue-time",
    "60",
  ];
}

/** Reads events until one satisfies `pred`. */
async function until(c: TestClient, pred: (e: Json) => boolean): Promise<Json> {
  while (true) {
    const e = await c.next();
    if (pred(e)) return e;
  }
}

/** A tree of `blocks` blocks of 60 KiB meta each; returns the tab's id. */
async function tree(c: TestClient, blocks: number): Promise<string> {
  await c.register(1);
  await c.send({ cmd: "create_workspace", name: "w" });
  const ws = (await until(c, (e) => e.event === "workspace_created")).workspace_id;
  await c.send({ cmd: "create_tab", workspace_id: ws, name: "t" });
  const tab = (await until(c, (e) => e.event === "tab_created")).tab_id;
  for (let i = 0; i < blocks; i++) {
    await c.send({ cmd: "create_block", tab_id: tab, meta: { p: PAD + i } });
    await until(c, (e) => e.event === "block_created");
  }
  return ws;
}

/** An observer on a 1 KiB pipe: registers, asks for a snapshot, reads only its `registered`. */
async function observer(
  raw: (capacity: number) => MemoryConnection,
  pid: number,
): Promise<MemoryConnection> {
  const conn = raw(1024);
  const register = { cmd: "register", kind: "tool", pid, version: "o", observe: true };
  await conn.write(encoder.encode(JSON.stringify(register) + '\n{"cmd":"get_srv_snapshot"}\n'));
  // Both lines were handled in one turn: once `registered` arrives, the snapshot is queued.
  const first = decoder.decode((await conn.read())!);
  assert.ok(first.startsWith('{"event":"registered"'), first);
  return conn;
}

/** Reads `conn` until a whole line starting with `prefix`; returns it parsed. */
async function lineOf(conn: MemoryConnection, prefix: string, rest = ""): Promise<Json> {
  while (true) {
    let lf: number;
    while ((lf = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, lf);
      rest = rest.slice(lf + 1);
      if (line.startsWith(prefix)) return JSON.parse(line);
    }
    const chunk = await conn.read();
    if (chunk === null) throw new Error(`stream ended before ${prefix}`);
    rest += decoder.decode(chunk, { stream: true });
  }
}

Deno.test("observers' snapshots of one version count once in the reply budget", async () => {
  await withServer(async (srv, connect) => {
    const c = await connect();
    const ws = await tree(c, 7); // a snapshot of about 430 KB
    for (let i = 0; i < 6; i++) {
      await c.send({ cmd: "update_workspace_meta", workspace_id: ws, meta_patch: { p: PAD + i } });
      await until(c, (e) => e.event === "workspace_meta_updated");
    }
    // 4 observers hold the same ~430 KB line unread: 430 KB of srv's memory,
    // not 1.7 MB. Counted once, a client's ~850 KB catch-up still fits the
    // 2 MiB budget whole; counted per observer, only its 512 KiB floor would.
    const observers = [];
    for (let i = 0; i < 4; i++) observers.push(await observer(srv.rawConnect, 500 + i));
    const list = await c.request({ cmd: "get_events", since: 0 });
    assert.equal(list.event, "event_list");
    assert.equal(list.truncated, false, `${list.events.length} events`);
    for (const o of observers) {
      const snap = await lineOf(o, '{"event":"srv_snapshot"');
      assert.equal(snap.version, list.version);
    }
  }, { flags: flags(2 * MiB) });
});

Deno.test("a spent budget: an observer holding a snapshot is refused the next version's; one holding nothing is not", async () => {
  await withServer(async (srv, connect) => {
    const c = await connect();
    const ws = await tree(c, 10); // a snapshot of about 615 KB, more than half the budget
    const o1 = await observer(srv.rawConnect, 501);
    // A new version (a small broadcast), so the next snapshot is a new line.
    await c.send({ cmd: "rename_workspace", workspace_id: ws, name: "w2" });
    const renamed = await until(c, (e) => e.event === "workspace_renamed");
    await o1.write(encoder.encode('{"cmd":"get_srv_snapshot"}\n'));
    // o1 holds 615 KB (past its 256 KiB floor); another 615 KB would pass 1 MiB.
    await c.request({ cmd: "get_server_info" }); // o1's command is handled by now
    const o2 = await observer(srv.rawConnect, 502); // holds nothing: gets it whole
    let rest = "";
    const lines: Json[] = [];
    while (lines.length < 3) {
      const chunk = await o1.read();
      assert.ok(chunk !== null, "o1 was evicted: it held two snapshots, past the hard limit");
      rest += decoder.decode(chunk, { stream: true });
      let lf: number;
      while ((lf = rest.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(rest.slice(0, lf)));
        rest = rest.slice(lf + 1);
      }
    }
    assert.deepEqual(lines.map((e) => e.event), ["srv_snapshot", "workspace_renamed", "error"]);
    const refusal = lines[2];
    assert.equal(refusal.code, "invalid_command");
    assert.equal(refusal.fatal, false);
    assert.equal(refusal.version, 0);
    assert.match(
      refusal.message,
      /^snapshot refused: \d+ bytes of replies are unread by clients; read yours and ask again$/,
    );
    const snap2 = await lineOf(o2, '{"event":"srv_snapshot"');
    assert.equal(snap2.version, renamed.version);
    // o1 has read its old snapshot: asked again, it gets the line o2 holds (shared, counted).
    await o1.write(encoder.encode('{"cmd":"get_srv_snapshot"}\n'));
    const again = await lineOf(o1, '{"event":"srv_snapshot"', rest);
    assert.equal(again.version, snap2.version);
  }, { flags: flags(MiB) });
});
