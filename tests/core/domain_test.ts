// Reducer unit tests for the workspace → tab → block domain: docs/PROTOCOL.md
// §3, §4 and §6. Ids come from a counter ("id-1", "id-2", ...).
import assert from "node:assert/strict";
import { evolve } from "../../srv/core/evolve.ts";
import { initialState, snapshotOf, type State } from "../../srv/core/state.ts";
import { type Json } from "../../srv/core/protocol.ts";
import { mergePatch } from "../../srv/core/merge_patch.ts";
import { type ReducerEvent } from "../../srv/core/decide.ts";
import { Driver } from "../_fixtures.ts";

/** A driver with one workspace "id-1" holding tabs "id-2", "id-3", ... */
function withTabs(count: number): Driver {
  const d = new Driver();
  d.run({ cmd: "create_workspace", name: "main" });
  for (let i = 0; i < count; i++) d.run({ cmd: "create_tab", workspace_id: "id-1", name: `t${i}` });
  return d;
}

function invalid(message: string, version: number): ReducerEvent {
  return { event: "error", code: "invalid_command", message, fatal: false, version };
}

Deno.test("create_workspace mints an id from the context", () => {
  const d = new Driver();
  assert.deepEqual(d.run({ cmd: "create_workspace", name: "main" }), [
    { event: "workspace_created", workspace_id: "id-1", name: "main", version: 1 },
  ]);
  assert.deepEqual(d.state.workspaces.get("id-1"), {
    id: "id-1",
    name: "main",
    tabIds: [],
    activeTabId: null,
    meta: {},
  });
});

Deno.test("the first tab becomes active; the second does not steal it", () => {
  const d = withTabs(0);
  assert.deepEqual(d.run({ cmd: "create_tab", workspace_id: "id-1", name: "a" }), [
    { event: "tab_created", workspace_id: "id-1", tab_id: "id-2", name: "a", version: 2 },
    { event: "active_tab_changed", workspace_id: "id-1", tab_id: "id-2", version: 3 },
  ]);
  assert.deepEqual(d.run({ cmd: "create_tab", workspace_id: "id-1", name: "b" }), [
    { event: "tab_created", workspace_id: "id-1", tab_id: "id-3", name: "b", version: 4 },
  ]);
  assert.equal(d.state.workspaces.get("id-1")?.activeTabId, "id-2");
  assert.deepEqual(d.state.workspaces.get("id-1")?.tabIds, ["id-2", "id-3"]);
});

Deno.test("an empty tab name gets the default tab<N>", () => {
  const d = withTabs(2);
  const [created] = d.run({ cmd: "create_tab", workspace_id: "id-1", name: "" });
  assert.equal((created as { name: string }).name, "tab3");
});

Deno.test("unknown targets are broadcast invalid_command errors naming the command and id", () => {
  const d = withTabs(1); // ws id-1, tab id-2; version 3
  const cases: [Parameters<Driver["run"]>[0], string][] = [
    [
      { cmd: "create_tab", workspace_id: "nope", name: "x" },
      "CreateTab: workspace not found: nope",
    ],
    [
      { cmd: "set_active_tab", workspace_id: "nope", tab_id: "id-2" },
      "SetActiveTab: workspace not found: nope",
    ],
    [
      { cmd: "set_active_tab", workspace_id: "id-1", tab_id: "t9" },
      "SetActiveTab: tab t9 not in workspace id-1",
    ],
    [
      { cmd: "reorder_tab", workspace_id: "nope", tab_id: "id-2", new_index: 0 },
      "ReorderTab: workspace not found: nope",
    ],
    [
      { cmd: "reorder_tab", workspace_id: "id-1", tab_id: "t9", new_index: 0 },
      "ReorderTab: tab t9 not in workspace id-1",
    ],
    [{ cmd: "create_block", tab_id: "t9", meta: null }, "CreateBlock: tab not found: t9"],
    [
      { cmd: "rename_workspace", workspace_id: "nope", name: "x" },
      "RenameWorkspace: workspace not found: nope",
    ],
    [{ cmd: "rename_tab", tab_id: "t9", name: "x" }, "RenameTab: tab not found: t9"],
    [
      { cmd: "reorder_tabs_bulk", workspace_id: "nope", tab_ids: [] },
      "ReorderTabsBulk: workspace not found: nope",
    ],
    [
      { cmd: "update_workspace_meta", workspace_id: "nope", meta_patch: {} },
      "UpdateWorkspaceMeta: workspace not found: nope",
    ],
    [{ cmd: "update_tab_meta", tab_id: "t9", meta_patch: {} }, "UpdateTabMeta: tab not found: t9"],
    [
      { cmd: "update_block_meta", block_id: "b9", meta_patch: {} },
      "UpdateBlockMeta: block not found: b9",
    ],
  ];
  let version = d.state.eventVersion;
  for (const [command, message] of cases) {
    const before = d.state;
    assert.deepEqual(d.run(command), [invalid(message, ++version)], command.cmd);
    assert.equal(d.state.workspaces, before.workspaces, "errors change no tree");
    assert.equal(d.state.tabs, before.tabs);
    assert.equal(d.state.eventVersion, version, "errors take a version");
  }
});

Deno.test("deleting something unknown is a silent no-op", () => {
  const d = withTabs(2);
  const before = d.state;
  assert.deepEqual(d.run({ cmd: "delete_workspace", workspace_id: "nope" }), []);
  assert.deepEqual(d.run({ cmd: "delete_tab", workspace_id: "nope", tab_id: "id-2" }), []);
  assert.deepEqual(d.run({ cmd: "delete_tab", workspace_id: "id-1", tab_id: "nope" }), []);
  assert.deepEqual(d.run({ cmd: "delete_block", tab_id: "nope", block_id: "b" }), []);
  assert.deepEqual(d.run({ cmd: "delete_block", tab_id: "id-2", block_id: "nope" }), []);
  assert.equal(d.state, before, "not even the version moves");
});

Deno.test("no-change commands emit nothing", () => {
  const d = withTabs(2);
  const before = d.state;
  assert.deepEqual(d.run({ cmd: "set_active_tab", workspace_id: "id-1", tab_id: "id-2" }), []);
  assert.deepEqual(
    d.run({ cmd: "reorder_tab", workspace_id: "id-1", tab_id: "id-3", new_index: 1 }),
    [],
  );
  assert.deepEqual(
    d.run({ cmd: "reorder_tab", workspace_id: "id-1", tab_id: "id-3", new_index: 99 }),
    [],
  );
  assert.deepEqual(d.run({ cmd: "rename_workspace", workspace_id: "id-1", name: "main" }), []);
  assert.deepEqual(d.run({ cmd: "rename_tab", tab_id: "id-2", name: "t0" }), []);
  assert.deepEqual(
    d.run({ cmd: "reorder_tabs_bulk", workspace_id: "id-1", tab_ids: ["id-2", "id-3"] }),
    [],
  );
  assert.equal(d.state, before);
});

Deno.test("set_active_tab switches and says so", () => {
  const d = withTabs(2);
  assert.deepEqual(d.run({ cmd: "set_active_tab", workspace_id: "id-1", tab_id: "id-3" }), [
    { event: "active_tab_changed", workspace_id: "id-1", tab_id: "id-3", version: 5 },
  ]);
  assert.equal(d.state.workspaces.get("id-1")?.activeTabId, "id-3");
});

Deno.test("deleting the last tab is refused unless force:true", () => {
  const d = withTabs(1);
  const refused = d.run({ cmd: "delete_tab", workspace_id: "id-1", tab_id: "id-2" });
  assert.equal(refused.length, 1);
  assert.equal(refused[0].event, "error");
  assert.match((refused[0] as { message: string }).message, /^DeleteTab: .*last tab.*id-1.*force/);
  assert.equal(d.state.tabs.size, 1);
  assert.deepEqual(
    d.run({ cmd: "delete_tab", workspace_id: "id-1", tab_id: "id-2", force: null }).map((e) =>
      e.event
    ),
    ["error"],
  );
  assert.deepEqual(
    d.run({ cmd: "delete_tab", workspace_id: "id-1", tab_id: "id-2", force: true }),
    [
      { event: "tab_deleted", workspace_id: "id-1", tab_id: "id-2", block_ids: [], version: 6 },
      { event: "active_tab_changed", workspace_id: "id-1", tab_id: null, version: 7 },
    ],
  );
  assert.deepEqual(d.state.workspaces.get("id-1")?.tabIds, []);
  assert.equal(d.state.workspaces.get("id-1")?.activeTabId, null);
});

Deno.test("deleting the active tab activates the one now at its index, else the previous", () => {
  const d = withTabs(3); // id-2 (active), id-3, id-4
  d.run({ cmd: "set_active_tab", workspace_id: "id-1", tab_id: "id-3" });
  const mid = d.run({ cmd: "delete_tab", workspace_id: "id-1", tab_id: "id-3" });
  assert.deepEqual(mid.map((e) => e.event), ["tab_deleted", "active_tab_changed"]);
  assert.equal((mid[1] as { tab_id: string }).tab_id, "id-4", "the tab now at the same index");
  const last = d.run({ cmd: "delete_tab", workspace_id: "id-1", tab_id: "id-4" });
  assert.equal(
    (last[1] as { tab_id: string }).tab_id,
    "id-2",
    "no tab at that index: the previous",
  );
});

Deno.test("deleting an inactive tab leaves the active one alone", () => {
  const d = withTabs(2);
  assert.deepEqual(
    d.run({ cmd: "delete_tab", workspace_id: "id-1", tab_id: "id-3" }).map((e) => e.event),
    [
      "tab_deleted",
    ],
  );
  assert.equal(d.state.workspaces.get("id-1")?.activeTabId, "id-2");
});

Deno.test("deletes cascade and report every removed block; the child maps end empty", () => {
  const d = withTabs(2);
  d.run({ cmd: "create_block", tab_id: "id-2", meta: null }); // id-4
  d.run({ cmd: "create_block", tab_id: "id-2", meta: { x: 1 } }); // id-5
  d.run({ cmd: "create_block", tab_id: "id-3" }); // id-6
  const tabGone = d.run({ cmd: "delete_tab", workspace_id: "id-1", tab_id: "id-3" });
  assert.deepEqual((tabGone[0] as { block_ids: string[] }).block_ids, ["id-6"]);
  assert.equal(d.state.blocks.has("id-6"), false);
  const wsGone = d.run({ cmd: "delete_workspace", workspace_id: "id-1" });
  assert.deepEqual(wsGone, [
    { event: "workspace_deleted", workspace_id: "id-1", block_ids: ["id-4", "id-5"], version: 9 },
  ]);
  assert.equal(d.state.workspaces.size, 0);
  assert.equal(d.state.tabs.size, 0);
  assert.equal(d.state.blocks.size, 0);
});

Deno.test("reorder_tab moves a tab and clamps to the last index", () => {
  const d = withTabs(3); // id-2 id-3 id-4
  assert.deepEqual(
    d.run({ cmd: "reorder_tab", workspace_id: "id-1", tab_id: "id-2", new_index: 99 }),
    [
      { event: "tab_reordered", workspace_id: "id-1", tab_id: "id-2", new_index: 2, version: 6 },
    ],
  );
  assert.deepEqual(d.state.workspaces.get("id-1")?.tabIds, ["id-3", "id-4", "id-2"]);
  d.run({ cmd: "reorder_tab", workspace_id: "id-1", tab_id: "id-4", new_index: 0 });
  assert.deepEqual(d.state.workspaces.get("id-1")?.tabIds, ["id-4", "id-3", "id-2"]);
});

Deno.test("reorder_tabs_bulk takes a permutation and refuses anything else", () => {
  const d = withTabs(3);
  assert.deepEqual(
    d.run({ cmd: "reorder_tabs_bulk", workspace_id: "id-1", tab_ids: ["id-4", "id-2", "id-3"] }),
    [
      {
        event: "tabs_reordered_bulk",
        workspace_id: "id-1",
        tab_ids: ["id-4", "id-2", "id-3"],
        version: 6,
      },
    ],
  );
  for (
    const bad of [
      ["id-4", "id-2"],
      ["id-4", "id-2", "id-3", "id-9"],
      ["id-4", "id-4", "id-2"],
      ["id-4", "id-2", "id-9"],
    ]
  ) {
    const [e] = d.run({ cmd: "reorder_tabs_bulk", workspace_id: "id-1", tab_ids: bad });
    assert.equal(e.event, "error", bad.join());
    assert.match((e as { message: string }).message, /^ReorderTabsBulk: /);
  }
  assert.deepEqual(d.state.workspaces.get("id-1")?.tabIds, ["id-4", "id-2", "id-3"]);
});

Deno.test("rename_workspace and rename_tab", () => {
  const d = withTabs(1);
  assert.deepEqual(d.run({ cmd: "rename_workspace", workspace_id: "id-1", name: "w" }), [
    { event: "workspace_renamed", workspace_id: "id-1", name: "w", version: 4 },
  ]);
  assert.deepEqual(d.run({ cmd: "rename_tab", tab_id: "id-2", name: "t" }), [
    { event: "tab_renamed", tab_id: "id-2", name: "t", version: 5 },
  ]);
  assert.equal(d.state.workspaces.get("id-1")?.name, "w");
  assert.equal(d.state.tabs.get("id-2")?.name, "t");
});

Deno.test("move_tab across workspaces keeps both orders and active tabs consistent", () => {
  const d = withTabs(3); // ws id-1: id-2 (active), id-3, id-4
  d.run({ cmd: "create_workspace", name: "other" }); // id-5
  d.run({ cmd: "create_tab", workspace_id: "id-5", name: "x" }); // id-6, active in id-5
  const [moved] = d.run({
    cmd: "move_tab",
    tab_id: "id-2",
    src_workspace_id: "id-1",
    dst_workspace_id: "id-5",
    dst_index: 99,
  });
  assert.deepEqual(moved, {
    event: "tab_moved",
    tab_id: "id-2",
    src_workspace_id: "id-1",
    dst_workspace_id: "id-5",
    dst_index: 1,
    new_src_active_tab_id: "id-3",
    new_dst_active_tab_id: "id-2",
    version: 9,
  });
  assert.deepEqual(d.state.workspaces.get("id-1")?.tabIds, ["id-3", "id-4"]);
  assert.equal(d.state.workspaces.get("id-1")?.activeTabId, "id-3");
  assert.deepEqual(d.state.workspaces.get("id-5")?.tabIds, ["id-6", "id-2"]);
  assert.equal(d.state.workspaces.get("id-5")?.activeTabId, "id-2");
  assert.equal(d.state.tabs.get("id-2")?.workspaceId, "id-5");
  const [back] = d.run({
    cmd: "move_tab",
    tab_id: "id-2",
    src_workspace_id: "id-5",
    dst_workspace_id: "id-1",
    dst_index: 1,
  });
  assert.equal((back as { dst_index: number }).dst_index, 1);
  assert.deepEqual(d.state.workspaces.get("id-1")?.tabIds, ["id-3", "id-2", "id-4"]);
  assert.equal(d.state.workspaces.get("id-5")?.activeTabId, "id-6", "the neighbour takes over");
});

Deno.test("move_tab of an inactive tab keeps the source's active tab; the last tab leaves none", () => {
  const d = withTabs(2); // id-2 active, id-3
  d.run({ cmd: "create_workspace", name: "other" }); // id-4 (empty)
  const [a] = d.run({
    cmd: "move_tab",
    tab_id: "id-3",
    src_workspace_id: "id-1",
    dst_workspace_id: "id-4",
    dst_index: 0,
  });
  assert.equal((a as { new_src_active_tab_id: string }).new_src_active_tab_id, "id-2");
  const [b] = d.run({
    cmd: "move_tab",
    tab_id: "id-2",
    src_workspace_id: "id-1",
    dst_workspace_id: "id-4",
    dst_index: 0,
  });
  assert.equal((b as { new_src_active_tab_id: null }).new_src_active_tab_id, null);
  assert.deepEqual(d.state.workspaces.get("id-4")?.tabIds, ["id-2", "id-3"]);
});

Deno.test("move_tab errors: same workspace, unknown workspaces or tab, wrong source", () => {
  const d = withTabs(1);
  d.run({ cmd: "create_workspace", name: "other" }); // id-3
  const cases: [Record<string, string>, RegExp][] = [
    [{ src_workspace_id: "id-1", dst_workspace_id: "id-1" }, /^MoveTab: .*id-1.*reorder_tab/],
    [
      { src_workspace_id: "nope", dst_workspace_id: "id-3" },
      /^MoveTab: source workspace not found: nope$/,
    ],
    [
      { src_workspace_id: "id-1", dst_workspace_id: "nope" },
      /^MoveTab: destination workspace not found: nope$/,
    ],
    [
      { tab_id: "t9", src_workspace_id: "id-1", dst_workspace_id: "id-3" },
      /^MoveTab: tab not found: t9$/,
    ],
    [
      { src_workspace_id: "id-3", dst_workspace_id: "id-1" },
      /^MoveTab: tab id-2 is in workspace id-1, not id-3$/,
    ],
  ];
  for (const [fields, message] of cases) {
    const [e] = d.run({
      cmd: "move_tab",
      tab_id: "id-2",
      src_workspace_id: "",
      dst_workspace_id: "",
      dst_index: 0,
      ...fields,
    });
    assert.equal(e.event, "error");
    assert.match((e as { message: string }).message, message);
  }
});

Deno.test("create_block, delete_block and move_block within and across tabs", () => {
  const d = withTabs(2); // id-2, id-3
  assert.deepEqual(d.run({ cmd: "create_block", tab_id: "id-2", meta: { k: "term" } }), [
    { event: "block_created", tab_id: "id-2", block_id: "id-4", meta: { k: "term" }, version: 5 },
  ]);
  d.run({ cmd: "create_block", tab_id: "id-2" }); // id-5, meta null
  d.run({ cmd: "create_block", tab_id: "id-2", meta: 7 }); // id-6
  assert.equal(d.state.blocks.get("id-5")?.meta, null);
  assert.deepEqual(
    d.run({
      cmd: "move_block",
      block_id: "id-4",
      src_tab_id: "id-2",
      dst_tab_id: "id-2",
      dst_index: 99,
    }),
    [
      {
        event: "block_moved",
        block_id: "id-4",
        src_tab_id: "id-2",
        dst_tab_id: "id-2",
        dst_index: 2,
        version: 8,
      },
    ],
  );
  assert.deepEqual(d.state.tabs.get("id-2")?.blockIds, ["id-5", "id-6", "id-4"]);
  d.run({
    cmd: "move_block",
    block_id: "id-6",
    src_tab_id: "id-2",
    dst_tab_id: "id-3",
    dst_index: 5,
  });
  assert.deepEqual(d.state.tabs.get("id-2")?.blockIds, ["id-5", "id-4"]);
  assert.deepEqual(d.state.tabs.get("id-3")?.blockIds, ["id-6"]);
  assert.equal(d.state.blocks.get("id-6")?.tabId, "id-3");
  assert.deepEqual(d.run({ cmd: "delete_block", tab_id: "id-2", block_id: "id-5" }), [
    { event: "block_deleted", tab_id: "id-2", block_id: "id-5", version: 10 },
  ]);
  assert.equal(d.state.blocks.has("id-5"), false);
});

Deno.test("move_block errors name the command and ids", () => {
  const d = withTabs(2);
  d.run({ cmd: "create_block", tab_id: "id-2" }); // id-4
  const cases: [Record<string, string>, RegExp][] = [
    [{ src_tab_id: "nope" }, /^MoveBlock: source tab not found: nope$/],
    [{ dst_tab_id: "nope" }, /^MoveBlock: destination tab not found: nope$/],
    [{ block_id: "b9" }, /^MoveBlock: block not found: b9$/],
    [{ src_tab_id: "id-3" }, /^MoveBlock: block id-4 is in tab id-2, not id-3$/],
  ];
  for (const [fields, message] of cases) {
    const [e] = d.run({
      cmd: "move_block",
      block_id: "id-4",
      src_tab_id: "id-2",
      dst_tab_id: "id-3",
      dst_index: 0,
      ...fields,
    });
    assert.match((e as { message: string }).message, message);
  }
});

Deno.test("metadata patches follow RFC 7386 on all three kinds", () => {
  const d = withTabs(1);
  d.run({ cmd: "create_block", tab_id: "id-2", meta: "plain" }); // id-3
  d.run({ cmd: "update_workspace_meta", workspace_id: "id-1", meta_patch: { a: 1, b: { c: 2 } } });
  const [e] = d.run({
    cmd: "update_workspace_meta",
    workspace_id: "id-1",
    meta_patch: { a: null, b: { d: 3 } },
  });
  assert.deepEqual(e, {
    event: "workspace_meta_updated",
    workspace_id: "id-1",
    meta_patch: { a: null, b: { d: 3 } },
    version: 6,
  });
  assert.deepEqual(d.state.workspaces.get("id-1")?.meta, { b: { c: 2, d: 3 } });
  d.run({ cmd: "update_tab_meta", tab_id: "id-2", meta_patch: { title: "x" } });
  assert.deepEqual(d.state.tabs.get("id-2")?.meta, { title: "x" });
  d.run({ cmd: "update_block_meta", block_id: "id-3", meta_patch: { n: [1] } });
  assert.deepEqual(d.state.blocks.get("id-3")?.meta, { n: [1] }, "a non-object target becomes {}");
});

Deno.test("mergePatch: RFC 7386 appendix A cases, and __proto__ stays plain data", () => {
  const cases: [unknown, unknown, unknown][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [["a", "b"], ["c", "d"], ["c", "d"]],
    [{ a: "b" }, ["c"], ["c"]],
    [{ a: "foo" }, null, null],
    [{ a: "foo" }, "bar", "bar"],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, result] of cases) {
    assert.deepEqual(
      mergePatch(target as Json, patch as Json),
      result,
      JSON.stringify([target, patch]),
    );
  }
  const polluted = mergePatch({}, JSON.parse('{"__proto__":{"x":1}}'));
  assert.equal(Object.getPrototypeOf(polluted), Object.prototype);
  assert.deepEqual(Object.keys(polluted as object), ["__proto__"]);
  assert.equal(({} as { x?: number }).x, undefined);
});

Deno.test("the snapshot lists are sorted by id and carry order and metadata", () => {
  const d = new Driver(
    initialState(),
    (() => {
      const ids = ["w-b", "t-z", "t-a", "w-a", "t-m", "b-2", "b-1"];
      return () => ids.shift()!;
    })(),
  );
  d.run({ cmd: "create_workspace", name: "B" }); // w-b
  d.run({ cmd: "create_tab", workspace_id: "w-b", name: "z" }); // t-z (active)
  d.run({ cmd: "create_tab", workspace_id: "w-b", name: "a" }); // t-a
  d.run({ cmd: "create_workspace", name: "A" }); // w-a (no tabs → no active entry)
  d.run({ cmd: "create_tab", workspace_id: "w-b", name: "m" }); // t-m
  d.run({ cmd: "create_block", tab_id: "t-m", meta: { k: 1 } }); // b-2
  d.run({ cmd: "create_block", tab_id: "t-m" }); // b-1
  d.run({ cmd: "update_tab_meta", tab_id: "t-a", meta_patch: { pinned: true } });
  const [snap] = d.run({ cmd: "get_srv_snapshot" });
  assert.deepEqual(snap, {
    event: "srv_snapshot",
    lifecycle: "starting",
    workspaces: [["w-a", "A"], ["w-b", "B"]],
    tabs: [["t-a", "w-b", "a"], ["t-m", "w-b", "m"], ["t-z", "w-b", "z"]],
    active_tabs: [["w-b", "t-z"]],
    blocks: [["b-1", "t-m"], ["b-2", "t-m"]],
    tab_order: { "w-a": [], "w-b": ["t-z", "t-a", "t-m"] },
    block_order: { "t-a": [], "t-m": ["b-2", "b-1"], "t-z": [] },
    meta: {
      workspaces: { "w-a": {}, "w-b": {} },
      tabs: { "t-a": { pinned: true }, "t-m": {}, "t-z": {} },
      blocks: { "b-1": null, "b-2": { k: 1 } },
    },
    version: 10,
  });
  const { event: _event, version: _version, ...view } = snap as unknown as Record<string, unknown>;
  assert.deepEqual(snapshotOf(d.state), view, "snapshotOf is the event without tag and version");
});

Deno.test("every domain event carries enough for evolve alone to rebuild the state", () => {
  const d = withTabs(3);
  d.run({ cmd: "create_workspace", name: "two" }); // id-5
  d.run({ cmd: "create_block", tab_id: "id-3", meta: { a: 1 } }); // id-6
  d.run({
    cmd: "move_tab",
    tab_id: "id-3",
    src_workspace_id: "id-1",
    dst_workspace_id: "id-5",
    dst_index: 0,
  });
  d.run({
    cmd: "move_block",
    block_id: "id-6",
    src_tab_id: "id-3",
    dst_tab_id: "id-2",
    dst_index: 0,
  });
  d.run({ cmd: "reorder_tabs_bulk", workspace_id: "id-1", tab_ids: ["id-4", "id-2"] });
  d.run({ cmd: "update_block_meta", block_id: "id-6", meta_patch: { a: null, b: 2 } });
  d.run({ cmd: "delete_tab", workspace_id: "id-1", tab_id: "id-2" });
  d.run({ cmd: "rename_tab", tab_id: "id-4", name: "four" });
  const rebuilt = d.events.reduce<State>((s, e) => evolve(s, e), initialState());
  assert.deepEqual(rebuilt, d.state);
});
