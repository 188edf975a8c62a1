// Store unit tests: docs/PROTOCOL.md §8. A real SQLite file in a temp dir, driven
// the way the server drives it: append each event, commit once per turn.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  DurableEventLog,
  PRUNE_CHUNK_EVENTS,
  type StoreOptions,
} from "../../srv/server/durable_event_log.ts";
import { encodeEvent } from "../../srv/core/codec.ts";
import { isLogged, type ReducerCommand } from "../../srv/core/protocol.ts";
import { type State } from "../../srv/core/state.ts";
import { STORE_SCHEMA_VERSION, StoreError } from "../../srv/server/_store_schema.ts";
import { Driver } from "../_fixtures.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "srv-store-" });
}

/** Runs commands through a Driver and the store, one commit per command. */
function drive(log: DurableEventLog, d: Driver, commands: ReducerCommand[]): void {
  for (const command of commands) {
    for (const event of d.run(command, 1)) {
      if (isLogged(event)) log.append({ version: event.version, json: encodeEvent(event) });
    }
    log.commit(d.state);
  }
}

/** The i-th command of a layout-building workload, chosen against the current state. */
function nextCommand(state: State, i: number): ReducerCommand {
  const ws = [...state.workspaces.keys()];
  const tabs = [...state.tabs.keys()];
  if (i % 10 === 0 || ws.length === 0) return { cmd: "create_workspace", name: `w${i}` };
  if (i % 3 === 0) return { cmd: "create_tab", workspace_id: ws[i % ws.length], name: `t${i}` };
  if (tabs.length > 0 && i % 3 === 1) {
    return { cmd: "create_block", tab_id: tabs[i % tabs.length], meta: { i } };
  }
  return { cmd: "ping", nonce: i };
}

function driveWorkload(log: DurableEventLog, d: Driver, n: number): void {
  for (let i = 0; i < n; i++) drive(log, d, [nextCommand(d.state, i)]);
}

async function open(options: StoreOptions) {
  return await DurableEventLog.open(options);
}

Deno.test("round trip: events and the highest version survive close and reopen", async () => {
  const dataDir = await tempDir();
  try {
    const first = await open({ dataDir });
    const d = new Driver();
    drive(first.log, d, [
      { cmd: "register", kind: "host", pid: 1, version: "1" },
      { cmd: "create_workspace", name: "main" },
      { cmd: "ping", nonce: 18446744073709551615n },
    ]);
    const before = first.log.eventsSince(0);
    // An unlogged event (an error) takes the last version: it must survive too.
    drive(first.log, d, [{ cmd: "create_tab", workspace_id: "nope", name: "x" }]);
    assert.equal(d.state.eventVersion, 6);
    first.log.close();

    const second = await open({ dataDir });
    assert.deepEqual(second.log.eventsSince(0), before);
    assert.equal(before.at(-1)?.json, '{"event":"pong","nonce":18446744073709551615,"version":5}');
    assert.equal(
      second.recovery.state.eventVersion,
      6,
      "versions continue above the highest issued",
    );
    assert.equal(second.recovery.state.lifecycle, "starting");
    assert.equal(second.recovery.state.processes.size, 0, "no process is running after a restart");
    assert.equal(second.recovery.state.workspaces.size, 1);
    assert.deepEqual(second.log.stats(), { oldest: 1, newest: 5, retained: 5 });
    second.log.close();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("the tables after a crash hold the state: nothing to replay, same tree", async () => {
  const dataDir = await tempDir();
  try {
    const { log } = await open({ dataDir });
    const d = new Driver();
    driveWorkload(log, d, 600);
    assert.ok(d.state.blocks.size > 50, "the workload builds a real tree");
    log.close(); // no state given: like a crash after the last commit

    const { log: again, recovery } = await open({ dataDir });
    assert.equal(recovery.replayed, 0, "the tables commit with the events");
    assert.equal(recovery.tablesVersion, d.state.eventVersion);
    assert.deepEqual(recovery.state.workspaces, d.state.workspaces);
    assert.deepEqual(recovery.state.tabs, d.state.tabs);
    assert.deepEqual(recovery.state.blocks, d.state.blocks);
    assert.equal(recovery.state.nextClientId, d.state.nextClientId);
    assert.equal(recovery.state.eventVersion, d.state.eventVersion);
    again.close(recovery.state);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("get_events beyond the memory ring is answered from disk, pending events included", async () => {
  const dataDir = await tempDir();
  try {
    const { log } = await open({ dataDir, ringCapacity: 10 });
    const d = new Driver();
    drive(log, d, Array.from({ length: 50 }, (_, i) => ({ cmd: "ping", nonce: i }) as const));
    const all = log.eventsSince(0);
    assert.deepEqual(all.map((e) => e.version), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(log.isTruncated(0), false);
    // Appended but not yet committed (same turn): still visible, still in order.
    log.append({ version: 51, json: '{"event":"pong","nonce":50,"version":51}' });
    assert.deepEqual(log.eventsSince(3).map((e) => e.version).slice(-2), [50, 51]);
    assert.equal(log.eventsSince(3).length, 48);
    assert.deepEqual(log.eventsSince(45).map((e) => e.version), [46, 47, 48, 49, 50, 51]);
    log.close();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("retention prunes the oldest events, at most PRUNE_CHUNK_EVENTS per commit", async () => {
  const dataDir = await tempDir();
  try {
    const { log } = await open({ dataDir, retainEvents: 100, ringCapacity: 10 });
    const d = new Driver();
    drive(log, d, Array.from({ length: 500 }, (_, i) => ({ cmd: "ping", nonce: i }) as const));
    const stats = log.stats();
    assert.deepEqual(stats, { oldest: 401, newest: 500, retained: 100 });
    assert.equal(log.isTruncated(0), true);
    assert.equal(log.isTruncated(stats.oldest! - 1), false);
    assert.equal(log.eventsSince(stats.oldest! - 1).length, stats.retained);
    // Lots of history, then a much lower retention: one turn deletes one
    // chunk, not the whole excess.
    drive(
      log,
      d,
      Array.from({ length: 200 }, (_, i) => ({ cmd: "ping", nonce: i }) as const),
    );
    log.close();
    const many = await open({ dataDir, retainEvents: 5000, ringCapacity: 10 });
    drive(
      many.log,
      d,
      Array.from({ length: 5000 }, (_, i) => ({ cmd: "ping", nonce: i }) as const),
    );
    const before = many.log.stats().retained;
    assert.ok(before >= 5000 && before <= 5000 + 5000 / 64, `retained ${before}: a little slack`);
    many.log.close();
    const low = await open({ dataDir, retainEvents: 100, ringCapacity: 10 });
    drive(low.log, d, [{ cmd: "ping", nonce: 1 }]);
    assert.equal(low.log.stats().retained, before + 1 - PRUNE_CHUNK_EVENTS);
    for (let i = 0; i < 10; i++) drive(low.log, d, [{ cmd: "ping", nonce: 1 }]);
    assert.equal(low.log.stats().retained, 100, "worked off over later turns");
    low.log.close();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("schema versions: a fresh store is current; a newer one is refused by name", async () => {
  const dataDir = await tempDir();
  try {
    const { log } = await open({ dataDir });
    const path = log.path;
    log.close();
    const db = new DatabaseSync(path);
    assert.equal(
      (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      STORE_SCHEMA_VERSION,
    );
    db.exec(`PRAGMA user_version = ${STORE_SCHEMA_VERSION + 98}`);
    db.close();
    await assert.rejects(open({ dataDir }), (e: unknown) => {
      assert.ok(e instanceof StoreError);
      assert.match(e.message, new RegExp(`${path}.*schema version ${STORE_SCHEMA_VERSION + 98}`));
      return true;
    });
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a foreign SQLite database, a non-SQLite file and a locked dir are refused by name", async () => {
  const dataDir = await tempDir();
  try {
    const path = `${dataDir}/srv.db`;
    const foreign = new DatabaseSync(path);
    foreign.exec("CREATE TABLE photos (id INTEGER)");
    foreign.close();
    await assert.rejects(
      open({ dataDir }),
      new RegExp(`${path} is an SQLite database but not an srv store`),
    );
    const photos = new DatabaseSync(path);
    assert.deepEqual(photos.prepare("SELECT name FROM sqlite_schema").all().map((r) => r.name), [
      "photos",
    ], "left untouched");
    photos.close();

    await Deno.writeTextFile(path, "this is not a database, it is a shopping list\n".repeat(200));
    await assert.rejects(open({ dataDir }), new RegExp(`${path} is not an SQLite database`));
    assert.match(await Deno.readTextFile(path), /^this is not a database/, "never overwritten");

    await Deno.remove(path);
    const { log } = await open({ dataDir });
    await assert.rejects(
      open({ dataDir }),
      new RegExp(`another srv is using the data dir ${dataDir}`),
    );
    log.close();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a data dir that is a file is refused by name", async () => {
  const file = await Deno.makeTempFile();
  try {
    await assert.rejects(
      open({ dataDir: file }),
      new RegExp(`the data dir ${file} is not a directory`),
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("a full disk makes commit throw and keeps what was committed before", async () => {
  const dataDir = await tempDir();
  try {
    const { log } = await open({ dataDir, maxPages: 20 });
    const d = new Driver();
    let committed = 0;
    const big = "x".repeat(1000); // under the 1 KiB name cap
    const failure = (() => {
      for (let i = 0; i < 1000; i++) {
        const [e] = d.run({ cmd: "create_workspace", name: `${big}${i}` });
        log.append({ version: e.version, json: encodeEvent(e) });
        try {
          log.commit(d.state);
        } catch (error) {
          return error;
        }
        committed = e.version;
      }
      return null;
    })();
    assert.ok(failure instanceof StoreError, String(failure));
    assert.match(failure.message, /full/);
    assert.match(failure.message, new RegExp(log.path));
    log.close();
    const { log: again, recovery } = await open({ dataDir });
    assert.equal(again.stats().newest, committed, "the failed turn left nothing behind");
    assert.equal(recovery.state.workspaces.size, committed);
    again.close();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("killed after every few turns: each open replays nothing and loses nothing", async () => {
  const dataDir = await tempDir();
  try {
    const d = new Driver();
    for (let cycle = 0; cycle < 5; cycle++) {
      const { log, recovery } = await open({ dataDir });
      assert.equal(recovery.replayed, 0, `cycle ${cycle}`);
      assert.deepEqual(recovery.state.blocks, d.state.blocks, `cycle ${cycle}`);
      assert.deepEqual(recovery.state.tabs, d.state.tabs, `cycle ${cycle}`);
      for (let i = 0; i < 40; i++) drive(log, d, [nextCommand(d.state, cycle * 40 + i)]);
      log.close(); // like SIGKILL: nothing written at close
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("retention below the ring's size is raised to it, so truncated agrees with get_events", async () => {
  const dataDir = await tempDir();
  try {
    const { log } = await open({
      dataDir,
      retainEvents: 10,
      ringCapacity: 20,
    });
    assert.equal(log.retainEvents, 20);
    drive(
      log,
      new Driver(),
      Array.from({ length: 100 }, (_, i) => ({ cmd: "ping", nonce: i }) as const),
    );
    const returned = log.eventsSince(0);
    assert.equal(log.isTruncated(0), returned[0].version > 1);
    assert.equal(log.stats().oldest, returned[0].version);
    assert.equal(log.stats().retained, returned.length);
    log.close();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a turn's batch is written from the ring's bytes: non-ASCII text and turns across ring blocks read back exactly", async () => {
  const dataDir = await tempDir();
  try {
    const first = await open({ dataDir });
    const d = new Driver();
    drive(first.log, d, [{ cmd: "create_workspace", name: "wß" }]);
    drive(first.log, d, [{ cmd: "create_tab", workspace_id: "id-1", name: "t" }]);
    drive(first.log, d, [{ cmd: "create_block", tab_id: "id-2", meta: null }]);
    // Turns of 50 updates, about 300 bytes each: 15 KB a turn, so some turns
    // straddle the ring's 256 KiB storage blocks (written from strings).
    const text = 'é 😀 \u2028 " \\ ';
    let bytes = 0;
    for (let turn = 0; turn < 60; turn++) {
      const commands: ReducerCommand[] = [];
      for (let i = 0; i < 50; i++) {
        commands.push({
          cmd: "update_block_meta",
          block_id: "id-3",
          meta_patch: { title: `${text}${turn}-${i}`, pad: "x".repeat(200) },
        });
      }
      for (const command of commands) {
        for (const event of d.run(command, 1)) {
          const json = encodeEvent(event);
          bytes += new TextEncoder().encode(json).length + 1;
          first.log.append({ version: event.version, json });
        }
      }
      first.log.commit(d.state);
    }
    assert.ok(bytes > 2 * 256 * 1024, "the turns crossed ring blocks");
    const before = first.log.eventsSince(0);
    first.log.close();
    const second = await open({ dataDir, ringCapacity: 1 });
    // With a ring of one, every other event comes from the batches on disk.
    assert.deepEqual(second.log.eventsSince(0).map((e) => e.json), before.map((e) => e.json));
    assert.deepEqual(second.recovery.state.blocks, d.state.blocks);
    second.log.close();
    const db = new DatabaseSync(`${dataDir}/srv.db`);
    const row = db.prepare(
      "SELECT count(*) AS n, sum(typeof(lines) = 'text') AS texts FROM batches",
    ).get() as { n: number; texts: number };
    db.close();
    assert.equal(row.texts, row.n, "every batch's lines are TEXT");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("meta rows of one turn: short ones joined, long ones alone, a block deleted later skipped, all read back", async () => {
  const dataDir = await tempDir();
  try {
    const first = await open({ dataDir });
    const d = new Driver();
    drive(first.log, d, [{ cmd: "create_workspace", name: "w" }]);
    drive(first.log, d, [{ cmd: "create_tab", workspace_id: "id-1", name: "t" }]);
    const blocks: ReducerCommand[] = Array.from({ length: 150 }, (_, i) => ({
      cmd: "create_block",
      tab_id: "id-2",
      meta: { i },
    }));
    drive(first.log, d, blocks);
    const ids = [...d.state.blocks.keys()];
    for (let turn = 0; turn < 3; turn++) {
      // 150 blocks a turn: more than one joined statement's 64 rows, every
      // third meta too long to join, and the last block deleted after its update.
      const commands: ReducerCommand[] = ids.map((block_id, i) => ({
        cmd: "update_block_meta",
        block_id,
        meta_patch: { turn, text: i % 3 === 0 ? "é".repeat(300 + turn) : `${i}` },
      }));
      if (turn === 2) commands.push({ cmd: "delete_block", tab_id: "id-2", block_id: ids.at(-1)! });
      for (const command of commands) {
        for (const event of d.run(command, 1)) {
          if (isLogged(event)) {
            first.log.append({ version: event.version, json: encodeEvent(event) });
          }
        }
      }
      first.log.commit(d.state);
    }
    assert.equal(d.state.blocks.size, 149);
    first.log.close();
    const second = await open({ dataDir });
    assert.equal(second.recovery.replayed, 0);
    assert.deepEqual(second.recovery.state.blocks, d.state.blocks);
    second.log.close();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** Runs commands through a Driver and the store as ONE turn: one commit for all of them. */
function driveTurn(log: DurableEventLog, d: Driver, commands: ReducerCommand[]): void {
  for (const command of commands) {
    for (const event of d.run(command, 1)) {
      if (isLogged(event)) log.append({ version: event.version, json: encodeEvent(event) });
    }
  }
  log.commit(d.state);
}

Deno.test("an id passing between a tab and a block within one turn: committed, and read back the same", async () => {
  // docs/PROTOCOL.md §11.2: a deleted entity's id may be used again, by any
  // kind. Tabs' and blocks' positions once shared one map, and a block
  // taking a just-deleted tab's id in the same turn stopped the server.
  const W = "10000000-0000-4000-8000-000000000001";
  const T1 = "20000000-0000-4000-8000-000000000001";
  const T2 = "20000000-0000-4000-8000-000000000002";
  const B1 = "30000000-0000-4000-8000-000000000001";
  const dataDir = await tempDir();
  try {
    const { log } = await open({ dataDir });
    const d = new Driver();
    driveTurn(log, d, [
      { cmd: "create_workspace", name: "main", workspace_id: W },
      { cmd: "create_tab", workspace_id: W, name: "a", tab_id: T1 },
      { cmd: "create_tab", workspace_id: W, name: "b", tab_id: T2 },
      { cmd: "create_block", tab_id: T2, block_id: B1, meta: { n: 1 } },
    ]);
    driveTurn(log, d, [
      { cmd: "delete_tab", workspace_id: W, tab_id: T1, force: true },
      { cmd: "create_block", tab_id: T2, block_id: T1, meta: { was: "tab" } },
      { cmd: "delete_block", tab_id: T2, block_id: B1 },
      { cmd: "create_tab", workspace_id: W, name: "c", tab_id: B1 },
      { cmd: "create_block", tab_id: B1, meta: { in: "the tab that was a block" } },
    ]);
    assert.equal(d.state.tabs.get(B1)?.name, "c");
    assert.equal(d.state.blocks.get(T1)?.tabId, T2);
    log.close(d.state);

    const { log: again, recovery } = await open({ dataDir });
    assert.deepEqual(recovery.state.workspaces, d.state.workspaces);
    assert.deepEqual(recovery.state.tabs, d.state.tabs);
    assert.deepEqual(recovery.state.blocks, d.state.blocks);
    // And the writer goes on placing children in both after the swap.
    driveTurn(again, d, [
      { cmd: "create_block", tab_id: T2, meta: null },
      { cmd: "move_block", block_id: T1, src_tab_id: T2, dst_tab_id: B1, dst_index: 0 },
    ]);
    again.close(d.state);
    const { log: third, recovery: last } = await open({ dataDir });
    assert.deepEqual(last.state.tabs, d.state.tabs);
    assert.deepEqual(last.state.blocks, d.state.blocks);
    third.close(last.state);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a parent deleted and created again under its id in one turn: restart has its new children only", async () => {
  // docs/PROTOCOL.md §11.2 lets a deleted id be used again; a store that
  // kept the old workspace's tab rows (or the old tab's block rows) under
  // the new parent brought deleted entities back at the next start.
  const W = "10000000-0000-4000-8000-000000000001";
  const T = "20000000-0000-4000-8000-000000000001";
  const T2 = "20000000-0000-4000-8000-000000000002";
  const X = "10000000-0000-4000-8000-000000000002";
  const V = "20000000-0000-4000-8000-000000000003";
  const B = "30000000-0000-4000-8000-000000000001";
  const C = "30000000-0000-4000-8000-000000000002";
  const dataDir = await tempDir();
  try {
    const { log } = await open({ dataDir });
    const d = new Driver();
    driveTurn(log, d, [
      { cmd: "create_workspace", name: "w", workspace_id: W },
      { cmd: "create_tab", workspace_id: W, name: "t", tab_id: T },
      { cmd: "create_block", tab_id: T, block_id: B, meta: { n: 1 } },
      { cmd: "create_workspace", name: "x", workspace_id: X },
      { cmd: "create_tab", workspace_id: X, name: "v", tab_id: V },
      { cmd: "create_block", tab_id: V, block_id: C, meta: { n: 2 } },
    ]);
    driveTurn(log, d, [
      // A tab deleted and made again, without its block.
      { cmd: "delete_tab", workspace_id: X, tab_id: V, force: true },
      { cmd: "create_tab", workspace_id: X, name: "v again", tab_id: V },
      // The workspace deleted and made again, with one new tab.
      { cmd: "delete_workspace", workspace_id: W, force: true },
      { cmd: "create_workspace", name: "w again", workspace_id: W },
      { cmd: "create_tab", workspace_id: W, name: "t2", tab_id: T2 },
    ]);
    assert.deepEqual(d.state.workspaces.get(W)?.tabIds, [T2]);
    assert.equal(d.state.tabs.has(T), false);
    assert.equal(d.state.blocks.has(B), false);
    assert.deepEqual(d.state.tabs.get(V)?.blockIds, []);
    log.close(d.state);

    const { log: again, recovery } = await open({ dataDir });
    assert.deepEqual(recovery.state.workspaces, d.state.workspaces);
    assert.deepEqual(recovery.state.tabs, d.state.tabs);
    assert.deepEqual(recovery.state.blocks, d.state.blocks);
    again.close(recovery.state);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
