// Schema migration (docs/PROTOCOL.md §8): a store written by the release that
// wrote schema 1 (checkpoints + batches; tests/fixtures/schema1, see the
// README there) opens with today's srv, is migrated in one transaction, and
// keeps every workspace, tab, block, meta and the event history.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DurableEventLog } from "../../srv/server/durable_event_log.ts";
import { evolve } from "../../srv/core/evolve.ts";
import { initialState, snapshotOf, type State } from "../../srv/core/state.ts";
import { parseJson } from "../../srv/core/codec.ts";
import { type ReducerEvent } from "../../srv/core/decide.ts";
import { STORE_SCHEMA_VERSION, StoreError } from "../../srv/server/_store_schema.ts";
import { treeOf } from "../_fixtures.ts";
import { type Json, runSrv, startSrv, TestClient } from "../_harness.ts";

const FIXTURE = new URL("../fixtures/schema1/srv.db", import.meta.url);
const EXPECTED = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/schema1.snapshot.json", import.meta.url)),
);

/** A copy of the fixture store in a fresh data dir. */
async function schema1Copy(): Promise<{ dir: string; data: string }> {
  const dir = await Deno.makeTempDir({ prefix: "srv-migrate-" });
  const data = `${dir}/data`;
  await Deno.mkdir(data, { mode: 0o700 });
  await Deno.copyFile(FIXTURE, `${data}/srv.db`);
  return { dir, data };
}

function userVersion(path: string): number {
  const db = new DatabaseSync(path);
  try {
    return (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
  } finally {
    db.close();
  }
}

Deno.test("the schema-1 fixture is what its README says: a checkpoint and events after it", () => {
  const db = new DatabaseSync(FIXTURE.pathname, { readOnly: true });
  try {
    assert.equal(userVersion(FIXTURE.pathname), 1);
    const cp = db.prepare("SELECT version FROM checkpoints").get() as { version: number };
    const last = db.prepare("SELECT max(last_version) AS v FROM batches").get() as { v: number };
    assert.ok(cp.version > 0 && cp.version < last.v, `checkpoint v${cp.version}, last v${last.v}`);
  } finally {
    db.close();
  }
});

Deno.test("a schema-1 store migrates to tables and keeps its tree, meta and history", async () => {
  const { dir, data } = await schema1Copy();
  try {
    const { log, recovery } = await DurableEventLog.open({ dataDir: data });
    assert.equal(recovery.migratedFrom, 1);
    assert.equal(recovery.tablesVersion, 20, "the tables start from the old checkpoint");
    assert.ok(recovery.replayed > 0, "and the events after it are replayed");
    assert.deepEqual(
      treeOf(snapshotOf(recovery.state) as unknown as Record<string, unknown>),
      treeOf(EXPECTED),
    );
    assert.equal(recovery.state.eventVersion, EXPECTED.version);
    assert.equal(recovery.state.nextClientId, 2);
    const history = log.eventsSince(0);
    assert.equal(history.length, 33);
    assert.deepEqual(history.map((e) => e.version), Array.from({ length: 33 }, (_, i) => i + 1));
    let folded: State = initialState();
    for (const e of history) folded = evolve(folded, parseJson(e.json) as ReducerEvent);
    assert.deepEqual(
      treeOf(snapshotOf(folded) as unknown as Record<string, unknown>),
      treeOf(EXPECTED),
      "the history still folds to the tree",
    );
    log.close(recovery.state);

    // Migrated for good: schema 2, no checkpoints, nothing left to replay.
    const path = `${data}/srv.db`;
    assert.equal(userVersion(path), STORE_SCHEMA_VERSION);
    const db = new DatabaseSync(path);
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
      .all().map((r) => r.name);
    db.close();
    assert.deepEqual(tables, ["batches", "blocks", "scalars", "tabs", "workspaces"]);
    const again = await DurableEventLog.open({ dataDir: data });
    assert.equal(again.recovery.replayed, 0);
    assert.equal(again.recovery.migratedFrom, STORE_SCHEMA_VERSION);
    assert.deepEqual(
      treeOf(snapshotOf(again.recovery.state) as unknown as Record<string, unknown>),
      treeOf(EXPECTED),
    );
    again.log.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a real srv serves a migrated schema-1 store: same snapshot, same history", async () => {
  const { dir, data } = await schema1Copy();
  try {
    const srv = await startSrv({ dir, flags: ["--data-dir", data] });
    const c = await TestClient.connect(srv.socket);
    await c.register(9);
    const snap = await c.request({ cmd: "get_srv_snapshot" });
    assert.deepEqual(treeOf(snap), treeOf(EXPECTED));
    const events = (await c.request({ cmd: "get_events", since: 0 })).events as Json[];
    assert.equal(events.filter((e) => e.version <= EXPECTED.version).length, 33);
    await c.dispose();
    assert.equal(await srv.stop(), 0);
    assert.match(srv.stderr(), /migrated from schema 1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a migration that fails leaves the schema-1 store as it was", async () => {
  const { dir, data } = await schema1Copy();
  try {
    const path = `${data}/srv.db`;
    const db = new DatabaseSync(path);
    db.exec("UPDATE checkpoints SET state = '{\"workspaces\": [' ");
    db.close();
    await assert.rejects(DurableEventLog.open({ dataDir: data }), (e: unknown) => {
      assert.ok(e instanceof StoreError);
      assert.match(e.message, new RegExp(`${path} is corrupt: checkpoint v20 cannot be read`));
      return true;
    });
    assert.equal(userVersion(path), 1, "still schema 1");
    const after = new DatabaseSync(path);
    const names = after.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all()
      .map((r) => r.name).sort();
    after.close();
    assert.deepEqual(names, ["batches", "checkpoints", "meta"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a store from a newer schema is refused: exit 5, both versions named", async () => {
  const { dir, data } = await schema1Copy();
  try {
    const path = `${data}/srv.db`;
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA user_version = ${STORE_SCHEMA_VERSION + 1}`);
    db.close();
    const r = await runSrv(["serve", "--socket", `${dir}/s.sock`, "--data-dir", data]);
    assert.equal(r.code, 5);
    assert.match(
      r.stderr,
      new RegExp(
        `schema version ${
          STORE_SCHEMA_VERSION + 1
        }, newer than this srv supports \\(${STORE_SCHEMA_VERSION}\\)`,
      ),
    );
    assert.equal(userVersion(path), STORE_SCHEMA_VERSION + 1, "left untouched");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
