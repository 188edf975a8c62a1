// Seeded random commands for property tests: the reducer's (domain_property_test.ts)
// and the store's (store_property_test.ts, against a real server).
import type { DomainCommand, JsonObject, ReducerCommand } from "../srv/core/protocol.ts";
import type { State } from "../srv/core/state.ts";

/** mulberry32, so every run can be replayed: the bench's generator, one copy. */
export { seededRandom as prng } from "../bench/_rng.ts";

/**
 * A random domain command against `state`: one id in five unknown, so error
 * and no-op paths run too. `patch` overrides the meta patches.
 */
export function randomCommand(
  state: State,
  rnd: () => number,
  customPatch?: () => JsonObject,
): ReducerCommand {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)];
  const unknown = () => `ghost-${Math.floor(rnd() * 3)}`;
  // One id in five is unknown, so error and no-op paths are exercised too.
  const anyOf = (ids: Iterable<string>) => {
    const list = [...ids];
    return list.length === 0 || rnd() < 0.2 ? unknown() : pick(list);
  };
  const ws = () => anyOf(state.workspaces.keys());
  const tab = () => anyOf(state.tabs.keys());
  const block = () => anyOf(state.blocks.keys());
  const index = () => Math.floor(rnd() * 6);
  const wsOfTab = (t: string) => state.tabs.get(t)?.workspaceId ?? ws();
  const tabOfBlock = (b: string) => state.blocks.get(b)?.tabId ?? tab();
  const patch = customPatch ??
    ((): JsonObject =>
      pick<JsonObject>([{ a: 1 }, { a: null }, { b: { c: index() } }, { b: { c: null } }, {}]));
  const commands: (() => DomainCommand)[] = [
    () => ({ cmd: "create_workspace", name: pick(["", "w", "main"]) }),
    () => ({ cmd: "delete_workspace", workspace_id: ws(), force: rnd() < 0.5 }),
    () => ({ cmd: "rename_workspace", workspace_id: ws(), name: pick(["a", "b"]) }),
    () => ({ cmd: "create_tab", workspace_id: ws(), name: pick(["", "t"]) }),
    () => ({ cmd: "create_tab", workspace_id: ws(), name: "t2" }),
    () => {
      const t = tab();
      return {
        cmd: "delete_tab",
        workspace_id: rnd() < 0.8 ? wsOfTab(t) : ws(),
        tab_id: t,
        force: rnd() < 0.5,
      };
    },
    () => ({ cmd: "rename_tab", tab_id: tab(), name: pick(["x", "y"]) }),
    () => {
      const t = tab();
      return { cmd: "set_active_tab", workspace_id: rnd() < 0.8 ? wsOfTab(t) : ws(), tab_id: t };
    },
    () => {
      const t = tab();
      return { cmd: "reorder_tab", workspace_id: wsOfTab(t), tab_id: t, new_index: index() };
    },
    () => {
      const w = ws();
      const ids = [...(state.workspaces.get(w)?.tabIds ?? [])].sort(() => rnd() - 0.5);
      if (rnd() < 0.2) ids.pop();
      return { cmd: "reorder_tabs_bulk", workspace_id: w, tab_ids: ids };
    },
    () => {
      const t = tab();
      return {
        cmd: "move_tab",
        tab_id: t,
        src_workspace_id: rnd() < 0.85 ? wsOfTab(t) : ws(),
        dst_workspace_id: ws(),
        dst_index: index(),
      };
    },
    () => ({ cmd: "create_block", tab_id: tab(), meta: rnd() < 0.5 ? null : { n: index() } }),
    () => ({ cmd: "create_block", tab_id: tab() }),
    () => {
      const b = block();
      return { cmd: "delete_block", tab_id: rnd() < 0.8 ? tabOfBlock(b) : tab(), block_id: b };
    },
    () => {
      const b = block();
      return {
        cmd: "move_block",
        block_id: b,
        src_tab_id: rnd() < 0.85 ? tabOfBlock(b) : tab(),
        dst_tab_id: tab(),
        dst_index: index(),
      };
    },
    () => ({ cmd: "update_workspace_meta", workspace_id: ws(), meta_patch: patch() }),
    () => ({ cmd: "update_tab_meta", tab_id: tab(), meta_patch: patch() }),
    () => ({ cmd: "update_block_meta", block_id: block(), meta_patch: patch() }),
  ];
  return pick(commands)();
}
