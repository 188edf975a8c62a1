// Integration: durable state with a real srv process, a real socket and a
// real data dir. Restarts (graceful and SIGKILL), history from disk, and the
// bad-store cases that must stop srv with a message naming the path.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { evolve } from "../../srv/core/evolve.ts";
import { initialState, snapshotOf, type State } from "../../srv/core/state.ts";
import { isLogged } from "../../srv/core/protocol.ts";
import { type ReducerEvent } from "../../srv/core/decide.ts";
import { type Json, runSrv, startSrv, TestClient } from "../_harness.ts";
import { TREE_KEYS } from "../_fixtures.ts";

async function withDataDir(fn: (dir: string, data: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "srv-durable-" });
  try {
    await fn(dir, `${dir}/data`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function durable(dir: string, data: string, extra: string[] = []) {
  return startSrv({ dir, flags: ["--data-dir", data, ...extra] });
}

Deno.test("SIGTERM and restart: same tree, versions continue, history from disk", async () => {
  await withDataDir(async (dir, data) => {
    const first = await durable(dir, data);
    const a = await TestClient.connect(first.socket);
    await a.register(100, "host");
    const ws = await a.request({ cmd: "create_workspace", name: "main" });
    const [tab] = [
      await a.request({ cmd: "create_tab", workspace_id: ws.workspace_id, name: "shell" }),
    ];
    await a.next(); // active_tab_changed
    await a.request({ cmd: "create_block", tab_id: tab.tab_id, meta: { kind: "term" } });
    await a.request({
      cmd: "update_workspace_meta",
      workspace_id: ws.workspace_id,
      meta_patch: { color: "red" },
    });
    const before = await a.request({ cmd: "get_srv_snapshot" });
    const history = (await a.request({ cmd: "get_events", since: 0 })).events;
    assert.equal((await a.request({ cmd: "get_server_info" })).store, `${data}/srv.db`);
    await a.dispose();
    assert.equal(await first.stop("SIGTERM"), 0);

    const second = await durable(dir, data);
    assert.notEqual(second.instance, first.instance);
    const b = await TestClient.connect(second.socket);
    const registered = await b.register(100, "host");
    assert.deepEqual(registered.map((e) => e.event), [
      "process_spawned",
      "lifecycle_phase_changed",
      "registered",
    ]);
    assert.ok(
      registered[0].version > before.version,
      "the next event's version is above every earlier one",
    );
    const after = await b.request({ cmd: "get_srv_snapshot" });
    for (const key of TREE_KEYS) assert.deepEqual(after[key], before[key], key);
    const replay = (await b.request({ cmd: "get_events", since: 0 })).events;
    assert.deepEqual(
      replay.slice(0, history.length),
      history,
      "history from before the restart, unchanged",
    );
    assert.ok(replay.slice(history.length).every((e: Json) => e.version > before.version));
    await b.dispose();
    assert.equal(await second.stop(), 0);
  });
});

Deno.test("SIGKILL mid-flood: everything any client received is on disk, and state is the fold", async () => {
  await withDataDir(async (dir, data) => {
    const srv = await durable(dir, data);
    const writer = await TestClient.connect(srv.socket);
    const observer = await TestClient.connect(srv.socket);
    await writer.register(1, "tool");
    await observer.take(3);
    const ws = await writer.request({ cmd: "create_workspace", name: "flood" });
    await observer.next();
    // The writer pipelines domain commands without waiting; the observer
    // records every line it receives until the kill.
    let flooding = true;
    const flood = (async () => {
      let i = 0;
      while (flooding) {
        const batch = [];
        for (let j = 0; j < 50; j++, i++) {
          batch.push(
            i % 4 === 0
              ? { cmd: "create_tab", workspace_id: ws.workspace_id, name: `t${i}` }
              : i % 4 === 1
              ? { cmd: "update_workspace_meta", workspace_id: ws.workspace_id, meta_patch: { i } }
              : i % 4 === 2
              ? { cmd: "create_tab", workspace_id: "missing", name: "x" } // an unlogged error
              : { cmd: "ping", nonce: i },
          );
        }
        try {
          await writer.writeRaw(
            new TextEncoder().encode(batch.map((c) => JSON.stringify(c)).join("\n") + "\n"),
          );
        } catch {
          return; // the server is gone
        }
      }
    })();
    const received: string[] = [];
    while (received.length < 3000) received.push(await observer.nextLine());
    srv.child.kill("SIGKILL");
    await srv.exited();
    flooding = false;
    await flood;
    // Whatever was already on the way to the observer counts too.
    while (true) {
      try {
        received.push(await observer.nextLine(2000));
      } catch {
        break;
      }
    }
    await writer.dispose();
    await observer.dispose();

    const again = await durable(dir, data);
    const c = await TestClient.connect(again.socket);
    await c.register(2);
    const stored: string[] = (await c.request({ cmd: "get_events", since: 0 })).events.map((
      e: Json,
    ) => JSON.stringify(e));
    const storedByVersion = new Map(stored.map((line) => [JSON.parse(line).version, line]));
    let checked = 0;
    for (const line of received) {
      const e = JSON.parse(line);
      if (!isLogged(e)) continue;
      assert.equal(
        storedByVersion.get(e.version),
        line,
        `event v${e.version} was broadcast but not stored`,
      );
      checked++;
    }
    assert.ok(checked > 1000, `checked ${checked} events`);
    const lastSeen = JSON.parse(received.at(-1)!).version;
    const snap = await c.request({ cmd: "get_srv_snapshot" });
    assert.ok(
      snap.version > lastSeen,
      "versions continue above everything broadcast before the crash",
    );
    let state: State = initialState();
    for (const line of stored) state = evolve(state, JSON.parse(line) as ReducerEvent);
    const view = snapshotOf(state) as unknown as Record<string, unknown>;
    for (const key of TREE_KEYS) assert.deepEqual(snap[key], view[key], key);
    await c.dispose();
    assert.equal(await again.stop(), 0);
  });
});

Deno.test("a second srv on the same data dir exits 5 naming the dir", async () => {
  await withDataDir(async (dir, data) => {
    const first = await durable(dir, data);
    const second = await runSrv([
      "serve",
      "--socket",
      `${dir}/other.sock`,
      "--data-dir",
      data,
      "--lock-wait",
      "0",
    ]);
    assert.equal(second.code, 5);
    assert.match(second.stderr, new RegExp(`another srv is using the data dir ${data}`));
    assert.equal(await first.stop(), 0);
  });
});

Deno.test("a non-SQLite file at the store path exits 5 naming it, and is left alone", async () => {
  await withDataDir(async (dir, data) => {
    await Deno.mkdir(data);
    await Deno.writeTextFile(`${data}/srv.db`, "not a database\n".repeat(500));
    const r = await runSrv(["serve", "--socket", `${dir}/s.sock`, "--data-dir", data]);
    assert.equal(r.code, 5);
    assert.match(r.stderr, new RegExp(`${data}/srv.db is not an SQLite database`));
    assert.equal(r.stdout, "", "never ready");
    assert.equal(await Deno.readTextFile(`${data}/srv.db`), "not a database\n".repeat(500));
    await assert.rejects(Deno.lstat(`${dir}/s.sock`), Deno.errors.NotFound, "socket released");
  });
});

Deno.test("an unreadable store exits 5 naming it", async () => {
  await withDataDir(async (dir, data) => {
    await Deno.mkdir(data);
    // Root reads any file whatever its mode, so make the path unopenable
    // as a database in a way that holds for root too: a directory.
    await Deno.mkdir(`${data}/srv.db`);
    const r = await runSrv(["serve", "--socket", `${dir}/s.sock`, "--data-dir", data]);
    assert.equal(r.code, 5);
    assert.match(r.stderr, new RegExp(`${data}/srv.db`));
  });
});

Deno.test("a store from a newer srv exits 5 and is not touched", async () => {
  await withDataDir(async (dir, data) => {
    await Deno.mkdir(data);
    const db = new DatabaseSync(`${data}/srv.db`);
    db.exec("PRAGMA application_id = 1936881201; PRAGMA user_version = 7; CREATE TABLE future (x)");
    db.close();
    const r = await runSrv(["serve", "--socket", `${dir}/s.sock`, "--data-dir", data]);
    assert.equal(r.code, 5);
    assert.match(r.stderr, /schema version 7, newer than this srv supports/);
    const after = new DatabaseSync(`${data}/srv.db`);
    assert.equal(
      (after.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      7,
    );
    after.close();
  });
});

Deno.test("disk full while running: srv exits 5 and never broadcast what it could not store", async () => {
  await withDataDir(async (dir, data) => {
    const srv = await startSrv({
      dir,
      flags: ["--data-dir", data],
      env: { SRV_STORE_MAX_PAGES: "40" },
    });
    const a = await TestClient.connect(srv.socket);
    await a.register(1);
    const pad = "p".repeat(1000); // under the 1 KiB name cap
    const received: string[] = [];
    let closed = false;
    for (let i = 0; i < 500 && !closed; i++) {
      await a.send({ cmd: "create_workspace", name: `${pad}${i}` }).catch(() => closed = true);
      try {
        received.push(await a.nextLine());
      } catch {
        closed = true;
      }
    }
    assert.ok(closed, "the server closed the connection when the store filled up");
    assert.equal(await srv.exited(), 5);
    assert.match(srv.stderr(), new RegExp(`${data}/srv.db`));
    assert.match(srv.stderr(), /full/);
    await a.dispose();

    const again = await durable(dir, data);
    const c = await TestClient.connect(again.socket);
    await c.register(2);
    const stored = new Set(
      (await c.request({ cmd: "get_events", since: 0 })).events.map((e: Json) => JSON.stringify(e)),
    );
    const created = received.filter((l) => l.includes('"workspace_created"'));
    assert.ok(created.length > 3, `${created.length} workspaces created before the disk filled`);
    for (const line of created) assert.ok(stored.has(line), "broadcast implies stored");
    await c.dispose();
    assert.equal(await again.stop(), 0);
  });
});

Deno.test("a catch-up larger than --soft-queue-bytes is delivered whole, from disk", async () => {
  await withDataDir(async (dir, data) => {
    const srv = await durable(dir, data, ["--soft-queue-bytes", "65536"]);
    const a = await TestClient.connect(srv.socket);
    await a.register(1);
    for (let round = 0; round < 20; round++) {
      const batch = Array.from(
        { length: 250 },
        (_, i) => JSON.stringify({ cmd: "ping", nonce: round * 250 + i }),
      );
      await a.writeRaw(new TextEncoder().encode(batch.join("\n") + "\n"));
      await a.take(250);
    }
    const list = await a.request({ cmd: "get_events", since: 0 });
    assert.equal(list.events.length, 5003, "every event, past the 4096-event ring");
    assert.equal(list.truncated, false);
    assert.ok(JSON.stringify(list).length > 65536, "the reply alone exceeds the queue bound");
    assert.deepEqual(
      (await a.request({ cmd: "ping", nonce: 1 })).event,
      "pong",
      "and the reader was not evicted",
    );
    await a.dispose();
    assert.equal(await srv.stop(), 0);
  });
});
