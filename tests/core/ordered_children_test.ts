// Ordered children (a workspace's tabs, a tab's blocks) as the reducer keeps
// them (issue 16): the server's owned path changes a list in place, never a
// copy per event; the pure path never changes a list reachable from the state
// it was given, which a batch decided against an overlay of that state relies on.
import assert from "node:assert/strict";
import { evolve, evolveInPlace } from "../../srv/core/evolve.ts";
import type { ReducerEvent } from "../../srv/core/decide.ts";
import { snapshotOf, type State } from "../../srv/core/state.ts";
import { Driver } from "../_fixtures.ts";
import { prng, randomCommand } from "../_random_commands.ts";

/** One workspace "id-1", tabs "id-2" and "id-3", blocks in each. */
function tree(owned: boolean): Driver {
  const d = new Driver(undefined, undefined, { owned });
  d.run({ cmd: "create_workspace", name: "w" });
  d.run({ cmd: "create_tab", workspace_id: "id-1", name: "a" });
  d.run({ cmd: "create_tab", workspace_id: "id-1", name: "b" });
  for (let i = 0; i < 4; i++) d.run({ cmd: "create_block", tab_id: "id-2", meta: i });
  d.run({ cmd: "create_block", tab_id: "id-3", meta: null });
  return d;
}

/** Every list and entity of `state`, deep-copied: what it must still read later. */
function frozenCopy(state: State) {
  return structuredClone({
    snapshot: snapshotOf(state),
    workspaces: [...state.workspaces.values()],
    tabs: [...state.tabs.values()],
  });
}

Deno.test("evolve leaves every list of the state it was given as it was", () => {
  const d = tree(false);
  const base = d.state;
  const before = frozenCopy(base);
  const blocks = base.tabs.get("id-2")!.blockIds;
  const tabs = base.workspaces.get("id-1")!.tabIds;
  // One of each list change, each applied to the same base (as an overlay would).
  const changes: ReducerEvent[] = [
    { event: "block_created", tab_id: "id-2", block_id: "new", meta: null, version: 100 },
    { event: "block_deleted", tab_id: "id-2", block_id: blocks[1], version: 100 },
    {
      event: "block_moved",
      block_id: blocks[0],
      src_tab_id: "id-2",
      dst_tab_id: "id-2",
      dst_index: 3,
      version: 100,
    },
    {
      event: "block_moved",
      block_id: blocks[2],
      src_tab_id: "id-2",
      dst_tab_id: "id-3",
      dst_index: 0,
      version: 100,
    },
    { event: "tab_created", workspace_id: "id-1", tab_id: "t", name: "c", version: 100 },
    { event: "tab_reordered", workspace_id: "id-1", tab_id: tabs[0], new_index: 1, version: 100 },
    { event: "tab_deleted", workspace_id: "id-1", tab_id: tabs[1], block_ids: [], version: 100 },
  ];
  for (const change of changes) {
    const after = evolve(base, change);
    assert.notEqual(after, base, change.event);
    assert.deepEqual(frozenCopy(base), before, `${change.event} changed its input state`);
  }
  // And the changes themselves landed.
  const moved = evolve(base, changes[2]);
  assert.deepEqual(moved.tabs.get("id-2")!.blockIds, [blocks[1], blocks[2], blocks[3], blocks[0]]);
  const across = evolve(base, changes[3]);
  assert.deepEqual(across.tabs.get("id-2")!.blockIds, [blocks[0], blocks[1], blocks[3]]);
  assert.equal(across.tabs.get("id-3")!.blockIds[0], blocks[2]);
});

Deno.test("evolveInPlace appends to and moves within a tab's list without copying it", () => {
  const d = tree(true);
  const list = d.state.tabs.get("id-2")!.blockIds;
  d.run({ cmd: "create_block", tab_id: "id-2", meta: null });
  const [first] = list;
  d.run({
    cmd: "move_block",
    block_id: first,
    src_tab_id: "id-2",
    dst_tab_id: "id-2",
    dst_index: 2,
  });
  d.run({ cmd: "delete_block", tab_id: "id-2", block_id: list[0] });
  const now = d.state.tabs.get("id-2")!.blockIds;
  assert.equal(now, list, "the tab's list was copied");
  assert.equal(now.length, 4);
  assert.equal(now[1], first);
});

Deno.test("random commands: owned and pure paths build the same tree, and the pure one never touches an old state", () => {
  for (const seed of [1, 2, 3]) {
    const rnd = prng(seed);
    const owned = new Driver(undefined, undefined, { owned: true });
    const pure = new Driver();
    const olds: [State, ReturnType<typeof frozenCopy>][] = [];
    for (let step = 0; step < 400; step++) {
      const command = randomCommand(pure.state, rnd);
      owned.run(command);
      pure.run(command);
      if (step % 40 === 0) olds.push([pure.state, frozenCopy(pure.state)]);
    }
    assert.deepEqual(snapshotOf(owned.state), snapshotOf(pure.state), `seed ${seed}`);
    for (const [old, copy] of olds) assert.deepEqual(frozenCopy(old), copy, `seed ${seed}`);
    // A replay (the store's, on restart) folds the same events in place.
    let replayed = new Driver().state;
    for (const event of pure.events) replayed = evolveInPlace(replayed, event);
    assert.deepEqual(snapshotOf(replayed), snapshotOf(pure.state), `seed ${seed}: replay`);
  }
});
