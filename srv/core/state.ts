/**
 * The server's state (docs/PROTOCOL.md §6) and its `srv_snapshot` view. State is
 * immutable: the reducer's `evolve` returns a new value and shares whatever
 * did not change.
 *
 * @module
 */

import type {
  ClientKind,
  Json,
  JsonObject,
  LifecyclePhase,
  SnapshotMeta,
  SrvSnapshotEvent,
} from "./protocol.ts";
import { measure } from "./limits.ts";

/** What srv knows about a client process. */
export interface ProcessRecord {
  /** The kind it registered as. */
  readonly kind: ClientKind;
  /** `running` until its goodbye (explicit or synthetic), then `exited`. */
  readonly status: "running" | "exited";
  /** Exit code once exited; srv always records 0. */
  readonly exitCode: number | null;
  /** The version string it registered with. */
  readonly clientVersion: string;
}

/** A workspace: an ordered list of tabs, one of them active. */
export interface Workspace {
  /** The workspace's id. */
  readonly id: string;
  /** Its name. */
  readonly name: string;
  /** Its tabs, in order. */
  readonly tabIds: readonly string[];
  /** Its active tab; null when it has none. */
  readonly activeTabId: string | null;
  /** Its metadata (a JSON object). */
  readonly meta: JsonObject;
}

/** A tab: an ordered list of blocks, inside one workspace. */
export interface Tab {
  /** The tab's id. */
  readonly id: string;
  /** The workspace that holds it. */
  readonly workspaceId: string;
  /** Its name. */
  readonly name: string;
  /** Its blocks, in order. */
  readonly blockIds: readonly string[];
  /** Its metadata (a JSON object). */
  readonly meta: JsonObject;
}

/** A block, inside one tab; its metadata may be any JSON value. */
export interface Block {
  /** The block's id. */
  readonly id: string;
  /** The tab that holds it. */
  readonly tabId: string;
  /** Its metadata (any JSON). */
  readonly meta: Json;
}

/** Everything the reducer decides on. */
export interface State {
  /** The server's lifecycle phase. */
  readonly lifecycle: LifecyclePhase;
  /** Every client process that registered, by pid. */
  readonly processes: ReadonlyMap<number, ProcessRecord>;
  /** Version of the newest event the reducer issued (0 before the first). */
  readonly eventVersion: number;
  /** `client_id` the next successful `register` gets (first is 1). */
  readonly nextClientId: number;
  /** Every workspace, by id. */
  readonly workspaces: ReadonlyMap<string, Workspace>;
  /** Every tab, by id. */
  readonly tabs: ReadonlyMap<string, Tab>;
  /** Every block, by id. */
  readonly blocks: ReadonlyMap<string, Block>;
  /**
   * UTF-8 bytes of every name plus compact JSON bytes of every meta: what
   * `--max-state-bytes` bounds. `evolve` keeps it up to date, so live and
   * replayed states agree; {@linkcode measure} recomputes it.
   */
  readonly contentBytes: number;
  /**
   * Protocol 2 (§11.3): the version each workspace, tab and block (live or
   * deleted) last changed at, for conditional batches: the current
   * generation of records. `evolve` keeps it, so a replay rebuilds it.
   * Once it holds more than {@linkcode CHANGE_GENERATION} ids it becomes
   * {@linkcode State.changedBefore} and a new one starts.
   */
  readonly changedAt: ReadonlyMap<string, number>;
  /** The previous generation of {@linkcode State.changedAt}; ids changed since are in both. */
  readonly changedBefore: ReadonlyMap<string, number>;
  /**
   * An id in neither generation changed at this version or before (0:
   * never). Raised to the newest record a rotation forgets, and set to
   * where a restart's tables stand.
   */
  readonly changesKnownFrom: number;
}

/**
 * Ids one generation of change records holds, so srv remembers at least
 * the 65,536 most recently changed ids and at most twice that. A record
 * costs one `Map.set` per change (no reordering, which cost the hot path a
 * fifth of its speed); forgetting a generation costs one walk of it per
 * {@linkcode CHANGE_GENERATION} new ids.
 */
export const CHANGE_GENERATION = 65_536;

/**
 * The version an entity last changed at, as far as `state` knows: exact
 * when recorded, else {@linkcode State.changesKnownFrom} (it changed then
 * or before, or never).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initialState, lastChangeOf } from "@srv/srv";
 *
 * assert.equal(lastChangeOf(initialState(), "no-such-id"), 0);
 * ```
 */
export function lastChangeOf(state: State, id: string): number {
  return state.changedAt.get(id) ?? state.changedBefore.get(id) ?? state.changesKnownFrom;
}

/**
 * The state of a fresh server: `starting`, nothing registered, no events.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initialState } from "@srv/srv";
 *
 * assert.equal(initialState().eventVersion, 0);
 * ```
 */
export function initialState(): State {
  return {
    lifecycle: "starting",
    processes: new Map(),
    eventVersion: 0,
    nextClientId: 1,
    workspaces: new Map(),
    tabs: new Map(),
    blocks: new Map(),
    contentBytes: 0,
    changedAt: new Map(),
    changedBefore: new Map(),
    changesKnownFrom: 0,
  };
}

function byKey<T>(entries: Iterable<[string, T]>): [string, T][] {
  return [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The fields of `srv_snapshot` before `version`. */
export type SnapshotView = Omit<SrvSnapshotEvent, "event" | "version">;

/**
 * The `srv_snapshot` view of a state: tuple lists sorted by their first
 * element (docs/PROTOCOL.md §4), plus the ordered children and metadata of every
 * entity so a client can rebuild the whole tree from it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initialState, snapshotOf } from "@srv/srv";
 *
 * assert.deepEqual(snapshotOf(initialState()).workspaces, []);
 * ```
 */
export function snapshotOf(state: State): SnapshotView {
  const workspaces = byKey(state.workspaces);
  const tabs = byKey(state.tabs);
  const blocks = byKey(state.blocks);
  const meta: SnapshotMeta = { workspaces: {}, tabs: {}, blocks: {} };
  const tabOrder: Record<string, string[]> = {};
  const blockOrder: Record<string, string[]> = {};
  const activeTabs: [string, string][] = [];
  for (const [id, w] of workspaces) {
    if (w.activeTabId !== null) activeTabs.push([id, w.activeTabId]);
    tabOrder[id] = [...w.tabIds];
    meta.workspaces[id] = w.meta;
  }
  for (const [id, t] of tabs) {
    blockOrder[id] = [...t.blockIds];
    meta.tabs[id] = t.meta;
  }
  for (const [id, b] of blocks) meta.blocks[id] = b.meta;
  return {
    lifecycle: state.lifecycle,
    workspaces: workspaces.map(([id, w]) => [id, w.name]),
    tabs: tabs.map(([id, t]) => [id, t.workspaceId, t.name]),
    active_tabs: activeTabs,
    blocks: blocks.map(([id, b]) => [id, b.tabId]),
    tab_order: tabOrder,
    block_order: blockOrder,
    meta,
  };
}

/**
 * The state a `srv_snapshot` describes: the inverse of
 * {@linkcode snapshotOf}, for clients that keep a mirror of the tree
 * (take a snapshot, then `evolve` it with every later event). Process
 * records are not part of a snapshot, so `processes` is empty; without the
 * ordering extensions (`tab_order`, `block_order`) children come in id
 * order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initialState, snapshotOf, stateFromSnapshot } from "@srv/srv";
 *
 * const mirror = stateFromSnapshot({ ...snapshotOf(initialState()), version: 7 });
 * assert.equal(mirror.eventVersion, 7);
 * ```
 */
export function stateFromSnapshot(
  snapshot: SnapshotView & { readonly version: number | bigint },
): State {
  const active = new Map(snapshot.active_tabs);
  const tabsOf = new Map<string, string[]>();
  for (const [tabId, wsId] of snapshot.tabs) {
    tabsOf.set(wsId, [...(tabsOf.get(wsId) ?? []), tabId]);
  }
  const blocksOf = new Map<string, string[]>();
  for (const [blockId, tabId] of snapshot.blocks) {
    blocksOf.set(tabId, [...(blocksOf.get(tabId) ?? []), blockId]);
  }
  const workspaces = new Map<string, Workspace>();
  for (const [id, name] of snapshot.workspaces) {
    workspaces.set(id, {
      id,
      name,
      tabIds: [...(snapshot.tab_order?.[id] ?? tabsOf.get(id) ?? [])],
      activeTabId: active.get(id) ?? null,
      meta: snapshot.meta?.workspaces[id] ?? {},
    });
  }
  const tabs = new Map<string, Tab>();
  for (const [id, workspaceId, name] of snapshot.tabs) {
    tabs.set(id, {
      id,
      workspaceId,
      name,
      blockIds: [...(snapshot.block_order?.[id] ?? blocksOf.get(id) ?? [])],
      meta: snapshot.meta?.tabs[id] ?? {},
    });
  }
  const blocks = new Map<string, Block>();
  for (const [id, tabId] of snapshot.blocks) {
    blocks.set(id, { id, tabId, meta: snapshot.meta?.blocks[id] ?? null });
  }
  return {
    lifecycle: snapshot.lifecycle,
    processes: new Map(),
    eventVersion: Number(snapshot.version),
    nextClientId: 1,
    workspaces,
    tabs,
    blocks,
    contentBytes: measure({ workspaces, tabs, blocks }),
    // A mirror knows nothing of what changed before the snapshot.
    changedAt: new Map(),
    changedBefore: new Map(),
    changesKnownFrom: Number(snapshot.version),
  };
}
