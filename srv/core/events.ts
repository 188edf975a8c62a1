/**
 * The event types of the wire contract (docs/PROTOCOL.md §4): one interface per
 * event, the unions over them and {@linkcode EventName}. Re-exported by
 * `protocol.ts`, which also holds `isLogged`.
 *
 * @module
 */

import type { ClientKind, ErrorCode, Json, JsonObject, LifecyclePhase, U64 } from "./protocol.ts";

/** `registered`; `instance_id` and `protocol` are extensions. */
export interface RegisteredEvent {
  /** The event tag. */
  event: "registered";
  /** The id the server gave this registration (first 1). */
  client_id: number;
  /** The server's process id. */
  launcher_pid: number;
  /** The server's version. */
  launcher_version: string;
  /** Fresh for every server start, so a client can tell a restart apart. */
  instance_id: string;
  /** The version of srv's protocol extensions ({@linkcode PROTOCOL_EXTENSIONS_VERSION}). */
  protocol: number;
  /** Protocol 2: true on the private `registered` of an observer (§11.1), absent otherwise. */
  observe?: boolean;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `pong`: echoes the ping's nonce digit for digit. */
export interface PongEvent {
  /** The event tag. */
  event: "pong";
  /** The ping's nonce, digit for digit. */
  nonce: U64;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `error`: private with version 0, or broadcast with a real version (§5, §6). */
export interface ErrorEvent {
  /** The event tag. */
  event: "error";
  /** What kind of refusal this is. */
  code: ErrorCode;
  /** A human-readable reason; not a contract to match on. */
  message: string;
  /** The server closes the connection after sending it. */
  fatal: boolean;
  /**
   * Protocol 2, a failed batch only (§11.3): the failing command's index,
   * or null for `precondition_failed`. Absent on every other error.
   */
  index?: number | null;
  /** 0 when private; the next version of the stream when the reducer broadcast it. */
  version: number;
}
/** `process_spawned`. */
export interface ProcessSpawnedEvent {
  /** The event tag. */
  event: "process_spawned";
  /** The registered process id. */
  pid: number;
  /** The kind it registered as. */
  kind: ClientKind;
  /** The version string it registered with. */
  client_version: string;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `process_exited`; `code` is always 0. */
export interface ProcessExitedEvent {
  /** The event tag. */
  event: "process_exited";
  /** The process that said goodbye or whose connection dropped. */
  pid: number;
  /** Always 0. */
  code: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `lifecycle_phase_changed`. */
export interface LifecyclePhaseChangedEvent {
  /** The event tag. */
  event: "lifecycle_phase_changed";
  /** The phase before. */
  from: LifecyclePhase;
  /** The phase after. */
  to: LifecyclePhase;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** Metadata of every entity, keyed by id (extension of `srv_snapshot`). */
export interface SnapshotMeta {
  /** Each workspace's metadata, by workspace id. */
  workspaces: Record<string, JsonObject>;
  /** Each tab's metadata, by tab id. */
  tabs: Record<string, JsonObject>;
  /** Each block's metadata, by block id. */
  blocks: Record<string, Json>;
}
/**
 * `srv_snapshot`: the whole tree. Tuple lists are sorted by their first
 * element; `tab_order`, `block_order` and `meta` are extensions.
 */
export interface SrvSnapshotEvent {
  /** The event tag. */
  event: "srv_snapshot";
  /** The server's lifecycle phase. */
  lifecycle: LifecyclePhase;
  /** Every workspace as `[id, name]`, sorted by id. */
  workspaces: [id: string, name: string][];
  /** Every tab as `[tab_id, workspace_id, name]`, sorted by tab id. */
  tabs: [tabId: string, workspaceId: string, name: string][];
  /** Each workspace's active tab as `[workspace_id, tab_id]`; none when it has none. */
  active_tabs: [workspaceId: string, tabId: string][];
  /** Every block as `[block_id, tab_id]`, sorted by block id. */
  blocks: [blockId: string, tabId: string][];
  /** Each workspace's tab ids, in order (extension). */
  tab_order: Record<string, string[]>;
  /** Each tab's block ids, in order (extension). */
  block_order: Record<string, string[]>;
  /** Every entity's metadata (extension). */
  meta: SnapshotMeta;
  /** The version of the last event the snapshot reflects. */
  version: number;
}
/** `event_list`: the private answer to `get_events`. */
export interface EventListEvent {
  /** The event tag. */
  event: "event_list";
  /** The logged events after `since`, oldest first, whole. */
  events: Event[];
  /** True when events after `since` are no longer retained (extension). */
  truncated: boolean;
  /** Fresh for every server start, so a client can tell a restart apart. */
  instance_id: string;
  /** The current version; an `event_list` does not bump it. */
  version: number;
}
/** The `log` part of `server_info`. */
export interface LogStats {
  /** Version of the oldest event `get_events` can still return, null when none. */
  oldest: number | null;
  /** Version of the newest logged event, null when none. */
  newest: number | null;
  /** How many events `get_events` can still return. */
  retained: number;
}
/**
 * `server_info.last_command` (extension): the most recent command of the
 * asking connection that went through the reducer, and the versions of the
 * first and last event it emitted (both null when it emitted none). Events
 * of one command take consecutive versions, so a client that follows each
 * command with `get_server_info` knows exactly which broadcasts were its
 * own, whatever other connections sent in between.
 */
export interface LastCommand {
  /** The command's `cmd` tag. */
  cmd: string;
  /** Version of the first event it emitted; null when none. */
  first: number | null;
  /** Version of the last event it emitted; null when none. */
  last: number | null;
}
/** `server_info` (extension): the private answer to `get_server_info`. */
export interface ServerInfoEvent {
  /** The event tag. */
  event: "server_info";
  /** The server's process id. */
  pid: number;
  /** The server's version. */
  server_version: string;
  /** Fresh for every server start, so a client can tell a restart apart. */
  instance_id: string;
  /** Milliseconds since the server started. */
  uptime_ms: number;
  /** Open connections, this one included. */
  connections: number;
  /** The version of the newest event issued. */
  event_version: number;
  /** What `get_events` can still return. */
  log: LogStats;
  /** The SQLite store's path; null when the server runs in memory. */
  store: string | null;
  /** This connection's latest reduced command; null before the first. */
  last_command: LastCommand | null;
  /** Always 0: a private reply. */
  version: number;
}
/** `workspace_created`. */
export interface WorkspaceCreatedEvent {
  /** The event tag. */
  event: "workspace_created";
  /** The new workspace's id. */
  workspace_id: string;
  /** Its name. */
  name: string;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `workspace_deleted`: `block_ids` lists every block the cascade removed. */
export interface WorkspaceDeletedEvent {
  /** The event tag. */
  event: "workspace_deleted";
  /** The workspace. */
  workspace_id: string;
  /** Every block the cascade removed. */
  block_ids: string[];
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `workspace_renamed`. */
export interface WorkspaceRenamedEvent {
  /** The event tag. */
  event: "workspace_renamed";
  /** The workspace. */
  workspace_id: string;
  /** The new name. */
  name: string;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `tab_created`. */
export interface TabCreatedEvent {
  /** The event tag. */
  event: "tab_created";
  /** The workspace it went into. */
  workspace_id: string;
  /** The new tab's id. */
  tab_id: string;
  /** Its name. */
  name: string;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `tab_deleted`: `block_ids` lists every block the cascade removed. */
export interface TabDeletedEvent {
  /** The event tag. */
  event: "tab_deleted";
  /** The workspace that held it. */
  workspace_id: string;
  /** The tab. */
  tab_id: string;
  /** Every block the cascade removed. */
  block_ids: string[];
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `tab_renamed`. */
export interface TabRenamedEvent {
  /** The event tag. */
  event: "tab_renamed";
  /** The tab. */
  tab_id: string;
  /** The new name. */
  name: string;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `active_tab_changed`; `tab_id` null means the workspace has no active tab. */
export interface ActiveTabChangedEvent {
  /** The event tag. */
  event: "active_tab_changed";
  /** The workspace. */
  workspace_id: string;
  /** The active tab now; null when the workspace has none. */
  tab_id: string | null;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `tab_reordered`; `new_index` is the clamped index. */
export interface TabReorderedEvent {
  /** The event tag. */
  event: "tab_reordered";
  /** The workspace. */
  workspace_id: string;
  /** The tab. */
  tab_id: string;
  /** The tab's index afterwards (clamped). */
  new_index: number;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `tabs_reordered_bulk`. */
export interface TabsReorderedBulkEvent {
  /** The event tag. */
  event: "tabs_reordered_bulk";
  /** The workspace. */
  workspace_id: string;
  /** The workspace's tab ids in their new order. */
  tab_ids: string[];
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `tab_moved`: says which tab is active in both workspaces afterwards. */
export interface TabMovedEvent {
  /** The event tag. */
  event: "tab_moved";
  /** The tab. */
  tab_id: string;
  /** The workspace the tab leaves. */
  src_workspace_id: string;
  /** The workspace the tab joins (may be the same one). */
  dst_workspace_id: string;
  /** Its index in the destination workspace afterwards. */
  dst_index: number;
  /** The source workspace's active tab afterwards; null when none. */
  new_src_active_tab_id: string | null;
  /** The destination workspace's active tab afterwards; null when none. */
  new_dst_active_tab_id: string | null;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `block_created`. */
export interface BlockCreatedEvent {
  /** The event tag. */
  event: "block_created";
  /** The tab it went into. */
  tab_id: string;
  /** The new block's id. */
  block_id: string;
  /** Its metadata (null when none was given). */
  meta: Json;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `block_deleted`. */
export interface BlockDeletedEvent {
  /** The event tag. */
  event: "block_deleted";
  /** The tab that held it. */
  tab_id: string;
  /** The block. */
  block_id: string;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `block_moved`; `dst_index` is the clamped index. */
export interface BlockMovedEvent {
  /** The event tag. */
  event: "block_moved";
  /** The block. */
  block_id: string;
  /** The tab the block leaves. */
  src_tab_id: string;
  /** The tab the block joins (may be the same one). */
  dst_tab_id: string;
  /** Its index in the destination tab afterwards (clamped). */
  dst_index: number;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `workspace_meta_updated`. */
export interface WorkspaceMetaUpdatedEvent {
  /** The event tag. */
  event: "workspace_meta_updated";
  /** The workspace. */
  workspace_id: string;
  /** An RFC 7386 merge patch: `null` deletes a key, objects merge. */
  meta_patch: JsonObject;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `tab_meta_updated`. */
export interface TabMetaUpdatedEvent {
  /** The event tag. */
  event: "tab_meta_updated";
  /** The tab. */
  tab_id: string;
  /** An RFC 7386 merge patch: `null` deletes a key, objects merge. */
  meta_patch: JsonObject;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}
/** `block_meta_updated`. */
export interface BlockMetaUpdatedEvent {
  /** The event tag. */
  event: "block_meta_updated";
  /** The block. */
  block_id: string;
  /** An RFC 7386 merge patch: `null` deletes a key, objects merge. */
  meta_patch: JsonObject;
  /** Protocol 2: in a batch's run, the version of its last event (§11.3); absent otherwise. */
  batch_end?: number;
  /** Its place in the ordered stream (docs/PROTOCOL.md §6): versions rise strictly from 1. */
  version: number;
}

/** Events that change the workspace → tab → block tree. */
export type DomainEvent =
  | WorkspaceCreatedEvent
  | WorkspaceDeletedEvent
  | WorkspaceRenamedEvent
  | TabCreatedEvent
  | TabDeletedEvent
  | TabRenamedEvent
  | ActiveTabChangedEvent
  | TabReorderedEvent
  | TabsReorderedBulkEvent
  | TabMovedEvent
  | BlockCreatedEvent
  | BlockDeletedEvent
  | BlockMovedEvent
  | WorkspaceMetaUpdatedEvent
  | TabMetaUpdatedEvent
  | BlockMetaUpdatedEvent;

/** Events that go into the event log (docs/PROTOCOL.md §4 "logged"). */
export type LoggedEvent =
  | RegisteredEvent
  | PongEvent
  | ProcessSpawnedEvent
  | ProcessExitedEvent
  | LifecyclePhaseChangedEvent
  | DomainEvent;

/** Every event the server sends. */
export type Event =
  | LoggedEvent
  | ErrorEvent
  | SrvSnapshotEvent
  | EventListEvent
  | ServerInfoEvent;

/** The `event` tag of every event. */
export type EventName = Event["event"];
