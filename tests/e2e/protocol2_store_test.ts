// Protocol 2 batches (docs/PROTOCOL.md §11.3) against a real store: a batch
// is one transaction, so a full disk mid-batch, a SIGKILL right after one
// and a restart leave all of it or none; a condition older than what a
// restarted srv knows is refused, never wrongly accepted.
import assert from "node:assert/strict";
import { type Json, startSrv, TestClient } from "../_harness.ts";

const OBSERVE = { cmd: "register", kind: "tool", pid: 7, version: "o", observe: true };

async function withDataDir(fn: (dir: string, data: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "srv-p2store-" });
  try {
    await fn(dir, `${dir}/data`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const uuid = (n: number, kind = 1) =>
  `${kind}0000000-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;

/** Each stored batch is whole: every version from its first event to its batch_end. */
function assertBatchesWhole(events: Json[]): void {
  const versions = new Set(events.map((e) => e.version));
  assert.ok(events.some((e) => e.batch_end !== undefined), "the store keeps batch_end");
  for (const e of events) {
    if (e.batch_end === undefined) continue;
    for (let v = e.version; v <= e.batch_end; v++) {
      assert.ok(versions.has(v), `batch ending at ${e.batch_end}: version ${v} stored`);
    }
  }
}

Deno.test("disk full mid-batch: srv exits 5; the store holds whole batches only, and every one broadcast", async () => {
  await withDataDir(async (dir, data) => {
    const srv = await startSrv({
      dir,
      flags: ["--data-dir", data],
      env: { SRV_STORE_MAX_PAGES: "40" },
    });
    const observer = await TestClient.connect(srv.socket);
    assert.equal((await observer.request(OBSERVE)).observe, true);
    const a = await TestClient.connect(srv.socket);
    await a.register(1);
    const pad = "p".repeat(1000);
    let closed = false;
    let sent = 0;
    for (let i = 0; i < 200 && !closed; i++) {
      const commands = Array.from({ length: 5 }, (_, j) => ({
        cmd: "create_workspace",
        name: `${pad}${i}.${j}`,
        workspace_id: uuid(i * 5 + j),
      }));
      try {
        await a.send({ cmd: "batch", commands });
        sent++;
        await a.take(5);
      } catch {
        closed = true;
      }
    }
    assert.ok(closed, "the server closed the connection when the store filled up");
    assert.equal(await srv.exited(), 5);
    assert.match(srv.stderr(), new RegExp(`${data}/srv.db`));
    assert.match(srv.stderr(), /full/);
    const observed = [...observer.buffered].map((l) => JSON.parse(l));
    await Promise.all([a.dispose(), observer.dispose()]);

    const again = await startSrv({ dir, flags: ["--data-dir", data] });
    const c = await TestClient.connect(again.socket);
    assert.equal((await c.request(OBSERVE)).observe, true);
    const stored: Json[] = (await c.request({ cmd: "get_events", since: 0 })).events;
    const snapshot = await c.request({ cmd: "get_srv_snapshot" });
    await c.dispose();
    assert.equal(await again.stop(), 0);

    assertBatchesWhole(stored);
    const created = stored.filter((e) => e.event === "workspace_created");
    assert.ok(created.length >= 10, `${created.length} workspaces stored before the disk filled`);
    assert.equal(created.length % 5, 0, "whole batches of 5");
    assert.ok(created.length < sent * 5, "the last batch sent was not stored");
    assert.equal(snapshot.workspaces.length, created.length, "the tree is what the store holds");
    assert.equal(snapshot.version, stored.at(-1).version, "and so is the version");
    // Broadcast implies stored: what the observer saw is a prefix of the store.
    const storedLines = new Set(stored.map((e) => JSON.stringify(e)));
    for (const e of observed) assert.ok(storedLines.has(JSON.stringify(e)), `${e.version} stored`);
    assert.ok(observed.length > 0);
  });
});

Deno.test("SIGKILL right after a batch: on restart all of it is there; one in flight is all or none", async () => {
  await withDataDir(async (dir, data) => {
    const first = await startSrv({ dir, flags: ["--data-dir", data] });
    const a = await TestClient.connect(first.socket);
    await a.register(1);
    const commands = (from: number) =>
      Array.from({ length: 300 }, (_, i) => ({
        cmd: "create_workspace",
        name: `w${from + i}`,
        workspace_id: uuid(from + i),
      }));
    await a.send({ cmd: "batch", commands: commands(0) });
    const seen = await a.take(300);
    // A second batch, and the kill at once: it may or may not have committed.
    await a.send({ cmd: "batch", commands: commands(300) });
    assert.notEqual(await first.stop("SIGKILL"), 0);
    await a.dispose();

    const second = await startSrv({ dir, flags: ["--data-dir", data] });
    const c = await TestClient.connect(second.socket);
    assert.equal((await c.request(OBSERVE)).observe, true);
    const stored: Json[] = (await c.request({ cmd: "get_events", since: 0 })).events;
    const snapshot = await c.request({ cmd: "get_srv_snapshot" });
    await c.dispose();
    assert.equal(await second.stop(), 0);
    const storedLines = new Set(stored.map((e) => JSON.stringify(e)));
    for (const e of seen) assert.ok(storedLines.has(JSON.stringify(e)), `${e.version} stored`);
    assertBatchesWhole(stored);
    const count = snapshot.workspaces.length;
    assert.ok(count === 300 || count === 600, `${count} workspaces: all or none of the second`);
  });
});

Deno.test("a condition from before a restart is refused (precondition_failed), one at the restart's version applies", async () => {
  await withDataDir(async (dir, data) => {
    const first = await startSrv({ dir, flags: ["--data-dir", data] });
    const a = await TestClient.connect(first.socket);
    await a.register(1);
    const ws = uuid(1);
    const other = uuid(2);
    await a.send({
      cmd: "batch",
      commands: [
        { cmd: "create_workspace", name: "w", workspace_id: ws },
        { cmd: "create_workspace", name: "o", workspace_id: other },
      ],
    });
    const looked = (await a.take(2))[1].version;
    // Something else changes, so the store's tree is newer than `looked`.
    await a.request({ cmd: "rename_workspace", workspace_id: other, name: "x" });
    await a.dispose();
    assert.equal(await first.stop("SIGTERM"), 0);

    const second = await startSrv({ dir, flags: ["--data-dir", data] });
    const o = await TestClient.connect(second.socket);
    assert.equal((await o.request(OBSERVE)).observe, true);
    const loadedAt = (await o.request({ cmd: "get_srv_snapshot" })).version;
    await o.dispose();
    assert.ok(loadedAt > looked);
    const b = await TestClient.connect(second.socket);
    await b.register(1);
    // ws did not change after `looked`, but the restarted srv cannot know that.
    const rename = { cmd: "rename_workspace", workspace_id: ws, name: "late" };
    const refused = await b.request({
      cmd: "batch",
      commands: [rename],
      if_unchanged_since: looked,
    });
    assert.equal(refused.code, "precondition_failed", JSON.stringify(refused));
    assert.equal(refused.version, 0);
    assert.match(refused.message, new RegExp(`^Batch: workspace ${ws} changed at version \\d+`));
    // The restart's floor is the version its tables were loaded at; from there on it knows.
    const applied = await b.request({
      cmd: "batch",
      commands: [rename],
      if_unchanged_since: loadedAt,
    });
    assert.equal(applied.event, "workspace_renamed");
    await b.dispose();
    assert.equal(await second.stop(), 0);
  });
});
