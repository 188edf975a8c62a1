// Property tests: seeded random command sequences through the reducer. After
// every step the tree's invariants hold, versions rise strictly, and folding
// `evolve` over every emitted event rebuilds the live state exactly.
// Reproduce a failure with SRV_PROPERTY_SEED=<seed printed in the message>.
import assert from "node:assert/strict";
import { evolve } from "../../srv/core/evolve.ts";
import { initialState, snapshotOf, type State, stateFromSnapshot } from "../../srv/core/state.ts";
import { type ReducerEvent } from "../../srv/core/decide.ts";
import { Driver } from "../_fixtures.ts";
import { prng, randomCommand } from "../_random_commands.ts";

/** Checks every structural invariant of the tree; returns the first broken one. */
export function brokenInvariant(state: State): string | null {
  const tabOwner = new Map<string, string>();
  for (const [id, ws] of state.workspaces) {
    if (ws.id !== id) return `workspace ${id} carries id ${ws.id}`;
    if (new Set(ws.tabIds).size !== ws.tabIds.length) return `workspace ${id} lists a tab twice`;
    for (const tabId of ws.tabIds) {
      if (tabOwner.has(tabId)) return `tab ${tabId} is in two workspaces`;
      tabOwner.set(tabId, id);
      const tab = state.tabs.get(tabId);
      if (tab === undefined) return `workspace ${id} lists missing tab ${tabId}`;
      if (tab.workspaceId !== id) {
        return `tab ${tabId} points at ${tab.workspaceId}, listed in ${id}`;
      }
    }
    if (ws.activeTabId !== null && !ws.tabIds.includes(ws.activeTabId)) {
      return `workspace ${id}'s active tab ${ws.activeTabId} is not in its list`;
    }
    if ((ws.activeTabId === null) !== (ws.tabIds.length === 0)) {
      return `workspace ${id} has ${ws.tabIds.length} tabs but active ${ws.activeTabId}`;
    }
  }
  const blockOwner = new Map<string, string>();
  for (const [id, tab] of state.tabs) {
    if (!tabOwner.has(id)) return `tab ${id} is in no workspace's list`;
    if (new Set(tab.blockIds).size !== tab.blockIds.length) return `tab ${id} lists a block twice`;
    for (const blockId of tab.blockIds) {
      if (blockOwner.has(blockId)) return `block ${blockId} is in two tabs`;
      blockOwner.set(blockId, id);
      const block = state.blocks.get(blockId);
      if (block === undefined) return `tab ${id} lists missing block ${blockId}`;
      if (block.tabId !== id) return `block ${blockId} points at ${block.tabId}, listed in ${id}`;
    }
  }
  for (const id of state.blocks.keys()) {
    if (!blockOwner.has(id)) return `block ${id} is in no tab's list`;
  }
  return null;
}

/**
 * Each event states what changed (indexes, active tabs, removed blocks);
 * checks the state after the command agrees, so a wrong `evolve` cannot hide
 * behind a fold that is wrong in the same way.
 */
function brokenClaim(state: State, events: readonly ReducerEvent[]): string | null {
  for (const e of events) {
    switch (e.event) {
      case "tab_moved": {
        const dst = state.workspaces.get(e.dst_workspace_id);
        if (dst?.tabIds[e.dst_index] !== e.tab_id) {
          return `tab_moved: ${e.tab_id} not at ${e.dst_index}`;
        }
        if (dst.activeTabId !== e.new_dst_active_tab_id) return "tab_moved: destination active tab";
        const src = state.workspaces.get(e.src_workspace_id);
        if (src?.activeTabId !== e.new_src_active_tab_id) return "tab_moved: source active tab";
        break;
      }
      case "tab_reordered":
        if (state.workspaces.get(e.workspace_id)?.tabIds[e.new_index] !== e.tab_id) {
          return `tab_reordered: ${e.tab_id} not at ${e.new_index}`;
        }
        break;
      case "tabs_reordered_bulk":
        if (state.workspaces.get(e.workspace_id)?.tabIds.join() !== e.tab_ids.join()) {
          return "tabs_reordered_bulk: order differs";
        }
        break;
      case "block_moved":
        if (state.tabs.get(e.dst_tab_id)?.blockIds[e.dst_index] !== e.block_id) {
          return `block_moved: ${e.block_id} not at ${e.dst_index}`;
        }
        break;
      case "block_created":
        if (state.tabs.get(e.tab_id)?.blockIds.at(-1) !== e.block_id) {
          return "block_created: not last";
        }
        break;
      case "tab_created":
        if (state.workspaces.get(e.workspace_id)?.tabIds.at(-1) !== e.tab_id) {
          return "tab_created: not last";
        }
        break;
      case "active_tab_changed":
        if (state.workspaces.get(e.workspace_id)?.activeTabId !== e.tab_id) {
          return "active_tab_changed";
        }
        break;
      case "workspace_deleted":
      case "tab_deleted":
        if (e.block_ids.some((b) => state.blocks.has(b))) {
          return `${e.event}: a listed block survived`;
        }
        break;
    }
  }
  return null;
}

function seeds(): number[] {
  const fixed = Deno.env.get("SRV_PROPERTY_SEED");
  if (fixed) return [Number(fixed)];
  return [1, 2, 3, 0xc0ffee, Date.now() % 1_000_000];
}

Deno.test("random command sequences keep every invariant and evolve reproduces the state", () => {
  for (const seed of seeds()) {
    const rnd = prng(seed);
    let n = 0;
    const d = new Driver(initialState(), () => `id-${seed}-${++n}`);
    let lastVersion = 0;
    const counts = { events: 0, errors: 0 };
    for (let step = 0; step < 3000; step++) {
      const command = rnd() < 0.02
        ? { cmd: "get_srv_snapshot" } as const
        : randomCommand(d.state, rnd);
      const events = d.run(command);
      for (const e of events) {
        assert.ok(
          e.version > lastVersion,
          `seed ${seed} step ${step}: version ${e.version} after ${lastVersion}`,
        );
        assert.equal(e.version, lastVersion + 1, `seed ${seed} step ${step}: no gaps`);
        lastVersion = e.version;
        counts.events++;
        if (e.event === "error") counts.errors++;
      }
      assert.equal(d.state.eventVersion, lastVersion);
      const broken = brokenInvariant(d.state) ?? brokenClaim(d.state, events);
      assert.equal(
        broken,
        null,
        `seed ${seed} step ${step} after ${JSON.stringify(command)}: ${broken}`,
      );
    }
    const rebuilt = d.events.reduce<State>((s, e) => evolve(s, e), initialState());
    assert.deepEqual(rebuilt, d.state, `seed ${seed}: fold of evolve differs from the live state`);
    // The generator must reach both the happy and the error paths to prove anything.
    assert.ok(counts.events > 2000, `seed ${seed}: only ${counts.events} events`);
    assert.ok(
      counts.errors > 100 && counts.errors < counts.events / 2,
      `seed ${seed}: ${counts.errors} errors`,
    );
    assert.ok(d.state.blocks.size + d.state.tabs.size > 0, `seed ${seed}: the tree stayed empty`);
  }
});

Deno.test("replaying only the logged events (no errors, no snapshots) rebuilds the same tree", () => {
  const rnd = prng(99);
  let n = 0;
  const d = new Driver(initialState(), () => `id-${++n}`);
  for (let step = 0; step < 2000; step++) d.run(randomCommand(d.state, rnd));
  const logged = d.events.filter((e) => e.event !== "error" && e.event !== "srv_snapshot");
  const rebuilt = logged.reduce<State>((s, e) => evolve(s, e), initialState());
  assert.deepEqual(rebuilt.workspaces, d.state.workspaces);
  assert.deepEqual(rebuilt.tabs, d.state.tabs);
  assert.deepEqual(rebuilt.blocks, d.state.blocks);
});

Deno.test("a mirror built from a snapshot, evolved with later events, equals the live tree", () => {
  for (const seed of seeds()) {
    const rnd = prng(seed);
    let n = 0;
    const d = new Driver(initialState(), () => `id-${seed}-${++n}`);
    let mirror: State | null = null;
    for (let step = 0; step < 2000; step++) {
      const events = d.run(randomCommand(d.state, rnd));
      if (mirror !== null) { for (const e of events) mirror = evolve(mirror, e); }
      if (step % 250 === 0) {
        const snapshot = { ...snapshotOf(d.state), version: d.state.eventVersion };
        const fresh = stateFromSnapshot(snapshot);
        assert.deepEqual(snapshotOf(fresh), snapshotOf(d.state), `seed ${seed} step ${step}`);
        assert.equal(fresh.eventVersion, d.state.eventVersion);
        mirror ??= fresh;
      }
      if (mirror !== null) {
        assert.deepEqual(mirror.workspaces, d.state.workspaces, `seed ${seed} step ${step}`);
      }
    }
    assert.ok(mirror !== null);
    assert.deepEqual(mirror.tabs, d.state.tabs, `seed ${seed}`);
    assert.deepEqual(mirror.blocks, d.state.blocks, `seed ${seed}`);
    assert.equal(mirror.eventVersion, d.state.eventVersion);
  }
});

Deno.test("owned (in-place) evolution, as the server runs it, matches pure evolution", () => {
  for (const seed of seeds()) {
    const pureRnd = prng(seed);
    const ownedRnd = prng(seed);
    let a = 0;
    let b = 0;
    const pure = new Driver(initialState(), () => `id-${++a}`);
    const owned = new Driver(initialState(), () => `id-${++b}`, { owned: true });
    for (let step = 0; step < 2000; step++) {
      const events = pure.run(randomCommand(pure.state, pureRnd));
      assert.deepEqual(
        owned.run(randomCommand(owned.state, ownedRnd)),
        events,
        `seed ${seed} step ${step}`,
      );
      assert.equal(brokenInvariant(owned.state), null, `seed ${seed} step ${step}`);
    }
    assert.deepEqual(owned.state, pure.state, `seed ${seed}`);
  }
});

Deno.test("pure evolve leaves every earlier state untouched", () => {
  const rnd = prng(7);
  let n = 0;
  const d = new Driver(initialState(), () => `id-${++n}`);
  const history: [State, string][] = [];
  for (let step = 0; step < 500; step++) {
    history.push([d.state, JSON.stringify(snapshotOf(d.state))]);
    d.run(randomCommand(d.state, rnd));
  }
  for (const [state, frozen] of history) assert.equal(JSON.stringify(snapshotOf(state)), frozen);
});
