/**
 * The wire contract of PROTOCOL.md §2–§4: command and event types, the
 * superstruct schemas that validate commands (dispatched on the `cmd` tag),
 * and the codec: {@linkcode decodeCommand} for the server's input,
 * {@linkcode encodeEvent} for its output, and the client-side pair
 * {@linkcode encodeCommand} / {@linkcode decodeEvent}.
 *
 * @module
 */

import {
  array,
  boolean,
  define,
  enums,
  looseObject,
  nullable,
  optional,
  string,
  type Struct,
  unknown,
  validate,
} from "../../deps.ts";
import { utf8Length } from "./line_splitter.ts";

/** Largest value a u64 field can hold: 2^64 - 1. */
export const U64_MAX: bigint = (1n << 64n) - 1n;

/**
 * An unsigned 64-bit integer as it travels through srv: a plain `number`
 * while it is a safe integer, a `bigint` above 2^53 - 1 so no digit is lost.
 *
 * @example
 * ```ts
 * import { decodeCommand } from "./protocol.ts";
 * const r = decodeCommand('{"cmd":"ping","nonce":18446744073709551615}');
 * if (r.ok && r.command.cmd === "ping") console.log(typeof r.command.nonce); // "bigint"
 * ```
 */
export type U64 = number | bigint;

/** Who a connection says it is (`register.kind`). */
export type ClientKind = "host" | "renderer" | "srv" | "tool";
/** Every {@linkcode ClientKind}, in protocol order. */
export const CLIENT_KINDS: readonly ClientKind[] = ["host", "renderer", "srv", "tool"];

/** The `code` of an `error` event. */
export type ErrorCode = "invalid_command" | "not_registered" | "already_registered";

/** The server's lifecycle (`lifecycle_phase_changed`, `srv_snapshot.lifecycle`). */
export type LifecyclePhase = "starting" | "running" | "quitting" | "dead";
/** Every {@linkcode LifecyclePhase}, in protocol order. */
export const LIFECYCLE_PHASES: readonly LifecyclePhase[] = [
  "starting",
  "running",
  "quitting",
  "dead",
];

/** Any JSON value (block metadata may be any of these). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** A JSON object: workspace and tab metadata, and every merge patch. */
export type JsonObject = { [key: string]: Json };

/** Version of the srv protocol extensions, sent as `registered.protocol`. */
export const PROTOCOL_EXTENSIONS_VERSION = 1;

// ---------------------------------------------------------------------------
// Commands

/** `register`: binds the connection to a kind and pid (PROTOCOL.md §5). */
export interface RegisterCommand {
  cmd: "register";
  kind: ClientKind;
  pid: number;
  version: string;
}
/** `ping`: answered by a broadcast `pong` carrying the same nonce. */
export interface PingCommand {
  cmd: "ping";
  nonce: U64;
}
/** `goodbye`: marks the pid exited; the server then closes the connection. */
export interface GoodbyeCommand {
  cmd: "goodbye";
}
/** `get_srv_snapshot`: answered by a broadcast `srv_snapshot`. */
export interface GetSrvSnapshotCommand {
  cmd: "get_srv_snapshot";
}
/** `get_events`: answered privately by the server with `event_list`. */
export interface GetEventsCommand {
  cmd: "get_events";
  since: U64;
}
/** `get_server_info` (extension): answered privately with `server_info`. */
export interface GetServerInfoCommand {
  cmd: "get_server_info";
}
/** `create_workspace`. */
export interface CreateWorkspaceCommand {
  cmd: "create_workspace";
  name: string;
}
/** `delete_workspace`; always cascades to its tabs and blocks (`force` is accepted, not needed). */
export interface DeleteWorkspaceCommand {
  cmd: "delete_workspace";
  workspace_id: string;
  force?: boolean | null;
}
/** `rename_workspace`. */
export interface RenameWorkspaceCommand {
  cmd: "rename_workspace";
  workspace_id: string;
  name: string;
}
/** `create_tab`. */
export interface CreateTabCommand {
  cmd: "create_tab";
  workspace_id: string;
  name: string;
}
/** `delete_tab`; deleting a workspace's last tab needs `force`. */
export interface DeleteTabCommand {
  cmd: "delete_tab";
  workspace_id: string;
  tab_id: string;
  force?: boolean | null;
}
/** `rename_tab`. */
export interface RenameTabCommand {
  cmd: "rename_tab";
  tab_id: string;
  name: string;
}
/** `set_active_tab`. */
export interface SetActiveTabCommand {
  cmd: "set_active_tab";
  workspace_id: string;
  tab_id: string;
}
/** `reorder_tab`: `new_index` is clamped to the last index. */
export interface ReorderTabCommand {
  cmd: "reorder_tab";
  workspace_id: string;
  tab_id: string;
  new_index: number;
}
/** `reorder_tabs_bulk`: `tab_ids` must be a permutation of the workspace's tabs. */
export interface ReorderTabsBulkCommand {
  cmd: "reorder_tabs_bulk";
  workspace_id: string;
  tab_ids: string[];
}
/** `move_tab` between (or within) workspaces. */
export interface MoveTabCommand {
  cmd: "move_tab";
  tab_id: string;
  src_workspace_id: string;
  dst_workspace_id: string;
  dst_index: number;
}
/** `create_block`; `meta` is any JSON, `null` when absent. */
export interface CreateBlockCommand {
  cmd: "create_block";
  tab_id: string;
  meta?: Json;
}
/** `delete_block`. */
export interface DeleteBlockCommand {
  cmd: "delete_block";
  tab_id: string;
  block_id: string;
}
/** `move_block` between (or within) tabs. */
export interface MoveBlockCommand {
  cmd: "move_block";
  block_id: string;
  src_tab_id: string;
  dst_tab_id: string;
  dst_index: number;
}
/** `update_workspace_meta`: an RFC 7386 merge patch. */
export interface UpdateWorkspaceMetaCommand {
  cmd: "update_workspace_meta";
  workspace_id: string;
  meta_patch: JsonObject;
}
/** `update_tab_meta`: an RFC 7386 merge patch. */
export interface UpdateTabMetaCommand {
  cmd: "update_tab_meta";
  tab_id: string;
  meta_patch: JsonObject;
}
/** `update_block_meta`: an RFC 7386 merge patch. */
export interface UpdateBlockMetaCommand {
  cmd: "update_block_meta";
  block_id: string;
  meta_patch: JsonObject;
}

/**
 * A command of the reference's launcher pipe (`get_snapshot`, `report_*`).
 * It parses, so the client learns it is "not accepted here" rather than
 * "unknown".
 */
export interface LauncherCommand {
  cmd: "get_snapshot" | `report_${string}`;
}

/** Every command that changes the workspace → tab → block tree. */
export type DomainCommand =
  | CreateWorkspaceCommand
  | DeleteWorkspaceCommand
  | RenameWorkspaceCommand
  | CreateTabCommand
  | DeleteTabCommand
  | RenameTabCommand
  | SetActiveTabCommand
  | ReorderTabCommand
  | ReorderTabsBulkCommand
  | MoveTabCommand
  | CreateBlockCommand
  | DeleteBlockCommand
  | MoveBlockCommand
  | UpdateWorkspaceMetaCommand
  | UpdateTabMetaCommand
  | UpdateBlockMetaCommand;

/** Commands the server answers itself, never through the reducer (§5 step 4). */
export type QueryCommand = GetEventsCommand | GetServerInfoCommand;

/** Commands the reducer decides. */
export type ReducerCommand =
  | RegisterCommand
  | PingCommand
  | GoodbyeCommand
  | GetSrvSnapshotCommand
  | DomainCommand
  | LauncherCommand;

/** Every command a client may send. */
export type Command = ReducerCommand | QueryCommand;

// ---------------------------------------------------------------------------
// Events

/** `registered`; `instance_id` and `protocol` are extensions. */
export interface RegisteredEvent {
  event: "registered";
  client_id: number;
  launcher_pid: number;
  launcher_version: string;
  instance_id: string;
  protocol: number;
  version: number;
}
/** `pong`: echoes the ping's nonce digit for digit. */
export interface PongEvent {
  event: "pong";
  nonce: U64;
  version: number;
}
/** `error`: private with version 0, or broadcast with a real version (§5, §6). */
export interface ErrorEvent {
  event: "error";
  code: ErrorCode;
  message: string;
  fatal: boolean;
  version: number;
}
/** `process_spawned`. */
export interface ProcessSpawnedEvent {
  event: "process_spawned";
  pid: number;
  kind: ClientKind;
  client_version: string;
  version: number;
}
/** `process_exited`; `code` is always 0. */
export interface ProcessExitedEvent {
  event: "process_exited";
  pid: number;
  code: number;
  version: number;
}
/** `lifecycle_phase_changed`. */
export interface LifecyclePhaseChangedEvent {
  event: "lifecycle_phase_changed";
  from: LifecyclePhase;
  to: LifecyclePhase;
  version: number;
}
/** Metadata of every entity, keyed by id (extension of `srv_snapshot`). */
export interface SnapshotMeta {
  workspaces: Record<string, JsonObject>;
  tabs: Record<string, JsonObject>;
  blocks: Record<string, Json>;
}
/**
 * `srv_snapshot`: the whole tree. Tuple lists are sorted by their first
 * element; `tab_order`, `block_order` and `meta` are extensions.
 */
export interface SrvSnapshotEvent {
  event: "srv_snapshot";
  lifecycle: LifecyclePhase;
  workspaces: [id: string, name: string][];
  tabs: [tabId: string, workspaceId: string, name: string][];
  active_tabs: [workspaceId: string, tabId: string][];
  blocks: [blockId: string, tabId: string][];
  tab_order: Record<string, string[]>;
  block_order: Record<string, string[]>;
  meta: SnapshotMeta;
  version: number;
}
/** `event_list`: the private answer to `get_events`. */
export interface EventListEvent {
  event: "event_list";
  events: Event[];
  truncated: boolean;
  instance_id: string;
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
  cmd: string;
  first: number | null;
  last: number | null;
}
/** `server_info` (extension): the private answer to `get_server_info`. */
export interface ServerInfoEvent {
  event: "server_info";
  pid: number;
  server_version: string;
  instance_id: string;
  uptime_ms: number;
  connections: number;
  event_version: number;
  log: LogStats;
  store: string | null;
  /** This connection's latest reduced command; null before the first. */
  last_command: LastCommand | null;
  version: number;
}
/** `workspace_created`. */
export interface WorkspaceCreatedEvent {
  event: "workspace_created";
  workspace_id: string;
  name: string;
  version: number;
}
/** `workspace_deleted`: `block_ids` lists every block the cascade removed. */
export interface WorkspaceDeletedEvent {
  event: "workspace_deleted";
  workspace_id: string;
  block_ids: string[];
  version: number;
}
/** `workspace_renamed`. */
export interface WorkspaceRenamedEvent {
  event: "workspace_renamed";
  workspace_id: string;
  name: string;
  version: number;
}
/** `tab_created`. */
export interface TabCreatedEvent {
  event: "tab_created";
  workspace_id: string;
  tab_id: string;
  name: string;
  version: number;
}
/** `tab_deleted`: `block_ids` lists every block the cascade removed. */
export interface TabDeletedEvent {
  event: "tab_deleted";
  workspace_id: string;
  tab_id: string;
  block_ids: string[];
  version: number;
}
/** `tab_renamed`. */
export interface TabRenamedEvent {
  event: "tab_renamed";
  tab_id: string;
  name: string;
  version: number;
}
/** `active_tab_changed`; `tab_id` null means the workspace has no active tab. */
export interface ActiveTabChangedEvent {
  event: "active_tab_changed";
  workspace_id: string;
  tab_id: string | null;
  version: number;
}
/** `tab_reordered`; `new_index` is the clamped index. */
export interface TabReorderedEvent {
  event: "tab_reordered";
  workspace_id: string;
  tab_id: string;
  new_index: number;
  version: number;
}
/** `tabs_reordered_bulk`. */
export interface TabsReorderedBulkEvent {
  event: "tabs_reordered_bulk";
  workspace_id: string;
  tab_ids: string[];
  version: number;
}
/** `tab_moved`: says which tab is active in both workspaces afterwards. */
export interface TabMovedEvent {
  event: "tab_moved";
  tab_id: string;
  src_workspace_id: string;
  dst_workspace_id: string;
  dst_index: number;
  new_src_active_tab_id: string | null;
  new_dst_active_tab_id: string | null;
  version: number;
}
/** `block_created`. */
export interface BlockCreatedEvent {
  event: "block_created";
  tab_id: string;
  block_id: string;
  meta: Json;
  version: number;
}
/** `block_deleted`. */
export interface BlockDeletedEvent {
  event: "block_deleted";
  tab_id: string;
  block_id: string;
  version: number;
}
/** `block_moved`; `dst_index` is the clamped index. */
export interface BlockMovedEvent {
  event: "block_moved";
  block_id: string;
  src_tab_id: string;
  dst_tab_id: string;
  dst_index: number;
  version: number;
}
/** `workspace_meta_updated`. */
export interface WorkspaceMetaUpdatedEvent {
  event: "workspace_meta_updated";
  workspace_id: string;
  meta_patch: JsonObject;
  version: number;
}
/** `tab_meta_updated`. */
export interface TabMetaUpdatedEvent {
  event: "tab_meta_updated";
  tab_id: string;
  meta_patch: JsonObject;
  version: number;
}
/** `block_meta_updated`. */
export interface BlockMetaUpdatedEvent {
  event: "block_meta_updated";
  block_id: string;
  meta_patch: JsonObject;
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

/** Events that go into the event log (PROTOCOL.md §4 "logged"). */
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

const UNLOGGED: ReadonlySet<EventName> = new Set<EventName>([
  "error",
  "srv_snapshot",
  "event_list",
  "server_info",
]);

/**
 * Whether an event belongs in the event log (PROTOCOL.md §4): replies and
 * errors do not, state changes and `pong` do.
 *
 * @example
 * ```ts
 * import { isLogged } from "./protocol.ts";
 * isLogged({ event: "pong", nonce: 1, version: 3 }); // true
 * ```
 */
export function isLogged(event: Event): event is LoggedEvent {
  return !UNLOGGED.has(event.event);
}

// ---------------------------------------------------------------------------
// Command schemas

// One table describes every command's fields. From it come the superstruct
// schemas (the authority, and the source of precise error messages) and a
// plain predicate per command that accepts exactly what the schema accepts
// without superstruct's per-call machinery: valid lines, the hot path, are
// checked in tens of nanoseconds; only a line the predicate rejects goes
// through superstruct to learn why. tests/protocol_test.ts checks both agree.

/** How one field is checked. */
interface FieldRule {
  // deno-lint-ignore no-explicit-any
  readonly struct: Struct<any, any>;
  readonly accepts: (value: unknown) => boolean;
}

function isU32(v: unknown): boolean {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
}
function isU64(v: unknown): boolean {
  return (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) ||
    (typeof v === "bigint" && v >= 0n && v <= U64_MAX);
}
/**
 * Whether a value is a JSON object (not null, not an array).
 *
 * @example
 * ```ts
 * import { isJsonObject } from "./protocol.ts";
 * isJsonObject({ a: 1 }); // true
 * isJsonObject([1]); // false
 * ```
 */
export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function isString(v: unknown): boolean {
  return typeof v === "string";
}

// A name is stored as SQLite TEXT (UTF-8), where a lone surrogate would
// become U+FFFD: the name after a restart would differ from the logged
// event. Such a name is refused like the reference refuses it (serde_json
// reads no lone surrogate into a String). Metadata keeps them: it is
// stored as JSON text, escaped.
function isName(v: unknown): boolean {
  return typeof v === "string" && v.isWellFormed();
}

const RULES = {
  string: { struct: string(), accepts: isString },
  name: {
    struct: define<string>("name (well-formed UTF-16, no lone surrogate)", isName),
    accepts: isName,
  },
  u32: { struct: define<number>("u32", isU32), accepts: isU32 },
  u64: { struct: define<U64>("u64", isU64), accepts: isU64 },
  kind: {
    struct: enums(CLIENT_KINDS),
    accepts: (v: unknown) => (CLIENT_KINDS as readonly unknown[]).includes(v),
  },
  flag: {
    struct: optional(nullable(boolean())),
    accepts: (v: unknown) => v === undefined || v === null || typeof v === "boolean",
  },
  strings: {
    struct: array(string()),
    accepts: (v: unknown) => Array.isArray(v) && v.every(isString),
  },
  object: { struct: define<JsonObject>("object", isJsonObject), accepts: isJsonObject },
  anyJson: { struct: optional(unknown()), accepts: () => true },
} satisfies Record<string, FieldRule>;

type Rule = keyof typeof RULES;

const COMMAND_FIELDS: Record<string, Record<string, Rule>> = {
  register: { kind: "kind", pid: "u32", version: "string" },
  ping: { nonce: "u64" },
  goodbye: {},
  get_srv_snapshot: {},
  get_events: { since: "u64" },
  get_server_info: {},
  create_workspace: { name: "name" },
  delete_workspace: { workspace_id: "string", force: "flag" },
  rename_workspace: { workspace_id: "string", name: "name" },
  create_tab: { workspace_id: "string", name: "name" },
  delete_tab: { workspace_id: "string", tab_id: "string", force: "flag" },
  rename_tab: { tab_id: "string", name: "name" },
  set_active_tab: { workspace_id: "string", tab_id: "string" },
  reorder_tab: { workspace_id: "string", tab_id: "string", new_index: "u32" },
  reorder_tabs_bulk: { workspace_id: "string", tab_ids: "strings" },
  move_tab: {
    tab_id: "string",
    src_workspace_id: "string",
    dst_workspace_id: "string",
    dst_index: "u32",
  },
  create_block: { tab_id: "string", meta: "anyJson" },
  delete_block: { tab_id: "string", block_id: "string" },
  move_block: { block_id: "string", src_tab_id: "string", dst_tab_id: "string", dst_index: "u32" },
  update_workspace_meta: { workspace_id: "string", meta_patch: "object" },
  update_tab_meta: { tab_id: "string", meta_patch: "object" },
  update_block_meta: { block_id: "string", meta_patch: "object" },
};

interface CommandSchema {
  // deno-lint-ignore no-explicit-any
  readonly struct: Struct<any, any>;
  readonly fields: readonly [name: string, accepts: (value: unknown) => boolean][];
}

// Built once: decoding dispatches on `cmd` and validates only that variant.
const COMMAND_SCHEMAS: ReadonlyMap<string, CommandSchema> = new Map(
  Object.entries(COMMAND_FIELDS).map(([cmd, fields]) => {
    const entries = Object.entries(fields);
    return [cmd, {
      struct: looseObject(Object.fromEntries(entries.map(([f, rule]) => [f, RULES[rule].struct]))),
      fields: entries.map(([f, rule]) => [f, RULES[rule].accepts] as const),
    }];
  }),
);

/**
 * Whether a decoded JSON object satisfies the schema of `cmd`, the way
 * superstruct would decide it (unknown fields ignored). Exposed so tests can
 * hold the fast predicate and superstruct to the same answers.
 *
 * @example
 * ```ts
 * import { commandShapeAccepts } from "./protocol.ts";
 * commandShapeAccepts("ping", { cmd: "ping", nonce: 1 }); // { fast: true, schema: true }
 * ```
 */
export function commandShapeAccepts(
  cmd: string,
  value: Record<string, unknown>,
): { fast: boolean; schema: boolean } {
  const schema = COMMAND_SCHEMAS.get(cmd);
  if (schema === undefined) return { fast: false, schema: false };
  return {
    fast: fastAccepts(schema, value),
    schema: validate(value, schema.struct)[0] === undefined,
  };
}

function fastAccepts(schema: CommandSchema, value: Record<string, unknown>): boolean {
  for (const [field, accepts] of schema.fields) if (!accepts(value[field])) return false;
  return true;
}

/** Every `cmd` tag srv accepts (launcher-pipe names aside). */
export const COMMAND_NAMES: readonly string[] = [...COMMAND_SCHEMAS.keys()];

/**
 * Whether `cmd` names a command of the reference's launcher pipe, which srv
 * parses but does not accept (PROTOCOL.md §3).
 *
 * @example
 * ```ts
 * import { isLauncherCommandName } from "./protocol.ts";
 * isLauncherCommandName("report_exit"); // true
 * ```
 */
export function isLauncherCommandName(cmd: string): cmd is LauncherCommand["cmd"] {
  return cmd === "get_snapshot" || cmd.startsWith("report_");
}

// ---------------------------------------------------------------------------
// Codec

/** What {@linkcode decodeCommand} returns: a command, or why the line is not one. */
export type DecodeResult =
  | { ok: true; command: Command }
  | { ok: false; reason: string };

/**
 * Deepest nesting a line may have, objects and arrays together (PROTOCOL.md
 * §10): `{}` is one level. A constant of the protocol, not a flag: what a
 * client may send, every other client must be able to read back.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Deepest line {@linkcode parseJson} walks with its reviver (which recurses,
 * once per level, like every JSON reviver in V8). A conforming server sends
 * at most {@linkcode MAX_JSON_DEPTH} + 2 (a `meta_patch` inside an
 * `event_list`); anything deeper is parsed without the reviver, so it can
 * cost digits of a u64 above 2^53 but never the stack.
 */
const REVIVER_MAX_DEPTH = 256;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function countUpTo(text: string, char: string, limit: number): number {
  let n = 0;
  for (let i = text.indexOf(char); i >= 0 && n <= limit; i = text.indexOf(char, i + 1)) n++;
  return n;
}

/**
 * Whether JSON text nests deeper than `limit` levels (objects and arrays
 * together, brackets inside strings not counted). One linear scan with no
 * recursion, so it is safe on any input; most lines are answered by the
 * cheap bound alone (a line with at most `limit` opening brackets, inside
 * strings or not, cannot nest deeper). Malformed text gets an answer too;
 * `JSON.parse` rejects it afterwards.
 *
 * @example
 * ```ts
 * import { nestsDeeperThan } from "./protocol.ts";
 * nestsDeeperThan('{"a":[1]}', 2); // false
 * nestsDeeperThan('{"a":[[1]]}', 2); // true
 * ```
 */
export function nestsDeeperThan(text: string, limit: number): boolean {
  if (text.length <= limit) return false;
  const braces = countUpTo(text, "{", limit);
  if (braces + countUpTo(text, "[", limit - braces) <= limit) return false;
  let depth = 0;
  const end = text.length;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Jump to the closing quote: the first one not escaped by an odd
      // run of backslashes.
      let close = text.indexOf('"', i + 1);
      while (close > 0) {
        let slashes = 0;
        while (text.charCodeAt(close - 1 - slashes) === BACKSLASH) slashes++;
        if (slashes % 2 === 0) break;
        close = text.indexOf('"', close + 1);
      }
      if (close < 0) return false; // unterminated string: not JSON at all
      i = close;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

// Lines that may hold a number JSON.parse alone gets "wrong" for srv pay for
// the source-text reviver; the rest parse natively. Any integer JSON.parse
// would round has at least 16 digits; an exponent of three digits may
// overflow to Infinity (or underflow to -0); and -0 itself starts a value
// with "-0". False positives (inside strings) only cost the reviver.
const NEEDS_REVIVER = /[0-9]{16}|[eE][+-]?[0-9]{3}|[:,[\s]-0/;

/** Exact u64 values found by the reviver, per holder object and key. */
type ExactIntegers = Map<object, [key: string, value: bigint][]>;

/** The reviver of {@linkcode parseJson}; `exact` collects big integers. */
function reviverFor(exact: ExactIntegers) {
  return function (
    this: object,
    key: string,
    value: unknown,
    context?: { source?: string },
  ): unknown {
    if (typeof value !== "number") return value;
    if (!Number.isFinite(value)) {
      throw new SyntaxError(`number out of range of a double: ${context?.source ?? value}`);
    }
    if (Object.is(value, -0)) return 0;
    const source = context?.source;
    if (
      !Number.isSafeInteger(value) && source !== undefined && !META_KEYS.has(key) &&
      /^-?[0-9]+$/.test(source)
    ) {
      let found = exact.get(this);
      if (found === undefined) exact.set(this, found = []);
      found.push([key, BigInt(source)]);
    }
    return value;
  };
}

function setExact(holder: unknown, exact: ExactIntegers): void {
  if (typeof holder !== "object" || holder === null) return;
  for (const [key, value] of exact.get(holder) ?? []) {
    // defineProperty, not assignment: a "__proto__" key must stay data.
    Object.defineProperty(holder, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
}

/** Keys whose values are client JSON: their numbers are doubles (PROTOCOL.md §10). */
const META_KEYS: ReadonlySet<string> = new Set(["meta", "meta_patch"]);

/**
 * Parses one protocol line (a command or an event) as srv reads it. Throws
 * `SyntaxError` like `JSON.parse`.
 *
 * - Integers beyond 2^53 - 1 stay exact (`bigint`) where the protocol puts
 *   u64 values (`nonce`, `since`, `version`, `client_id`): in the line's
 *   own fields, in those of its object-valued fields, and in those of the
 *   elements of its `events` list (an `event_list`).
 * - Everywhere else, `meta` and `meta_patch` above all, numbers are
 *   IEEE-754 doubles, exactly as `JSON.parse` reads them and
 *   `JSON.stringify` writes them back, so what srv stores, replays and
 *   broadcasts is the same value. `-0` reads as `0` (JSON cannot carry the
 *   sign back out), and a number beyond the range of a double (`1e400`) is
 *   a syntax error instead of `Infinity` (which would travel as `null`).
 * - Nothing recurses deeper than {@linkcode REVIVER_MAX_DEPTH} levels,
 *   however deep the text.
 *
 * @example
 * ```ts
 * import { parseJson } from "./protocol.ts";
 * parseJson('{"nonce":18446744073709551615,"meta":{"n":18446744073709551615}}');
 * // { nonce: 18446744073709551615n, meta: { n: 18446744073709552000 } }
 * ```
 */
export function parseJson(text: string): unknown {
  if (!NEEDS_REVIVER.test(text) || nestsDeeperThan(text, REVIVER_MAX_DEPTH)) {
    return JSON.parse(text);
  }
  const exact: ExactIntegers = new Map();
  const value: unknown = JSON.parse(text, reviverFor(exact) as (k: string, v: unknown) => unknown);
  if (exact.size === 0 || typeof value !== "object" || value === null) return value;
  setExact(value, exact);
  for (const [key, child] of Object.entries(value)) {
    if (META_KEYS.has(key)) continue;
    setExact(child, exact);
    if (key === "events" && Array.isArray(child)) {
      for (const event of child) setExact(event, exact);
    }
  }
  return value;
}

function describeFailure(error: { path: (string | number)[]; value: unknown; message: string }) {
  const field = error.path.join(".");
  if (error.value === undefined) return `missing field \`${field}\``;
  return `invalid value for \`${field}\`: ${error.message}`;
}

/**
 * Decodes one line (already UTF-8 decoded, without its `\n`) into a command,
 * per PROTOCOL.md §2: unknown fields are ignored; a missing field, a wrong
 * type or an unknown `cmd` is a failure whose reason goes into
 * "parse failed: <reason>". Never throws.
 *
 * @example
 * ```ts
 * import { decodeCommand } from "./protocol.ts";
 * decodeCommand('{"cmd":"ping","nonce":7}'); // { ok: true, command: { cmd: "ping", nonce: 7 } }
 * decodeCommand('{"cmd":"fly"}'); // { ok: false, reason: "unknown command `fly`" }
 * ```
 */
export function decodeCommand(line: string): DecodeResult {
  if (nestsDeeperThan(line, MAX_JSON_DEPTH)) {
    return { ok: false, reason: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` };
  }
  let value: unknown;
  try {
    value = parseJson(line);
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, reason: "expected a JSON object" };
  }
  const cmd = (value as { cmd?: unknown }).cmd;
  if (cmd === undefined) return { ok: false, reason: "missing field `cmd`" };
  if (typeof cmd !== "string") return { ok: false, reason: "`cmd` must be a string" };
  const schema = COMMAND_SCHEMAS.get(cmd);
  if (schema === undefined) {
    if (isLauncherCommandName(cmd)) return { ok: true, command: { cmd } };
    return { ok: false, reason: `unknown command \`${cmd}\`` };
  }
  if (!fastAccepts(schema, value as Record<string, unknown>)) {
    const [error] = validate(value, schema.struct);
    if (error !== undefined) return { ok: false, reason: describeFailure(error) };
  }
  const command = value as Command;
  if (command.cmd === "create_block" && command.meta === undefined) command.meta = null;
  return { ok: true, command };
}

// deno-lint-ignore no-explicit-any
const rawJSON: (text: string) => unknown = (JSON as any).rawJSON;

/** Sets an own data property; a "__proto__" key stays data, never the prototype. */
function setData(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/**
 * A shallow copy of `value` with every `bigint` field written as raw JSON
 * digits. Not recursive, on purpose: `JSON.stringify` with a replacer
 * recurses once per level of the data, and client data may be deep.
 */
function rawBigints(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  const raw = (v: unknown) => typeof v === "bigint" ? rawJSON(v.toString()) : v;
  if (Array.isArray(value)) return value.map(raw);
  const copy = {};
  for (const [key, field] of Object.entries(value)) setData(copy, key, raw(field));
  return copy;
}

/**
 * Serializes an event (or a command) as compact JSON without the trailing
 * newline. Field order is the object's own, which the reducer builds in
 * protocol order; `bigint` values are written digit for digit where the
 * protocol has u64 fields (the places {@linkcode parseJson} keeps them
 * exact). A `bigint` anywhere else (inside `meta`) throws a `TypeError`,
 * as with `JSON.stringify`: metadata numbers are doubles.
 *
 * @example
 * ```ts
 * import { encodeEvent } from "./protocol.ts";
 * encodeEvent({ event: "pong", nonce: 18446744073709551615n, version: 2 });
 * // '{"event":"pong","nonce":18446744073709551615,"version":2}'
 * ```
 */
export function encodeEvent(event: Event | Command): string {
  try {
    return JSON.stringify(event);
  } catch (e) {
    // Only a bigint makes stringify throw here (JSON.stringify itself never
    // recurses on the stack, however deep the data); huge nonces are rare,
    // so the common path runs without copying.
    if (!(e instanceof TypeError)) throw e;
    const copy = rawBigints(event) as Record<string, unknown>;
    for (const [key, child] of Object.entries(event)) {
      if (META_KEYS.has(key) || typeof child !== "object" || child === null) continue;
      const events = key === "events" && Array.isArray(child);
      setData(copy, key, events ? child.map(rawBigints) : rawBigints(child));
    }
    return JSON.stringify(copy);
  }
}

/**
 * Serializes a command for the wire (client side), without the newline.
 *
 * @example
 * ```ts
 * import { encodeCommand } from "./protocol.ts";
 * encodeCommand({ cmd: "ping", nonce: 1 }); // '{"cmd":"ping","nonce":1}'
 * ```
 */
export function encodeCommand(command: Command): string {
  return encodeEvent(command);
}

/**
 * Builds an `event_list` line from already-serialized events, so the log's
 * bytes are reused instead of parsed and serialized again.
 *
 * @example
 * ```ts
 * import { encodeEventList } from "./protocol.ts";
 * encodeEventList(['{"event":"pong","nonce":1,"version":1}'], false, "i-1", 1);
 * ```
 */
export function encodeEventList(
  events: readonly string[],
  truncated: boolean,
  instanceId: string,
  version: number,
): string {
  return `{"event":"event_list","events":[${events.join(",")}],"truncated":${truncated},` +
    `"instance_id":${JSON.stringify(instanceId)},"version":${version}}`;
}

/**
 * {@linkcode encodeEventList} as UTF-8 bytes with the trailing `\n`, built
 * straight into one buffer of the exact size: a long catch-up never exists
 * as one string (see `DEFAULT_MAX_REPLY_BYTES` for why that matters).
 *
 * @example
 * ```ts
 * import { encodeEventListLine } from "./protocol.ts";
 * new TextDecoder().decode(encodeEventListLine(['{"event":"pong","nonce":1,"version":1}'], false, "i-1", 1));
 * ```
 */
export function encodeEventListLine(
  events: readonly string[],
  truncated: boolean,
  instanceId: string,
  version: number,
): Uint8Array {
  const head = utf8.encode('{"event":"event_list","events":[');
  const tail = utf8.encode(
    `],"truncated":${truncated},"instance_id":${
      JSON.stringify(instanceId)
    },"version":${version}}\n`,
  );
  // Events joined into strings of about 1 Mi characters: one native join
  // and one encode per group instead of one per event, and no string in
  // the reply larger than a group plus one event.
  const groups: string[] = [];
  let start = 0;
  let grouped = 0;
  for (let i = 0; i < events.length; i++) {
    grouped += events[i].length + 1;
    if (grouped >= GROUP_CHARS) {
      groups.push(events.slice(start, i + 1).join(","));
      start = i + 1;
      grouped = 0;
    }
  }
  if (start < events.length) groups.push(events.slice(start).join(","));
  const commas = Math.max(0, groups.length - 1);
  let chars = head.length + tail.length + commas;
  for (const group of groups) chars += group.length;
  // Sized for ASCII (one byte per character), the common case, which needs
  // no pass to measure; text with wider characters is measured, then built.
  return fill(new Uint8Array(chars), head, groups, tail) ?? (() => {
    let size = head.length + tail.length + commas;
    for (const group of groups) size += utf8Length(group);
    return fill(new Uint8Array(size), head, groups, tail)!;
  })();
}

/** Writes head, groups joined by ",", and tail into `out`; null if they do not fit. */
function fill(
  out: Uint8Array,
  head: Uint8Array,
  groups: readonly string[],
  tail: Uint8Array,
): Uint8Array | null {
  out.set(head, 0);
  let offset = head.length;
  for (let i = 0; i < groups.length; i++) {
    if (i > 0) {
      if (offset >= out.length) return null;
      out[offset++] = 0x2c; // ","
    }
    const { read, written } = utf8.encodeInto(groups[i], out.subarray(offset));
    if (read < groups[i].length) return null;
    offset += written;
  }
  if (offset + tail.length !== out.length) return null;
  out.set(tail, offset);
  return out;
}

const GROUP_CHARS = 1 << 20;

/**
 * {@linkcode encodeEventListLine} from events already in UTF-8: `runs` of
 * whole lines, each ending in `\n` (as the event log stores them). The
 * bytes are copied once into the reply; the newlines between events become
 * commas (a `\n` byte cannot occur inside compact JSON).
 *
 * @example
 * ```ts
 * import { encodeEventListRuns } from "./protocol.ts";
 * const run = new TextEncoder().encode('{"event":"pong","nonce":1,"version":1}\n');
 * new TextDecoder().decode(encodeEventListRuns([run], false, "i-1", 1));
 * ```
 */
export function encodeEventListRuns(
  runs: readonly Uint8Array[],
  truncated: boolean,
  instanceId: string,
  version: number,
): Uint8Array {
  const head = utf8.encode('{"event":"event_list","events":[');
  const tail = utf8.encode(
    `],"truncated":${truncated},"instance_id":${
      JSON.stringify(instanceId)
    },"version":${version}}\n`,
  );
  let events = 0;
  for (const run of runs) events += run.length;
  // The last event's newline is not copied.
  if (events > 0) events--;
  const out = new Uint8Array(head.length + events + tail.length);
  out.set(head, 0);
  let offset = head.length;
  for (const run of runs) {
    const take = Math.min(run.length, head.length + events - offset);
    out.set(take === run.length ? run : run.subarray(0, take), offset);
    offset += take;
  }
  for (
    let lf = out.indexOf(0x0a, head.length);
    lf >= 0 && lf < offset;
    lf = out.indexOf(0x0a, lf + 1)
  ) {
    out[lf] = 0x2c; // ","
  }
  out.set(tail, offset);
  return out;
}
const utf8 = new TextEncoder();

/** What {@linkcode decodeEvent} returns. */
export type DecodeEventResult =
  | { ok: true; event: Event }
  | { ok: false; reason: string };

/**
 * Decodes one event line (client side). It checks the envelope, an `event`
 * tag and a numeric `version`, and trusts the server for the rest; integers
 * above 2^53 - 1 come back as `bigint`.
 *
 * @example
 * ```ts
 * import { decodeEvent } from "./protocol.ts";
 * decodeEvent('{"event":"pong","nonce":1,"version":4}');
 * ```
 */
export function decodeEvent(line: string): DecodeEventResult {
  let value: unknown;
  try {
    value = parseJson(line);
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, reason: "expected a JSON object" };
  }
  const { event, version } = value as { event?: unknown; version?: unknown };
  if (typeof event !== "string") return { ok: false, reason: "missing field `event`" };
  if (typeof version !== "number" && typeof version !== "bigint") {
    return { ok: false, reason: "missing field `version`" };
  }
  return { ok: true, event: value as Event };
}
