/**
 * The decision half of the reducer: {@linkcode decide} turns a command into
 * events without touching state. No I/O, no clock, no randomness: new ids
 * and the size limits come from the {@linkcode ReducerContext}.
 *
 * @module
 */

import {
  clipText,
  DEFAULT_LIMITS,
  jsonBytes,
  type Limits,
  MAX_ERROR_MESSAGE_CHARS,
  metaBytes,
  nameBytes,
  rememberMetaBytes,
  utf8Bytes,
} from "./limits.ts";
import { mergePatch } from "./merge_patch.ts";
import {
  type ErrorEvent,
  type Json,
  type JsonObject,
  type LauncherCommand,
  type LoggedEvent,
  PROTOCOL_EXTENSIONS_VERSION,
  type SingleCommand,
  type SrvSnapshotEvent,
} from "./protocol.ts";
import { snapshotOf, type State } from "./state.ts";
import {
  countRefusal,
  EMPTY_META,
  findTabIn,
  growthRefusal,
  isFlatWithoutNulls,
  nameRefusal,
  over,
  permutationProblem,
  renameRefusal,
  storedTabId,
  successorOf,
  takenRefusal,
} from "./_decide_checks.ts";

/** What the reducer may emit: logged events, broadcast errors and snapshots. */
export type ReducerEvent = LoggedEvent | ErrorEvent | SrvSnapshotEvent;

/**
 * Who the server is, as `registered` reports it (docs/PROTOCOL.md §5): its pid,
 * its version and this run's instance id.
 */
export interface LauncherIdentity {
  /** The server's process id (`registered.launcher_pid`). */
  readonly pid: number;
  /** The server's version (`registered.launcher_version`). */
  readonly version: string;
  /** Fresh for every server start (`registered.instance_id`). */
  readonly instanceId: string;
}

/**
 * Outside a server (a pure test, a tool folding commands) nobody launched
 * anything: `registered` then names pid 0, version "" and instance "".
 */
const NO_LAUNCHER: LauncherIdentity = { pid: 0, version: "", instanceId: "" };

/**
 * What the reducer needs from outside: the connection's pid, the server's
 * identity, fresh ids, the limits.
 */
export interface ReducerContext {
  /** The pid the sending connection registered with, or null. `goodbye` uses it. */
  readonly registeredPid: number | null;
  /**
   * The server, for `registered`: the event is final when decided, so what
   * is logged, broadcast and replayed is what `decide` returned. Pid 0 and
   * empty strings when absent.
   */
  readonly identity?: LauncherIdentity;
  /** Mints a new id (lowercase UUIDv4 in the server; anything unique in tests). */
  newId(): string;
  /** The size caps of docs/PROTOCOL.md §10; {@linkcode DEFAULT_LIMITS} when absent. */
  readonly limits?: Limits;
  /**
   * Most bytes a `batch`'s events may take, encoded (docs/PROTOCOL.md §11.3):
   * they are queued to every connection in one turn, so more than a
   * connection may hold unread would evict even one that reads. No bound
   * when absent.
   */
  readonly maxBatchBytes?: number;
}
/**
 * Decides which events a command causes, without changing `state`. Every
 * event takes the next version; the first ever is 1 (docs/PROTOCOL.md §6).
 * `get_events` and `get_server_info` are the server's (§5 step 4) and
 * never reach here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decide, initialState } from "@srv/srv";
 *
 * const ctx = { registeredPid: null, newId: () => crypto.randomUUID() };
 * assert.deepEqual(decide(initialState(), { cmd: "ping", nonce: 7 }, ctx), [
 *   { event: "pong", nonce: 7, version: 1 },
 * ]);
 * ```
 */
export function decide(
  state: State,
  command: SingleCommand,
  ctx: ReducerContext,
): ReducerEvent[] {
  const d = new Decision(state.eventVersion);
  const limits = ctx.limits ?? DEFAULT_LIMITS;
  switch (command.cmd) {
    case "register": {
      const { kind, pid } = command;
      if (state.processes.get(pid)?.status === "running") {
        return d.error("already_registered", `pid ${pid} is already registered with srv`);
      }
      d.push({
        event: "process_spawned",
        pid,
        kind,
        client_version: command.version,
        version: d.next(),
      });
      if (state.lifecycle === "starting") {
        d.push({
          event: "lifecycle_phase_changed",
          from: "starting",
          to: "running",
          version: d.next(),
        });
      }
      const launcher = ctx.identity ?? NO_LAUNCHER;
      d.push({
        event: "registered",
        client_id: state.nextClientId,
        launcher_pid: launcher.pid,
        launcher_version: launcher.version,
        instance_id: launcher.instanceId,
        protocol: PROTOCOL_EXTENSIONS_VERSION,
        version: d.next(),
      });
      return d.events;
    }
    case "ping":
      return d.push({ event: "pong", nonce: command.nonce, version: d.next() });
    case "goodbye": {
      const pid = ctx.registeredPid;
      if (pid === null || state.processes.get(pid)?.status !== "running") return d.events;
      return d.push({ event: "process_exited", pid, code: 0, version: d.next() });
    }
    case "get_srv_snapshot":
      return d.push({ event: "srv_snapshot", ...snapshotOf(state), version: d.next() });
    case "create_workspace": {
      const refused = takenRefusal("CreateWorkspace", state, command.workspace_id) ??
        nameRefusal("CreateWorkspace", command.name, limits) ??
        countRefusal("CreateWorkspace", state.workspaces.size, "workspaces", limits) ??
        growthRefusal("CreateWorkspace", state, nameBytes(command.name) + EMPTY_META, limits);
      if (refused !== null) return d.error("invalid_command", refused);
      return d.push({
        event: "workspace_created",
        workspace_id: command.workspace_id ?? ctx.newId(),
        name: command.name,
        version: d.next(),
      });
    }
    case "delete_workspace": {
      // `force` is accepted for compatibility; a workspace delete always
      // cascades, like the reference.
      const ws = state.workspaces.get(command.workspace_id);
      if (ws === undefined) return d.events;
      const blockIds = ws.tabIds.flatMap((t) => state.tabs.get(t)?.blockIds ?? []);
      return d.push({
        event: "workspace_deleted",
        workspace_id: ws.id,
        block_ids: blockIds,
        version: d.next(),
      });
    }
    case "rename_workspace": {
      const ws = state.workspaces.get(command.workspace_id);
      if (ws === undefined) {
        return d.error(
          "invalid_command",
          `RenameWorkspace: workspace not found: ${command.workspace_id}`,
        );
      }
      if (ws.name === command.name) return d.events;
      const refused = nameRefusal("RenameWorkspace", command.name, limits) ??
        renameRefusal("RenameWorkspace", state, ws.name, command.name, limits);
      if (refused !== null) return d.error("invalid_command", refused);
      return d.push({
        event: "workspace_renamed",
        workspace_id: ws.id,
        name: command.name,
        version: d.next(),
      });
    }
    case "create_tab": {
      const ws = state.workspaces.get(command.workspace_id);
      if (ws === undefined) {
        return d.error(
          "invalid_command",
          `CreateTab: workspace not found: ${command.workspace_id}`,
        );
      }
      // An empty name gets the reference's default, "tab<N>".
      const name = command.name === "" ? `tab${ws.tabIds.length + 1}` : command.name;
      const refused = takenRefusal("CreateTab", state, command.tab_id) ??
        nameRefusal("CreateTab", name, limits) ??
        countRefusal("CreateTab", state.tabs.size, "tabs", limits) ??
        growthRefusal("CreateTab", state, nameBytes(name) + EMPTY_META, limits);
      if (refused !== null) return d.error("invalid_command", refused);
      const tabId = command.tab_id ?? ctx.newId();
      d.push({ event: "tab_created", workspace_id: ws.id, tab_id: tabId, name, version: d.next() });
      if (ws.activeTabId === null) {
        d.push({
          event: "active_tab_changed",
          workspace_id: ws.id,
          tab_id: tabId,
          version: d.next(),
        });
      }
      return d.events;
    }
    case "delete_tab": {
      const ws = state.workspaces.get(command.workspace_id);
      const index = ws?.tabIds.indexOf(storedTabId(state, command.tab_id)) ?? -1;
      if (ws === undefined || index < 0) return d.events;
      if (ws.tabIds.length === 1 && command.force !== true) {
        return d.error(
          "invalid_command",
          `DeleteTab: refusing to delete the last tab of workspace ${ws.id} without force=true`,
        );
      }
      d.push({
        event: "tab_deleted",
        workspace_id: ws.id,
        tab_id: command.tab_id,
        block_ids: [...(state.tabs.get(command.tab_id)?.blockIds ?? [])],
        version: d.next(),
      });
      if (ws.activeTabId === command.tab_id) {
        d.push({
          event: "active_tab_changed",
          workspace_id: ws.id,
          tab_id: successorOf(ws.tabIds, index),
          version: d.next(),
        });
      }
      return d.events;
    }
    case "rename_tab": {
      const tab = state.tabs.get(command.tab_id);
      if (tab === undefined) {
        return d.error("invalid_command", `RenameTab: tab not found: ${command.tab_id}`);
      }
      if (tab.name === command.name) return d.events;
      const refused = nameRefusal("RenameTab", command.name, limits) ??
        renameRefusal("RenameTab", state, tab.name, command.name, limits);
      if (refused !== null) return d.error("invalid_command", refused);
      return d.push({
        event: "tab_renamed",
        tab_id: tab.id,
        name: command.name,
        version: d.next(),
      });
    }
    case "set_active_tab": {
      const found = findTabIn(state, "SetActiveTab", command.workspace_id, command.tab_id);
      if (typeof found === "string") return d.error("invalid_command", found);
      if (found.ws.activeTabId === command.tab_id) return d.events;
      return d.push({
        event: "active_tab_changed",
        workspace_id: found.ws.id,
        tab_id: command.tab_id,
        version: d.next(),
      });
    }
    case "reorder_tab": {
      const found = findTabIn(state, "ReorderTab", command.workspace_id, command.tab_id);
      if (typeof found === "string") return d.error("invalid_command", found);
      const target = Math.min(command.new_index, found.ws.tabIds.length - 1);
      if (target === found.index) return d.events;
      return d.push({
        event: "tab_reordered",
        workspace_id: found.ws.id,
        tab_id: command.tab_id,
        new_index: target,
        version: d.next(),
      });
    }
    case "reorder_tabs_bulk": {
      const ws = state.workspaces.get(command.workspace_id);
      if (ws === undefined) {
        return d.error(
          "invalid_command",
          `ReorderTabsBulk: workspace not found: ${command.workspace_id}`,
        );
      }
      const problem = permutationProblem(ws.tabIds, command.tab_ids);
      if (problem !== null) {
        return d.error("invalid_command", `ReorderTabsBulk: ${problem} (workspace ${ws.id})`);
      }
      if (ws.tabIds.every((t, i) => t === command.tab_ids[i])) return d.events;
      return d.push({
        event: "tabs_reordered_bulk",
        workspace_id: ws.id,
        tab_ids: [...command.tab_ids],
        version: d.next(),
      });
    }
    case "move_tab": {
      const { tab_id: tabId, src_workspace_id: srcId, dst_workspace_id: dstId } = command;
      const src = state.workspaces.get(srcId);
      const dst = state.workspaces.get(dstId);
      const tab = state.tabs.get(tabId);
      if (srcId === dstId) {
        return d.error(
          "invalid_command",
          `MoveTab: source and destination are both workspace ${srcId}; use reorder_tab`,
        );
      }
      if (src === undefined) {
        return d.error("invalid_command", `MoveTab: source workspace not found: ${srcId}`);
      }
      if (dst === undefined) {
        return d.error("invalid_command", `MoveTab: destination workspace not found: ${dstId}`);
      }
      if (tab === undefined) return d.error("invalid_command", `MoveTab: tab not found: ${tabId}`);
      if (tab.workspaceId !== srcId) {
        return d.error(
          "invalid_command",
          `MoveTab: tab ${tabId} is in workspace ${tab.workspaceId}, not ${srcId}`,
        );
      }
      // The source keeps the delete rule for its active tab; the moved tab
      // becomes the destination's active one, as in the reference.
      const srcIndex = src.tabIds.indexOf(tab.id);
      const newSrcActive = src.activeTabId === tabId
        ? successorOf(src.tabIds, srcIndex)
        : src.activeTabId;
      return d.push({
        event: "tab_moved",
        tab_id: tabId,
        src_workspace_id: srcId,
        dst_workspace_id: dstId,
        dst_index: Math.min(command.dst_index, dst.tabIds.length),
        new_src_active_tab_id: newSrcActive,
        new_dst_active_tab_id: tabId,
        version: d.next(),
      });
    }
    case "create_block": {
      const tab = state.tabs.get(command.tab_id);
      if (tab === undefined) {
        return d.error("invalid_command", `CreateBlock: tab not found: ${command.tab_id}`);
      }
      const meta = command.meta ?? null;
      const bytes = jsonBytes(meta);
      const refused = takenRefusal("CreateBlock", state, command.block_id) ??
        (bytes > limits.maxMetaBytes
          ? `CreateBlock: meta is ${bytes} bytes, ${over(limits, "maxMetaBytes")}`
          : countRefusal("CreateBlock", state.blocks.size, "blocks", limits) ??
            growthRefusal("CreateBlock", state, bytes, limits));
      if (refused !== null) return d.error("invalid_command", refused);
      return d.push({
        event: "block_created",
        tab_id: tab.id,
        block_id: command.block_id ?? ctx.newId(),
        meta,
        version: d.next(),
      });
    }
    case "delete_block": {
      const tab = state.tabs.get(command.tab_id);
      // The block's own tab id, not a scan of the tab's list: O(1) in a 50k-block tab.
      if (tab === undefined || state.blocks.get(command.block_id)?.tabId !== tab.id) {
        return d.events;
      }
      return d.push({
        event: "block_deleted",
        tab_id: tab.id,
        block_id: command.block_id,
        version: d.next(),
      });
    }
    case "move_block": {
      const { block_id: blockId, src_tab_id: srcId, dst_tab_id: dstId } = command;
      const block = state.blocks.get(blockId);
      const dst = state.tabs.get(dstId);
      if (!state.tabs.has(srcId)) {
        return d.error("invalid_command", `MoveBlock: source tab not found: ${srcId}`);
      }
      if (dst === undefined) {
        return d.error("invalid_command", `MoveBlock: destination tab not found: ${dstId}`);
      }
      if (block === undefined) {
        return d.error("invalid_command", `MoveBlock: block not found: ${blockId}`);
      }
      if (block.tabId !== srcId) {
        return d.error(
          "invalid_command",
          `MoveBlock: block ${blockId} is in tab ${block.tabId}, not ${srcId}`,
        );
      }
      // Within one tab the index counts positions after the block is taken out.
      const room = srcId === dstId ? dst.blockIds.length - 1 : dst.blockIds.length;
      return d.push({
        event: "block_moved",
        block_id: blockId,
        src_tab_id: srcId,
        dst_tab_id: dstId,
        dst_index: Math.min(command.dst_index, room),
        version: d.next(),
      });
    }
    case "update_workspace_meta": {
      const ws = state.workspaces.get(command.workspace_id);
      if (ws === undefined) {
        return d.error(
          "invalid_command",
          `UpdateWorkspaceMeta: workspace not found: ${command.workspace_id}`,
        );
      }
      return d.patchMeta("UpdateWorkspaceMeta", state, ws.meta, command.meta_patch, limits, {
        event: "workspace_meta_updated",
        workspace_id: ws.id,
        meta_patch: command.meta_patch,
        version: 0,
      });
    }
    case "update_tab_meta": {
      const tab = state.tabs.get(command.tab_id);
      if (tab === undefined) {
        return d.error("invalid_command", `UpdateTabMeta: tab not found: ${command.tab_id}`);
      }
      return d.patchMeta("UpdateTabMeta", state, tab.meta, command.meta_patch, limits, {
        event: "tab_meta_updated",
        tab_id: tab.id,
        meta_patch: command.meta_patch,
        version: 0,
      });
    }
    case "update_block_meta": {
      const block = state.blocks.get(command.block_id);
      if (block === undefined) {
        return d.error("invalid_command", `UpdateBlockMeta: block not found: ${command.block_id}`);
      }
      return d.patchMeta("UpdateBlockMeta", state, block.meta, command.meta_patch, limits, {
        event: "block_meta_updated",
        block_id: block.id,
        meta_patch: command.meta_patch,
        version: 0,
      });
    }
    case "get_snapshot":
      return refuseLauncher(d, command);
    default:
      // Only `report_*` is left: a template-literal tag no `case` can name.
      // refuseLauncher takes a LauncherCommand, so a command added to the
      // union without a case here fails to compile instead of being refused.
      return refuseLauncher(d, command);
  }
}

/** The launcher pipe's commands parse so that they can be refused here (docs/PROTOCOL.md §3). */
function refuseLauncher(d: Decision, command: LauncherCommand): ReducerEvent[] {
  return d.error("invalid_command", `srv reducer does not accept: ${command.cmd}`);
}

/** Collects one command's events and numbers them. */
class Decision {
  readonly events: ReducerEvent[] = [];
  #version: number;
  constructor(version: number) {
    this.#version = version;
  }
  next(): number {
    return ++this.#version;
  }
  push(event: ReducerEvent): ReducerEvent[] {
    this.events.push(event);
    return this.events;
  }
  error(code: ErrorEvent["code"], message: string): ReducerEvent[] {
    // A refusal quotes the ids the client sent, and it is broadcast: an id
    // of a whole 1 MiB line would otherwise reach every reader at that size.
    return this.push({
      event: "error",
      code,
      message: clipText(message, MAX_ERROR_MESSAGE_CHARS),
      fatal: false,
      version: this.next(),
    });
  }

  /**
   * A `*_meta_updated` event, or the refusal when the patched meta would
   * cross a size cap. The patched meta is handed on to `evolve` (see
   * {@linkcode patched}), so an update merges and measures it once.
   */
  patchMeta(
    verb: string,
    state: State,
    before: Json,
    patch: JsonObject,
    limits: Limits,
    event: MetaUpdatedEvent,
  ): ReducerEvent[] {
    const after = mergePatch(before, patch);
    const id = metaUpdatedId(event);
    // Measured once, not remembered in jsonBytes's WeakMap (see metaBytes).
    const bytes = utf8Bytes(JSON.stringify(after));
    const beforeBytes = metaBytes(id, before);
    const growth = bytes - beforeBytes;
    // A patch that does not grow the meta is always accepted, so an entity
    // over a cap that was lowered since can still be trimmed.
    // The patch itself is logged and broadcast too: one that changes little
    // but is large (a megabyte of `"k":null` for keys that do not exist)
    // would fill the 4,096-event ring with megabyte events (gigabytes). Any
    // meta can still be trimmed, in patches of at most the cap each.
    // Measured, not remembered: a patch is never measured again, and each
    // object added to jsonBytes's WeakMap costs more than the measuring.
    // Not measured at all when it cannot be over: a flat patch without
    // nulls is some of the patched meta's entries, so no larger than it.
    const patchBytes = bytes <= limits.maxMetaBytes && isFlatWithoutNulls(patch)
      ? bytes
      : utf8Bytes(JSON.stringify(patch));
    const refused = growth > 0 && bytes > limits.maxMetaBytes
      ? `${verb}: meta would be ${bytes} bytes, ${over(limits, "maxMetaBytes")}`
      : growthRefusal(verb, state, growth, limits) ??
        (patchBytes > limits.maxMetaBytes
          ? `${verb}: meta_patch is ${patchBytes} bytes, ${over(limits, "maxMetaBytes")}`
          : null);
    if (refused !== null) return this.error("invalid_command", refused);
    event.version = this.next();
    rememberMetaBytes(id, before, beforeBytes, after, bytes);
    // One record reused for every update: nothing allocated per command.
    lastDecided.event = event;
    lastDecided.before = before;
    lastDecided.after = after;
    return this.push(event);
  }
}

/** The id of the entity a meta update event patches. */
function metaUpdatedId(event: MetaUpdatedEvent): string {
  switch (event.event) {
    case "workspace_meta_updated":
      return event.workspace_id;
    case "tab_meta_updated":
      return event.tab_id;
    case "block_meta_updated":
      return event.block_id;
  }
}

/** The events a meta update decides. */
export type MetaUpdatedEvent = Extract<
  ReducerEvent,
  { event: "workspace_meta_updated" | "tab_meta_updated" | "block_meta_updated" }
>;
/**
 * The meta `decide` computed for its latest meta update. `update` applies
 * an event right after deciding it, so `evolve` of that same event object
 * on the same meta (`before`, by identity) takes `after` instead of merging
 * and measuring again; any other application (a replay parses a fresh
 * event) merges as usual, with the same result. A cache, not state:
 * dropping it changes nothing but speed.
 */
const lastDecided: { event: ReducerEvent | null; before: Json; after: Json } = {
  event: null,
  before: null,
  after: null,
};

/**
 * `before` patched by a meta update event (see {@linkcode lastDecided}).
 * `evolve.ts` calls it; it lives here, beside the cache `decide` fills.
 */
export function patched(before: Json, event: MetaUpdatedEvent): Json {
  const decided = lastDecided;
  if (decided.event === event && decided.before === before) {
    const after = decided.after;
    // Used once; dropped so the cache holds no meta alive.
    decided.event = null;
    decided.before = decided.after = null;
    return after;
  }
  return mergePatch(before, event.meta_patch);
}
