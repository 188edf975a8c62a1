/**
 * The state half of the reducer: {@linkcode evolve} applies one event to a
 * state. Live traffic and crash recovery share it, so a restart rebuilds
 * exactly what was served.
 *
 * @module
 */

import { patched, type ReducerEvent } from "./decide.ts";
import { storedId } from "./_decide_checks.ts";
import { metaBytes, nameBytes } from "./limits.ts";
import type { Json, JsonObject, LifecyclePhase } from "./protocol.ts";
import {
  type Block,
  CHANGE_GENERATION,
  type ProcessRecord,
  type State,
  type Tab,
  type Workspace,
} from "./state.ts";

/**
 * Exited processes whose records are kept (docs/PROTOCOL.md §10): the most
 * recent ones; a running process is always kept. A constant, not a flag:
 * `evolve` applies it, and replay must forget exactly what live traffic
 * forgot.
 */
export const MAX_EXITED_PROCESSES = 1024;
// ---------------------------------------------------------------------------
// evolve

/**
 * Applies one event to a state and returns the new state; `state` is left
 * as it was (the maps the event touches are copied). Every event with a
 * version moves `eventVersion` to it, so folding the reducer's output
 * reproduces the live version counter.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evolve, initialState } from "@srv/srv";
 *
 * const s = evolve(initialState(), {
 *   event: "workspace_created",
 *   workspace_id: "w1",
 *   name: "main",
 *   version: 1,
 * });
 * assert.equal(s.workspaces.get("w1")?.name, "main");
 * ```
 */
export function evolve(state: State, event: ReducerEvent): State {
  return applyEvent(new Draft(state, false), event);
}

/**
 * Like {@linkcode evolve}, for a caller that owns `state` outright and
 * never looks at an old version again: the state and its maps are updated
 * in place and the same object is returned, so an event costs O(1) and
 * allocates nothing beyond the entities it changes, however large the tree.
 * The server and the store's replay use this; anything that keeps old
 * states must use `evolve`.
 *
 * @example
 * ```ts
 * import { evolveInPlace } from "./evolve.ts";
 * import { initialState } from "./state.ts";
 * let s = initialState();
 * s = evolveInPlace(s, { event: "workspace_created", workspace_id: "w1", name: "a", version: 1 });
 * ```
 */
export function evolveInPlace(state: State, event: ReducerEvent): State {
  return applyEvent(new Draft(state, true), event);
}

/**
 * Like {@linkcode evolveInPlace}, for a state whose maps the caller owns
 * but whose child lists (`tabIds`, `blockIds`) may still belong to another
 * state: an overlay of it, as a batch's draft is (batch.ts). A list is
 * copied the first time it changes, and `copies` remembers the copies
 * across calls, so the next change of that list is made in place.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evolveInPlace, evolveShared } from "./evolve.ts";
 * import { initialState } from "./state.ts";
 * const base = evolveInPlace(
 *   initialState(),
 *   { event: "workspace_created", workspace_id: "w1", name: "a", version: 1 },
 * );
 * const draft = { ...base, workspaces: new Map(base.workspaces) };
 * evolveShared(draft, {
 *   event: "tab_created",
 *   workspace_id: "w1",
 *   tab_id: "t1",
 *   name: "x",
 *   version: 2,
 * }, new Set());
 * assert.deepEqual(draft.workspaces.get("w1")?.tabIds, ["t1"]);
 * assert.deepEqual(base.workspaces.get("w1")?.tabIds, []);
 * ```
 */
export function evolveShared(
  state: State,
  event: ReducerEvent,
  copies: Set<readonly string[]>,
): State {
  return applyEvent(new Draft(state, true, copies), event);
}

/**
 * A state being changed: maps are copied on first write unless owned, and
 * so are the ordered child lists (`tabIds`, `blockIds`). A list is changed
 * in place (push, splice) once this draft owns it: always when the caller
 * gave the state up, else from the copy this draft made of it. So an
 * append or a move costs O(1) and a memmove on the server's path, never a
 * copy of a 50k-block tab per event, and nothing reachable from a base the
 * caller still holds is ever mutated (a batch decided against an overlay
 * of that base relies on it).
 */
class Draft {
  readonly base: State;
  readonly #owned: boolean;
  /** Child lists this draft copied, hence owns (only when it does not own them all). */
  #fresh?: Set<readonly string[]>;
  #workspaces?: Map<string, Workspace>;
  #tabs?: Map<string, Tab>;
  #blocks?: Map<string, Block>;
  #processes?: Map<number, ProcessRecord>;
  #lifecycle?: LifecyclePhase;
  #nextClientId?: number;
  #contentBytes?: number;
  #changedAt?: Map<string, number>;
  #changedBefore?: ReadonlyMap<string, number>;
  #changesKnownFrom?: number;

  /** Child lists belong to the caller too (not so for {@linkcode evolveShared}). */
  readonly #ownsLists: boolean;

  constructor(base: State, owned: boolean, copies?: Set<readonly string[]>) {
    this.base = base;
    this.#owned = owned;
    this.#ownsLists = owned && copies === undefined;
    this.#fresh = copies;
  }

  #writable<K, V>(map: ReadonlyMap<K, V>): Map<K, V> {
    return this.#owned ? map as Map<K, V> : new Map(map);
  }

  workspaces(): Map<string, Workspace> {
    return this.#workspaces ??= this.#writable(this.base.workspaces);
  }
  tabs(): Map<string, Tab> {
    return this.#tabs ??= this.#writable(this.base.tabs);
  }
  blocks(): Map<string, Block> {
    return this.#blocks ??= this.#writable(this.base.blocks);
  }
  processes(): Map<number, ProcessRecord> {
    return this.#processes ??= this.#writable(this.base.processes);
  }
  setLifecycle(phase: LifecyclePhase): void {
    this.#lifecycle = phase;
  }
  setNextClientId(id: number): void {
    this.#nextClientId = id;
  }
  /** Moves the running total of names and metas (`State.contentBytes`). */
  addBytes(delta: number): void {
    this.#contentBytes = (this.#contentBytes ?? this.base.contentBytes) + delta;
  }

  /**
   * Records that an entity changed at `version` (§11.3). One id per call
   * and one `Map.set`: this runs for every tree event, the hot path
   * included. A generation that outgrows {@linkcode CHANGE_GENERATION}
   * becomes the previous one, and the records only the dropped generation
   * held are forgotten: the floor rises to the newest of them.
   */
  changed(version: number, id: string): void {
    const at = this.#changedAt ??= this.#writable(this.base.changedAt);
    const size = at.size;
    at.set(id, version);
    if (at.size > size && at.size > CHANGE_GENERATION) {
      let floor = this.#changesKnownFrom ?? this.base.changesKnownFrom;
      for (const [old, v] of this.#changedBefore ?? this.base.changedBefore) {
        if (v > floor && !at.has(old)) floor = v;
      }
      this.#changesKnownFrom = floor;
      this.#changedBefore = at;
      this.#changedAt = new Map();
    }
  }
  /** {@linkcode Draft.changed} for each of `ids`. */
  changedAll(version: number, ids: readonly string[]): void {
    for (const id of ids) this.changed(version, id);
  }

  /** The string an id is stored as, to search a child list with (see `storedId`). */
  blockKey(id: string): string {
    return storedId(this.#blocks ?? this.base.blocks, id);
  }
  tabKey(id: string): string {
    return storedId(this.#tabs ?? this.base.tabs, id);
  }

  /** An entity as this draft has it: once a map is copied, only the copy counts. */
  workspace(id: string): Workspace | undefined {
    return (this.#workspaces ?? this.base.workspaces).get(id);
  }
  tab(id: string): Tab | undefined {
    return (this.#tabs ?? this.base.tabs).get(id);
  }
  block(id: string): Block | undefined {
    return (this.#blocks ?? this.base.blocks).get(id);
  }

  /** Adds (or replaces) an entity, keeping the byte total exact. */
  putWorkspace(ws: Workspace): void {
    this.addBytes(growthOf(this.workspace(ws.id), ws));
    this.workspaces().set(ws.id, ws);
  }
  putTab(tab: Tab): void {
    this.addBytes(growthOf(this.tab(tab.id), tab));
    this.tabs().set(tab.id, tab);
  }
  putBlock(block: Block): void {
    const old = this.block(block.id);
    if (old?.meta !== block.meta) {
      this.addBytes(
        metaBytes(block.id, block.meta) - (old === undefined ? 0 : metaBytes(old.id, old.meta)),
      );
    }
    this.blocks().set(block.id, block);
  }
  /** Removes an entity if present, keeping the byte total exact. */
  removeWorkspace(id: string): void {
    const old = this.workspace(id);
    if (old === undefined) return;
    this.addBytes(-sizeOf(old));
    this.workspaces().delete(id);
  }
  removeTab(id: string): void {
    const old = this.tab(id);
    if (old === undefined) return;
    this.addBytes(-sizeOf(old));
    this.tabs().delete(id);
  }
  removeBlock(id: string): void {
    const old = this.block(id);
    if (old === undefined) return;
    this.addBytes(-metaBytes(old.id, old.meta));
    this.blocks().delete(id);
  }

  /** `ids` as a list this draft may change in place. */
  #list(ids: readonly string[]): string[] {
    if (this.#ownsLists || this.#fresh?.has(ids)) return ids as string[];
    const copy = ids.slice();
    (this.#fresh ??= new Set()).add(copy);
    return copy;
  }

  /** `ids` with `id` added last. */
  appended(ids: readonly string[], id: string): string[] {
    const list = this.#list(ids);
    list.push(id);
    return list;
  }

  /** `ids` without `id` (unchanged, not copied, when it is not there). */
  without(ids: readonly string[], id: string): readonly string[] {
    const at = ids.indexOf(id);
    if (at < 0) return ids;
    const list = this.#list(ids);
    list.splice(at, 1);
    return list;
  }

  /** `ids` with `id` taken out (if there) and put back at `index` (clamped). */
  movedTo(ids: readonly string[], id: string, index: number): string[] {
    const list = this.#list(ids);
    const at = list.indexOf(id);
    if (at >= 0) list.splice(at, 1);
    list.splice(Math.min(index, list.length), 0, id);
    return list;
  }

  /** `ids` with `id`, which it does not hold, inserted at `index` (clamped). */
  insertedAt(ids: readonly string[], id: string, index: number): string[] {
    const list = this.#list(ids);
    list.splice(Math.min(index, list.length), 0, id);
    return list;
  }

  /** Changes one workspace if it exists. */
  patchWorkspace(id: string, change: (ws: Workspace) => Partial<Workspace>): void {
    const current = this.workspace(id);
    if (current !== undefined) this.putWorkspace({ ...current, ...change(current) });
  }
  patchTab(id: string, change: (tab: Tab) => Partial<Tab>): void {
    const current = this.tab(id);
    if (current !== undefined) this.putTab({ ...current, ...change(current) });
  }
  patchBlock(id: string, change: (block: Block) => Partial<Block>): void {
    const current = this.block(id);
    if (current !== undefined) this.putBlock({ ...current, ...change(current) });
  }

  done(version: number): State {
    const base = this.base;
    const eventVersion = version > base.eventVersion ? version : base.eventVersion;
    if (this.#owned) {
      // The caller gave the state up: update it in place, allocate nothing.
      const own = base as { -readonly [K in keyof State]: State[K] };
      if (this.#lifecycle !== undefined) own.lifecycle = this.#lifecycle;
      if (this.#nextClientId !== undefined) own.nextClientId = this.#nextClientId;
      if (this.#contentBytes !== undefined) own.contentBytes = this.#contentBytes;
      if (this.#changesKnownFrom !== undefined) own.changesKnownFrom = this.#changesKnownFrom;
      // A generation turned over: new maps, not the old ones changed in place.
      if (this.#changedAt !== undefined) own.changedAt = this.#changedAt;
      if (this.#changedBefore !== undefined) own.changedBefore = this.#changedBefore;
      own.eventVersion = eventVersion;
      return own;
    }
    return {
      lifecycle: this.#lifecycle ?? base.lifecycle,
      processes: this.#processes ?? base.processes,
      eventVersion,
      nextClientId: this.#nextClientId ?? base.nextClientId,
      workspaces: this.#workspaces ?? base.workspaces,
      tabs: this.#tabs ?? base.tabs,
      blocks: this.#blocks ?? base.blocks,
      contentBytes: this.#contentBytes ?? base.contentBytes,
      changedAt: this.#changedAt ?? base.changedAt,
      changedBefore: this.#changedBefore ?? base.changedBefore,
      changesKnownFrom: this.#changesKnownFrom ?? base.changesKnownFrom,
    };
  }
}

/** What a workspace or tab adds to `State.contentBytes`. */
function sizeOf(
  entity: { readonly id: string; readonly name: string; readonly meta: Json },
): number {
  return nameBytes(entity.name) + metaBytes(entity.id, entity.meta);
}

/**
 * How much `contentBytes` grows when `next` replaces `old` (or is new).
 * Most changes (order, active tab, moves) touch neither name nor meta and
 * cost nothing to measure.
 */
function growthOf(
  old: { readonly id: string; readonly name: string; readonly meta: Json } | undefined,
  next: { readonly id: string; readonly name: string; readonly meta: Json },
): number {
  if (old === undefined) return sizeOf(next);
  const names = old.name === next.name ? 0 : nameBytes(next.name) - nameBytes(old.name);
  return old.meta === next.meta
    ? names
    : names + metaBytes(next.id, next.meta) - metaBytes(old.id, old.meta);
}

/**
 * Forgets the longest-exited process once more than
 * {@linkcode MAX_EXITED_PROCESSES} have exited. The map lists exited pids
 * in the order they exited (see `process_exited`), so the first exited
 * entry is the one to go.
 */
function forgetOldestExited(processes: Map<number, ProcessRecord>): void {
  if (processes.size <= MAX_EXITED_PROCESSES) return;
  let exited = 0;
  let oldest: number | null = null;
  for (const [pid, record] of processes) {
    if (record.status !== "exited") continue;
    exited++;
    oldest ??= pid;
  }
  if (exited > MAX_EXITED_PROCESSES && oldest !== null) processes.delete(oldest);
}

function applyEvent(d: Draft, event: ReducerEvent): State {
  const state = d.base;
  const v = event.version;
  switch (event.event) {
    case "process_spawned":
      d.processes().set(event.pid, {
        kind: event.kind,
        status: "running",
        exitCode: null,
        clientVersion: event.client_version,
      });
      break;
    case "process_exited": {
      const record = state.processes.get(event.pid);
      if (record !== undefined) {
        const processes = d.processes();
        // Re-inserted rather than updated, so the map's order is the order
        // of exits: the oldest exited pid is forgotten first.
        processes.delete(event.pid);
        processes.set(event.pid, { ...record, status: "exited", exitCode: event.code });
        forgetOldestExited(processes);
      }
      break;
    }
    case "lifecycle_phase_changed":
      d.setLifecycle(event.to);
      break;
    case "registered":
      d.setNextClientId(Math.max(state.nextClientId, event.client_id + 1));
      break;
    case "pong":
    case "error":
    case "srv_snapshot":
      break;
    case "workspace_created":
      d.changed(v, event.workspace_id);
      d.putWorkspace({
        id: event.workspace_id,
        name: event.name,
        tabIds: [],
        activeTabId: null,
        meta: {},
      });
      break;
    case "workspace_deleted": {
      const ws = state.workspaces.get(event.workspace_id);
      if (ws === undefined) break;
      d.changed(v, ws.id);
      d.changedAll(v, ws.tabIds);
      d.changedAll(v, event.block_ids);
      for (const tabId of ws.tabIds) {
        for (const blockId of d.tab(tabId)?.blockIds ?? []) d.removeBlock(blockId);
        d.removeTab(tabId);
      }
      for (const blockId of event.block_ids) d.removeBlock(blockId);
      d.removeWorkspace(ws.id);
      break;
    }
    case "workspace_renamed":
      d.changed(v, event.workspace_id);
      d.patchWorkspace(event.workspace_id, () => ({ name: event.name }));
      break;
    case "tab_created": {
      if (!state.workspaces.has(event.workspace_id)) break;
      d.changed(v, event.workspace_id);
      d.changed(v, event.tab_id);
      d.patchWorkspace(
        event.workspace_id,
        (ws) => ({ tabIds: d.appended(ws.tabIds, event.tab_id) }),
      );
      d.putTab({
        id: event.tab_id,
        workspaceId: event.workspace_id,
        name: event.name,
        blockIds: [],
        meta: {},
      });
      break;
    }
    case "tab_deleted": {
      d.changed(v, event.workspace_id);
      d.changed(v, event.tab_id);
      d.changedAll(v, event.block_ids);
      for (const blockId of state.tabs.get(event.tab_id)?.blockIds ?? []) d.removeBlock(blockId);
      for (const blockId of event.block_ids) d.removeBlock(blockId);
      d.patchWorkspace(event.workspace_id, (ws) => ({
        tabIds: d.without(ws.tabIds, d.tabKey(event.tab_id)),
        activeTabId: ws.activeTabId === event.tab_id ? null : ws.activeTabId,
      }));
      d.removeTab(event.tab_id);
      break;
    }
    case "tab_renamed":
      d.changed(v, event.tab_id);
      d.patchTab(event.tab_id, () => ({ name: event.name }));
      break;
    case "active_tab_changed":
      d.changed(v, event.workspace_id);
      d.patchWorkspace(event.workspace_id, () => ({ activeTabId: event.tab_id }));
      break;
    case "tab_reordered":
      d.changed(v, event.workspace_id);
      d.changed(v, event.tab_id);
      d.patchWorkspace(event.workspace_id, (ws) => ({
        tabIds: d.movedTo(ws.tabIds, d.tabKey(event.tab_id), event.new_index),
      }));
      break;
    case "tabs_reordered_bulk":
      d.changed(v, event.workspace_id);
      d.changedAll(v, event.tab_ids);
      d.patchWorkspace(event.workspace_id, () => ({ tabIds: [...event.tab_ids] }));
      break;
    case "tab_moved":
      d.changed(v, event.src_workspace_id);
      d.changed(v, event.dst_workspace_id);
      d.changed(v, event.tab_id);
      d.patchWorkspace(event.src_workspace_id, (ws) => ({
        tabIds: d.without(ws.tabIds, d.tabKey(event.tab_id)),
        activeTabId: event.new_src_active_tab_id,
      }));
      d.patchWorkspace(event.dst_workspace_id, (ws) => ({
        tabIds: d.movedTo(ws.tabIds, d.tabKey(event.tab_id), event.dst_index),
        activeTabId: event.new_dst_active_tab_id,
      }));
      d.patchTab(event.tab_id, () => ({ workspaceId: event.dst_workspace_id }));
      break;
    case "block_created":
      if (!state.tabs.has(event.tab_id)) break;
      d.changed(v, event.tab_id);
      d.changed(v, event.block_id);
      d.patchTab(event.tab_id, (tab) => ({ blockIds: d.appended(tab.blockIds, event.block_id) }));
      d.putBlock({ id: event.block_id, tabId: event.tab_id, meta: event.meta });
      break;
    case "block_deleted":
      d.changed(v, event.tab_id);
      d.changed(v, event.block_id);
      d.patchTab(
        event.tab_id,
        (tab) => ({ blockIds: d.without(tab.blockIds, d.blockKey(event.block_id)) }),
      );
      d.removeBlock(event.block_id);
      break;
    case "block_moved": {
      d.changed(v, event.src_tab_id);
      d.changed(v, event.dst_tab_id);
      d.changed(v, event.block_id);
      const key = d.blockKey(event.block_id);
      d.patchTab(event.src_tab_id, (tab) => ({ blockIds: d.without(tab.blockIds, key) }));
      // A block is in one tab, so once out of the source it is in no list:
      // insert it without a second scan of the destination.
      d.patchTab(event.dst_tab_id, (tab) => ({
        blockIds: d.insertedAt(tab.blockIds, key, event.dst_index),
      }));
      d.patchBlock(event.block_id, () => ({ tabId: event.dst_tab_id }));
      break;
    }
    case "workspace_meta_updated":
      d.changed(v, event.workspace_id);
      d.patchWorkspace(event.workspace_id, (ws) => ({
        meta: patched(ws.meta, event) as JsonObject,
      }));
      break;
    case "tab_meta_updated":
      d.changed(v, event.tab_id);
      d.patchTab(event.tab_id, (tab) => ({
        meta: patched(tab.meta, event) as JsonObject,
      }));
      break;
    case "block_meta_updated":
      d.changed(v, event.block_id);
      d.patchBlock(event.block_id, (block) => ({ meta: patched(block.meta, event) }));
      break;
    default: {
      // An event forgotten here would compile and split live state from
      // restart replay; this makes it a compile error.
      const unhandled: never = event;
      throw new Error(`evolve: unknown event ${(unhandled as ReducerEvent).event}`);
    }
  }
  return d.done(event.version);
}
