// Protocol 2 (docs/PROTOCOL.md §11) in the pure core: client-chosen ids, batches
// (all or nothing, batch_end, private errors, conditions) and observers'
// session rules. Each rule of §11 has a test here; the server-level ones
// are in tests/server/protocol2_server_test.ts.
import assert from "node:assert/strict";
import { decodeCommand, encodeEvent } from "../../srv/core/codec.ts";
import { decideBatch } from "../../srv/core/batch.ts";
import { update } from "../../srv/core/reducer.ts";
import type { ReducerEvent } from "../../srv/core/decide.ts";
import type {
  BatchCommand,
  DomainCommand,
  ErrorEvent,
  ReducerCommand,
} from "../../srv/core/protocol.ts";
import { observerAnswer, Session } from "../../srv/core/session.ts";
import {
  CHANGE_GENERATION,
  initialState,
  lastChangeOf,
  snapshotOf,
  type State,
} from "../../srv/core/state.ts";
import { counterIds, Driver } from "../_fixtures.ts";
import { prng, randomCommand } from "../_random_commands.ts";

const W1 = "10000000-0000-4000-8000-000000000001";
const W2 = "10000000-0000-4000-8000-000000000002";
const T1 = "20000000-0000-4000-8000-000000000001";
const T2 = "20000000-0000-4000-8000-000000000002";
const B1 = "30000000-0000-4000-8000-000000000001";

const batch = (commands: DomainCommand[], since?: number): BatchCommand =>
  since === undefined
    ? { cmd: "batch", commands }
    : { cmd: "batch", commands, if_unchanged_since: since };

/** A driver holding W1 (tabs T1, T2) with block B1 in T1, at version 5. */
function seeded(): Driver {
  const d = new Driver();
  d.run({ cmd: "create_workspace", name: "main", workspace_id: W1 });
  d.run({ cmd: "create_tab", workspace_id: W1, name: "a", tab_id: T1 }); // + active_tab_changed
  d.run({ cmd: "create_tab", workspace_id: W1, name: "b", tab_id: T2 });
  d.run({ cmd: "create_block", tab_id: T1, block_id: B1, meta: null });
  assert.equal(d.state.eventVersion, 5);
  return d;
}

function onlyError(events: ReducerEvent[]): ErrorEvent {
  assert.equal(events.length, 1, JSON.stringify(events));
  assert.equal(events[0].event, "error");
  return events[0] as ErrorEvent;
}

// --- §11.2 client-chosen ids -------------------------------------------------

Deno.test("§11.2: a create's id is optional, and a lowercase UUID when given", () => {
  for (
    const line of [
      `{"cmd":"create_workspace","name":"w"}`,
      `{"cmd":"create_workspace","name":"w","workspace_id":null}`,
      `{"cmd":"create_workspace","name":"w","workspace_id":"${W1}"}`,
      `{"cmd":"create_tab","workspace_id":"x","name":"t","tab_id":"${T1}"}`,
      `{"cmd":"create_block","tab_id":"x","block_id":"${B1}"}`,
      // Any version digit: a v7 (time-ordered) or v1 id is a lowercase UUID too.
      `{"cmd":"create_block","tab_id":"x","block_id":"0190f5a2-7c1e-7a3b-9c4d-1e2f3a4b5c6d"}`,
      `{"cmd":"create_block","tab_id":"x","block_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8"}`,
    ]
  ) assert.equal(decodeCommand(line).ok, true, line);
  for (
    const [line, field] of [
      [
        `{"cmd":"create_workspace","name":"w","workspace_id":"${"6F1C" + W1.slice(4)}"}`,
        "workspace_id",
      ],
      [`{"cmd":"create_tab","workspace_id":"x","name":"t","tab_id":"t1"}`, "tab_id"],
      [`{"cmd":"create_block","tab_id":"x","block_id":7}`, "block_id"],
    ]
  ) {
    const r = decodeCommand(line);
    assert.equal(r.ok, false, line);
    assert.equal((r as { field?: string }).field, field);
    assert.match((r as { reason: string }).reason, /lowercase UUID/);
  }
});

Deno.test("§11.2: the given id becomes the entity's; srv mints one without it", () => {
  const d = seeded();
  assert.deepEqual(d.state.workspaces.get(W1)?.tabIds, [T1, T2]);
  assert.deepEqual(d.state.tabs.get(T1)?.blockIds, [B1]);
  const [made] = d.run({ cmd: "create_workspace", name: "x" });
  assert.equal(made.event === "workspace_created" && made.workspace_id, "id-1");
});

Deno.test("§11.2: an id a live entity has is refused, broadcast, naming the kind", () => {
  const d = seeded();
  const cases: [ReducerCommand, string][] = [
    [
      { cmd: "create_workspace", name: "x", workspace_id: W1 },
      `CreateWorkspace: workspace already exists: ${W1}`,
    ],
    [
      { cmd: "create_tab", workspace_id: W1, name: "x", tab_id: T2 },
      `CreateTab: tab already exists: ${T2}`,
    ],
    [{ cmd: "create_block", tab_id: T2, block_id: B1 }, `CreateBlock: block already exists: ${B1}`],
    // One id space: a tab's id cannot name a new block either (the store files them together).
    [{ cmd: "create_block", tab_id: T2, block_id: T1 }, `CreateBlock: tab already exists: ${T1}`],
  ];
  for (const [command, message] of cases) {
    const before = d.state.eventVersion;
    const error = onlyError(d.run(command));
    assert.deepEqual(error, {
      event: "error",
      code: "invalid_command",
      message,
      fatal: false,
      version: before + 1,
    });
  }
  // A deleted entity's id may be used again.
  d.run({ cmd: "delete_block", tab_id: T1, block_id: B1 });
  assert.equal(d.run({ cmd: "create_block", tab_id: T2, block_id: B1 })[0].event, "block_created");
});

// --- §11.3 batch: parsing ------------------------------------------------------

Deno.test("§11.3: a batch parses only with 1..1000 commands that each parse and are domain commands", () => {
  const rename = { cmd: "rename_tab", tab_id: T1, name: "x" };
  const ok = (v: unknown) => decodeCommand(JSON.stringify(v)).ok;
  const reason = (v: unknown) => (decodeCommand(JSON.stringify(v)) as { reason: string }).reason;
  assert.equal(ok({ cmd: "batch", commands: [rename] }), true);
  assert.equal(ok({ cmd: "batch", commands: Array(1000).fill(rename) }), true);
  assert.equal(
    ok({ cmd: "batch", commands: [rename], if_unchanged_since: 18446744073709551615n.toString() }),
    false,
  );
  const big = decodeCommand(
    `{"cmd":"batch","commands":[${
      JSON.stringify(rename)
    }],"if_unchanged_since":18446744073709551615}`,
  );
  assert.equal(
    big.ok && big.command.cmd === "batch" && big.command.if_unchanged_since,
    18446744073709551615n,
  );
  assert.match(reason({ cmd: "batch", commands: [] }), /`commands`.*1 to 1000/);
  assert.match(
    reason({ cmd: "batch", commands: Array(1001).fill(rename) }),
    /`commands`.*1 to 1000/,
  );
  assert.equal(
    reason({ cmd: "batch", commands: [rename, { cmd: "rename_tab", tab_id: T1 }] }),
    "in `commands.1`: missing field `name`",
  );
  assert.match(
    reason({ cmd: "batch", commands: [{ cmd: "create_block", tab_id: T1, block_id: "B" }] }),
    /^in `commands.0`: invalid value for `block_id`: .*lowercase UUID/,
  );
  for (
    const cmd of [
      "ping",
      "register",
      "goodbye",
      "get_events",
      "get_srv_snapshot",
      "get_server_info",
      "batch",
      "report_exit",
    ]
  ) {
    assert.equal(
      reason({ cmd: "batch", commands: [rename, { cmd }] }),
      `invalid value for \`commands.1\`: \`${cmd}\` cannot be in a batch`,
    );
  }
  assert.equal(
    reason({ cmd: "batch", commands: [rename, { cmd: "fly" }] }),
    "in `commands.1`: unknown command `fly`",
  );
});

// --- §11.3 batch: all or nothing ----------------------------------------------

Deno.test("§11.3: a successful batch's events take consecutive versions, each with batch_end", () => {
  const d = seeded();
  const events = d.run(batch([
    { cmd: "create_workspace", name: "two", workspace_id: W2 },
    { cmd: "move_tab", tab_id: T2, src_workspace_id: W1, dst_workspace_id: W2, dst_index: 0 },
    { cmd: "rename_tab", tab_id: T2, name: "moved" },
  ]));
  assert.deepEqual(
    events.map((e) => [e.event, e.version, (e as { batch_end?: number }).batch_end]),
    [
      ["workspace_created", 6, 8],
      ["tab_moved", 7, 8],
      ["tab_renamed", 8, 8],
    ],
  );
  // batch_end comes right before version, the last field (§2).
  assert.deepEqual(Object.keys(events[2]), ["event", "tab_id", "name", "batch_end", "version"]);
  assert.equal(d.state.eventVersion, 8);
  assert.equal(d.state.tabs.get(T2)?.workspaceId, W2);
});

Deno.test("§11.3: commands that change nothing add no events; a batch of only those uses no version", () => {
  const d = seeded();
  const events = d.run(batch([
    { cmd: "rename_tab", tab_id: T1, name: "a" }, // already so
    { cmd: "delete_block", tab_id: T1, block_id: "nothing" },
  ]));
  assert.deepEqual(events, []);
  assert.equal(d.state.eventVersion, 5);
});

Deno.test("§11.3: a failing command fails the batch: a private error naming it, nothing applied", () => {
  const d = seeded();
  const before = snapshotOf(d.state);
  const events = d.run(batch([
    { cmd: "rename_tab", tab_id: T1, name: "renamed" },
    { cmd: "create_workspace", name: "two", workspace_id: W2 },
    { cmd: "delete_tab", workspace_id: W2, tab_id: T1 }, // T1 is not in W2: no-op, not an error
    { cmd: "rename_workspace", workspace_id: "nope", name: "x" },
  ]));
  assert.deepEqual(events, [{
    event: "error",
    code: "invalid_command",
    message:
      "Batch: command 3 (rename_workspace) failed: RenameWorkspace: workspace not found: nope",
    fatal: false,
    index: 3,
    version: 0,
  }]);
  assert.deepEqual(snapshotOf(d.state), before);
  assert.equal(d.state.eventVersion, 5);
  assert.equal(d.state.workspaces.has(W2), false);
});

Deno.test("§11.3: a batch whose events take more than maxBatchBytes is refused whole", () => {
  const d = seeded();
  const commands: DomainCommand[] = [
    { cmd: "rename_tab", tab_id: T1, name: "x" },
    { cmd: "rename_tab", tab_id: T2, name: "y" },
  ];
  const ctx = { registeredPid: 1, newId: () => crypto.randomUUID() };
  const lines = decideBatch(d.state, batch(commands), ctx).map((e) => JSON.stringify(e) + "\n");
  const bytes = lines.join("").length;
  assert.equal(decideBatch(d.state, batch(commands), { ...ctx, maxBatchBytes: bytes }).length, 2);
  const error = onlyError(
    decideBatch(d.state, batch(commands), { ...ctx, maxBatchBytes: bytes - 1 }),
  );
  assert.deepEqual(error, {
    event: "error",
    code: "invalid_command",
    message: `Batch: its events take ${bytes} bytes, more than half of --max-queue-bytes (${
      bytes - 1
    })`,
    fatal: false,
    index: null,
    version: 0,
  });
});

Deno.test("§11.3: a measured batch hands on its events encoded, once, as the server logs them", () => {
  const d = seeded();
  const commands: DomainCommand[] = [
    { cmd: "rename_tab", tab_id: T1, name: "é ✓ 𝄞" },
    { cmd: "update_block_meta", block_id: B1, meta_patch: { n: 1 } },
  ];
  const ctx = { registeredPid: 1, newId: () => crypto.randomUUID(), maxBatchBytes: 1 << 20 };
  const { events, lines } = update(d.state, batch(commands), ctx);
  assert.equal(events.length, 2);
  assert.deepEqual(lines, events.map(encodeEvent));
  // Unmeasured, refused or not a batch: nothing encoded, the caller encodes.
  const { maxBatchBytes: _, ...unbounded } = ctx;
  assert.equal(update(d.state, batch(commands), unbounded).lines, undefined);
  assert.equal(update(d.state, batch(commands), { ...ctx, maxBatchBytes: 1 }).lines, undefined);
  assert.equal(update(d.state, commands[0], ctx).lines, undefined);
});

Deno.test("§11.3: a batch can refer to what it creates, by the ids it chose", () => {
  const d = new Driver();
  const events = d.run(batch([
    { cmd: "create_workspace", name: "w", workspace_id: W1 },
    { cmd: "create_tab", workspace_id: W1, name: "a", tab_id: T1 },
    { cmd: "create_tab", workspace_id: W1, name: "b", tab_id: T2 },
    { cmd: "set_active_tab", workspace_id: W1, tab_id: T2 },
    { cmd: "create_block", tab_id: T2, block_id: B1, meta: { k: 1 } },
  ]));
  assert.equal(events.length, 6);
  assert.equal(d.state.workspaces.get(W1)?.activeTabId, T2);
  assert.deepEqual(d.state.blocks.get(B1), { id: B1, tabId: T2, meta: { k: 1 } });
});

Deno.test("§11.3: the draft never walks the base tree, so a batch costs what it touches", () => {
  // Base maps that refuse to be iterated or copied: `new Map(base)`, the
  // pure evolve's copy, would throw. A 1,000-command batch still succeeds.
  class Sealed<K, V> extends Map<K, V> {
    sealed = false;
    override entries(): MapIterator<[K, V]> {
      if (this.sealed) throw new Error("the base tree was walked");
      return super.entries();
    }
    override [Symbol.iterator](): MapIterator<[K, V]> {
      return this.entries();
    }
    override keys(): MapIterator<K> {
      if (this.sealed) throw new Error("the base tree was walked");
      return super.keys();
    }
    override forEach(): void {
      throw new Error("the base tree was walked");
    }
  }
  const d = seeded();
  const seal = <K, V>(m: ReadonlyMap<K, V>) => {
    const s = new Sealed<K, V>();
    for (const [k, v] of m) s.set(k, v);
    s.sealed = true;
    return s;
  };
  const state: State = {
    ...d.state,
    workspaces: seal(d.state.workspaces),
    tabs: seal(d.state.tabs),
    blocks: seal(d.state.blocks),
    changedAt: seal(d.state.changedAt),
  };
  const commands: DomainCommand[] = Array.from({ length: 1000 }, (_, i) => ({
    cmd: "update_block_meta",
    block_id: B1,
    meta_patch: { i },
  }));
  const events = decideBatch(state, batch(commands), { registeredPid: 1, newId: counterIds() });
  assert.equal(events.length, 1000);
  assert.equal(events.at(-1)?.version, 1005);
  assert.deepEqual(state.blocks.get(B1)?.meta, null, "the base is untouched");
});

// --- §11.3 conditions ------------------------------------------------------------

Deno.test("§11.3: if_unchanged_since conflicts when a named entity changed after V", () => {
  // Each change, then a batch naming the changed entity with V just before it.
  const changes: [string, ReducerCommand, DomainCommand][] = [
    ["workspace renamed", { cmd: "rename_workspace", workspace_id: W1, name: "z" }, {
      cmd: "update_workspace_meta",
      workspace_id: W1,
      meta_patch: {},
    }],
    ["tab re-meta'd", { cmd: "update_tab_meta", tab_id: T2, meta_patch: { a: 1 } }, {
      cmd: "rename_tab",
      tab_id: T2,
      name: "q",
    }],
    ["block moved", {
      cmd: "move_block",
      block_id: B1,
      src_tab_id: T1,
      dst_tab_id: T2,
      dst_index: 0,
    }, {
      cmd: "update_block_meta",
      block_id: B1,
      meta_patch: {},
    }],
    ["tab's children changed", { cmd: "create_block", tab_id: T2 }, {
      cmd: "rename_tab",
      tab_id: T2,
      name: "q",
    }],
    ["workspace's active tab changed", { cmd: "set_active_tab", workspace_id: W1, tab_id: T2 }, {
      cmd: "rename_workspace",
      workspace_id: W1,
      name: "q",
    }],
    ["workspace's order changed", {
      cmd: "reorder_tab",
      workspace_id: W1,
      tab_id: T2,
      new_index: 0,
    }, {
      cmd: "rename_workspace",
      workspace_id: W1,
      name: "q",
    }],
    ["a move's target changed (dst tab)", { cmd: "create_block", tab_id: T2 }, {
      cmd: "move_block",
      block_id: B1,
      src_tab_id: T1,
      dst_tab_id: T2,
      dst_index: 0,
    }],
  ];
  for (const [what, change, named] of changes) {
    const d = seeded();
    const v = d.state.eventVersion;
    d.run(change);
    const before = snapshotOf(d.state);
    const version = d.state.eventVersion;
    const error = onlyError(d.run(batch([named], v)));
    assert.equal(error.code, "precondition_failed", what);
    assert.equal(error.index, null, what);
    assert.equal(error.version, 0, what);
    assert.match(
      error.message,
      new RegExp(`^Batch: (workspace|tab|block) \\S+ changed at version ${v + 1}`),
      what,
    );
    assert.ok(error.message.endsWith(`(after ${v})`), what);
    assert.deepEqual(snapshotOf(d.state), before, what);
    assert.equal(d.state.eventVersion, version, what);
    // With V at the change, the same batch applies.
    assert.notEqual(d.run(batch([named], d.state.eventVersion))[0]?.event, "error", what);
  }
});

Deno.test("§11.3: the message names the first changed entity exactly", () => {
  const d = seeded();
  d.run({ cmd: "rename_tab", tab_id: T2, name: "r" }); // v6
  const error = onlyError(d.run(batch([
    { cmd: "update_block_meta", block_id: B1, meta_patch: {} },
    { cmd: "reorder_tabs_bulk", workspace_id: W1, tab_ids: [T2, T1] },
  ], 5)));
  assert.equal(error.message, `Batch: tab ${T2} changed at version 6 (after 5)`);
});

Deno.test("§11.3: a deleted entity changed; so did its parent", () => {
  const d = seeded();
  d.run({ cmd: "delete_block", tab_id: T1, block_id: B1 }); // v6
  const onBlock = onlyError(d.run(batch([{ cmd: "create_block", tab_id: T2, block_id: B1 }], 5)));
  assert.equal(onBlock.message, `Batch: block ${B1} changed at version 6 (after 5)`);
  assert.equal(onBlock.code, "precondition_failed");
  assert.equal(lastChangeOf(d.state, B1), 6);
  assert.equal(lastChangeOf(d.state, T1), 6);
  const cascade = seeded();
  cascade.run({ cmd: "delete_workspace", workspace_id: W1 }); // v6: W1, T1, T2, B1 all gone
  for (const id of [W1, T1, T2, B1]) assert.equal(lastChangeOf(cascade.state, id), 6, id);
});

Deno.test("§11.3: changes to other entities, pings and registrations never conflict", () => {
  const d = seeded();
  const v = d.state.eventVersion;
  d.run({ cmd: "register", kind: "tool", pid: 9, version: "x" });
  d.run({ cmd: "ping", nonce: 1 });
  d.run({ cmd: "rename_tab", tab_id: T2, name: "other" });
  d.run({ cmd: "create_workspace", name: "elsewhere" });
  const events = d.run(
    batch([{ cmd: "update_block_meta", block_id: B1, meta_patch: { ok: true } }], v),
  );
  assert.equal(events[0].event, "block_meta_updated");
  // An id nothing ever had (a create's client id) has not changed either.
  const created = d.run(batch([{ cmd: "create_workspace", name: "n", workspace_id: W2 }], v));
  assert.equal(created[0].event, "workspace_created");
});

Deno.test("§11.3: a field srv does not know names nothing, whatever its name (§2)", () => {
  const d = seeded();
  const v = d.state.eventVersion;
  d.run({ cmd: "rename_tab", tab_id: T2, name: "changed after v" });
  // Sent over the wire: unknown fields are skipped by the decoder's rules,
  // and a `*_id` among them must not count as an entity the batch names.
  const decoded = decodeCommand(JSON.stringify({
    cmd: "batch",
    commands: [{ cmd: "update_block_meta", block_id: B1, meta_patch: { ok: 1 }, note_tab_id: T2 }],
    if_unchanged_since: v,
  }));
  assert.ok(decoded.ok);
  const events = d.run(decoded.command as BatchCommand);
  assert.equal(events[0].event, "block_meta_updated", JSON.stringify(events));
});

Deno.test("§11.3: a condition after the current version is refused, never a blind success", () => {
  // Say a --memory srv restarted: versions begin again, and a client still
  // holding V from before must not be told that nothing changed since.
  const d = seeded(); // version 5
  const rename: DomainCommand = { cmd: "rename_tab", tab_id: T1, name: "n" };
  for (const since of [6, 99_999, 18446744073709551615n]) {
    const error = onlyError(
      decideBatch(d.state, { ...batch([rename]), if_unchanged_since: since }, {
        registeredPid: 1,
        newId: () => crypto.randomUUID(),
      }),
    );
    assert.equal(error.code, "precondition_failed", `${since}`);
    assert.equal(error.index, null);
    assert.equal(error.version, 0);
    assert.equal(
      error.message,
      `Batch: if_unchanged_since ${since} is after the current version 5`,
    );
  }
  // At the current version and at 0 (nothing named changed since): applied.
  assert.equal(d.run(batch([rename], 5))[0].event, "tab_renamed");
  assert.equal(
    d.run(batch([{ cmd: "create_workspace", name: "x" }], 0))[0].event,
    "workspace_created",
  );
});

Deno.test("§11.3: forgotten change records make older conditions fail safe, never pass", () => {
  // A full generation of records (ids changed at versions 1..N, `kept` at
  // 9), and an older one holding `gone` (7), `older` (2) and `kept` (3).
  const young = new Map<string, number>();
  for (let i = 1; i <= CHANGE_GENERATION; i++) young.set(`id-${i}`, i);
  young.set("kept", 9);
  young.delete("id-9");
  const d = new Driver(
    {
      ...initialState(),
      eventVersion: CHANGE_GENERATION,
      changedAt: young,
      changedBefore: new Map([["gone", 7], ["kept", 3], ["older", 2]]),
    },
    counterIds(),
    { owned: true },
  );
  d.run({ cmd: "create_workspace", name: "w", workspace_id: W1 }); // one id too many: a new generation
  assert.equal(d.state.changedBefore.size, CHANGE_GENERATION + 1);
  assert.deepEqual([...d.state.changedAt], []);
  // The records only the dropped generation held are gone; the floor is the newest of them.
  assert.equal(d.state.changesKnownFrom, 7);
  assert.equal(lastChangeOf(d.state, "gone"), 7);
  assert.equal(lastChangeOf(d.state, "older"), 7, "at or before 7");
  assert.equal(lastChangeOf(d.state, "kept"), 9, "still exact: the newer generation has it");
  assert.equal(lastChangeOf(d.state, W1), CHANGE_GENERATION + 1);
  const refused = onlyError(
    d.run(batch([{ cmd: "create_workspace", name: "x", workspace_id: W2 }], 6)),
  );
  assert.equal(refused.code, "precondition_failed");
  assert.equal(refused.message, `Batch: workspace ${W2} changed at version 7 (after 6)`);
  const applied = d.run(batch([{ cmd: "create_workspace", name: "x", workspace_id: W2 }], 7));
  assert.equal(applied[0].event, "workspace_created");
  assert.equal(lastChangeOf(d.state, W2), CHANGE_GENERATION + 2);
});

// --- properties --------------------------------------------------------------------

Deno.test("property: a failed batch changes nothing; a successful one equals its commands one by one", () => {
  const seed = Number(Deno.env.get("SRV_PROPERTY_SEED") ?? Date.now() % 1_000_000);
  const rnd = prng(seed);
  let failed = 0;
  let applied = 0;
  for (let round = 0; round < 150; round++) {
    // A random tree, then a random batch built step by step against it.
    const base = new Driver(initialState(), counterIds(`r${round}-`));
    for (let i = 0; i < 25; i++) base.run(randomCommand(base.state, rnd));
    const one = new Driver(base.state, counterIds("n-"));
    const commands: DomainCommand[] = [];
    let failsAt = -1;
    for (let i = 0; i < 1 + Math.floor(rnd() * 8); i++) {
      const command = randomCommand(one.state, rnd) as DomainCommand;
      commands.push(command);
      if (one.run(command).some((e) => e.event === "error")) {
        failsAt = i;
        break;
      }
    }
    const before = snapshotOf(base.state);
    const version = base.state.eventVersion;
    const batched = new Driver(base.state, counterIds("n-"));
    const events = batched.run(batch(commands));
    const msg = `seed ${seed}, round ${round}`;
    if (failsAt >= 0) {
      failed++;
      const error = onlyError(events);
      assert.equal(error.index, failsAt, msg);
      assert.equal(error.version, 0, msg);
      assert.deepEqual(snapshotOf(batched.state), before, msg);
      assert.equal(batched.state.eventVersion, version, msg);
    } else {
      applied++;
      const end = one.events.at(-1)?.version;
      assert.deepEqual(
        events,
        one.events.map((e) => {
          const { version, ...rest } = e;
          return { ...rest, batch_end: end, version };
        }),
        msg,
      );
      assert.deepEqual(snapshotOf(batched.state), snapshotOf(one.state), msg);
      assert.equal(batched.state.eventVersion, one.state.eventVersion, msg);
    }
  }
  assert.ok(failed > 10 && applied > 10, `both paths ran: ${failed} failed, ${applied} applied`);
});

// --- §11.1 observers (the session's part) --------------------------------------------

Deno.test("§11.1: an observer's register is answered without the reducer; it may only read", () => {
  const s = new Session();
  const step = s.receiveLine(
    '{"cmd":"register","kind":"tool","pid":1,"version":"1","observe":true}',
  );
  assert.equal(step.kind, "observe");
  assert.equal(s.observer, true);
  assert.equal(s.identity, null, "no pid claimed");
  assert.deepEqual(s.registerTimedOut(300), { kind: "ignore" }, "registered in time (§10)");
  for (const cmd of ['{"cmd":"ping","nonce":3}', '{"cmd":"get_srv_snapshot"}']) {
    assert.equal(s.receiveLine(cmd).kind, "observe", cmd);
  }
  for (const cmd of ['{"cmd":"get_events","since":0}', '{"cmd":"get_server_info"}']) {
    assert.equal(s.receiveLine(cmd).kind, "query", cmd);
  }
  for (
    const [line, cmd] of [
      ['{"cmd":"create_workspace","name":"w"}', "create_workspace"],
      [`{"cmd":"batch","commands":[{"cmd":"create_workspace","name":"w"}]}`, "batch"],
      ['{"cmd":"report_exit"}', "report_exit"],
    ]
  ) {
    assert.deepEqual(s.receiveLine(line), {
      kind: "reply",
      event: {
        event: "error",
        code: "invalid_command",
        message: `observers are read-only: ${cmd}`,
        fatal: false,
        version: 0,
      },
      close: false,
    });
  }
  assert.equal(
    (s.receiveLine('{"cmd":"register","kind":"tool","pid":1,"version":"1"}') as {
      event: ErrorEvent;
    })
      .event.code,
    "already_registered",
  );
  assert.equal(s.receiveLine('{"cmd":"goodbye"}').kind, "observe");
  assert.equal(s.ended, true);
  assert.equal(s.disconnect(), null, "disconnecting dispatches nothing");
  // Nor does a drop without goodbye, even with the pid a registered client holds.
  const dropped = new Session();
  dropped.receiveLine('{"cmd":"register","kind":"tool","pid":1,"version":"1","observe":true}');
  assert.equal(dropped.disconnect(), null);
});

Deno.test("§11.1: observe:false (or null) is a normal registration", () => {
  for (const observe of ["false", "null"]) {
    const s = new Session();
    const line = `{"cmd":"register","kind":"tool","pid":1,"version":"1","observe":${observe}}`;
    assert.equal(s.receiveLine(line).kind, "reduce");
  }
});

Deno.test("§11.1: observer answers: private registered, pong at version 0, snapshot at the current version", () => {
  const d = seeded();
  const identity = { pid: 77, version: "9.9", instanceId: "inst" };
  assert.deepEqual(
    JSON.stringify(
      observerAnswer(d.state, { cmd: "register", kind: "tool", pid: 1, version: "x" }, identity),
    ),
    '{"event":"registered","client_id":0,"launcher_pid":77,"launcher_version":"9.9","instance_id":"inst","protocol":2,"observe":true,"version":0}',
  );
  assert.deepEqual(observerAnswer(d.state, { cmd: "ping", nonce: 18446744073709551615n }), {
    event: "pong",
    nonce: 18446744073709551615n,
    version: 0,
  });
  const snap = observerAnswer(d.state, { cmd: "get_srv_snapshot" });
  assert.deepEqual(snap, { event: "srv_snapshot", ...snapshotOf(d.state), version: 5 });
  assert.equal(observerAnswer(d.state, { cmd: "goodbye" }), null);
});

Deno.test("§11.3: a failed batch that moved blocks and tabs leaves every child list of the state as it was", () => {
  // The server changes child lists in place once it owns them; a batch's
  // draft shares them with the state until it copies one.
  const d = seeded();
  const tabsBefore = [...d.state.workspaces.get(W1)!.tabIds];
  const failed = d.run(batch([
    { cmd: "move_block", block_id: B1, src_tab_id: T1, dst_tab_id: T2, dst_index: 0 },
    { cmd: "create_block", tab_id: T1, meta: null },
    { cmd: "reorder_tab", workspace_id: W1, tab_id: T2, new_index: 0 },
    { cmd: "rename_tab", tab_id: "no-such-tab", name: "x" },
  ]));
  assert.equal(onlyError(failed).index, 3);
  assert.deepEqual(d.state.tabs.get(T1)!.blockIds, [B1]);
  assert.deepEqual(d.state.tabs.get(T2)!.blockIds, []);
  assert.deepEqual(d.state.workspaces.get(W1)!.tabIds, tabsBefore);
  assert.equal(d.state.eventVersion, 5);
});
