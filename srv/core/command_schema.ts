/**
 * The command schemas of docs/PROTOCOL.md §3: one table of every command's
 * fields, the superstruct schemas built from it (the authority, and the
 * source of precise error messages) and the fast predicate that accepts
 * exactly what they accept. {@linkcode decodeCommand} in `codec.ts` uses both.
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
import {
  CLIENT_KINDS,
  type ClientKind,
  type Command,
  type DomainCommand,
  type DomainEvent,
  type Event,
  type EventName,
  type Json,
  type JsonObject,
  type LauncherCommand,
  MAX_BATCH_COMMANDS,
  type U64,
  U64_MAX,
} from "./protocol.ts";

// ---------------------------------------------------------------------------
// Command schemas

// One table describes every command's fields. From it come the superstruct
// schemas (the authority, and the source of precise error messages) and a
// plain predicate per command that accepts exactly what the schema accepts
// without superstruct's per-call machinery: valid lines, the hot path, are
// checked in tens of nanoseconds; only a line the predicate rejects goes
// through superstruct to learn why. tests/core/protocol_test.ts checks both agree.

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
 * import { isJsonObject } from "./command_schema.ts";
 * isJsonObject({ a: 1 }); // true
 * isJsonObject([1]); // false
 * ```
 */
export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
/** A client-chosen id (docs/PROTOCOL.md §11.2): a lowercase UUID. */
export const ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
function isId(v: unknown): boolean {
  return typeof v === "string" && ID_PATTERN.test(v);
}
// The list's shape only; each element is decoded as a command of its own
// by `codec.ts`, so its parse error names the element and the field.
function isCommandList(v: unknown): boolean {
  return Array.isArray(v) && v.length >= 1 && v.length <= MAX_BATCH_COMMANDS;
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
  id: {
    struct: optional(nullable(define<string>("lowercase UUID", isId))),
    accepts: (v: unknown) => v === undefined || v === null || isId(v),
  },
  optU64: {
    struct: optional(nullable(define<U64>("u64", isU64))),
    accepts: (v: unknown) => v === undefined || v === null || isU64(v),
  },
  commands: {
    struct: define<DomainCommand[]>(
      `a list of 1 to ${MAX_BATCH_COMMANDS} commands`,
      isCommandList,
    ),
    accepts: isCommandList,
  },
} satisfies { [R in Rule]: FieldRule };

/** The name of a field rule: how a command's field is checked (and how the CLI reads it). */
export type Rule =
  | "string"
  | "name"
  | "u32"
  | "u64"
  | "kind"
  | "flag"
  | "strings"
  | "object"
  | "anyJson"
  | "id"
  | "optU64"
  | "commands";

/** The value each rule accepts, so a row's rule can be checked against its field's type. */
interface RuleValue {
  string: string;
  name: string;
  u32: number;
  u64: U64;
  kind: ClientKind;
  flag: boolean | null | undefined;
  strings: string[];
  object: JsonObject;
  anyJson: Json | undefined;
  id: string | null | undefined;
  optU64: U64 | null | undefined;
  commands: DomainCommand[];
}
// A rule missing from RuleValue (or one too many) fails here.
type _RulesTyped = Expect<Same<keyof RuleValue, Rule>>;

// Type-level checks: `Expect<Same<A, B>>` does not compile unless A and B are the same set.
type Same<A, B> = [A] extends [B] ? [B] extends [A] ? true : false : false;
type Expect<T extends true> = T;

/** Every command in the registry: all of {@linkcode Command} but the launcher pipe's. */
export type RegisteredCommand = Exclude<Command, LauncherCommand>;
/** The `cmd` of every {@linkcode RegisteredCommand}. */
export type RegisteredCommandName = RegisteredCommand["cmd"];
/** The field names of command `K` (`cmd` aside). */
export type FieldOf<K extends RegisteredCommandName> = Exclude<
  keyof Extract<RegisteredCommand, { cmd: K }>,
  "cmd"
>;
/** The rules that accept only values field `F` of command `K` may hold. */
type RuleFor<K extends RegisteredCommandName, F extends FieldOf<K>> = {
  [R in Rule]: RuleValue[R] extends Extract<RegisteredCommand, { cmd: K }>[F] ? R : never;
}[Rule];

/**
 * How a domain command is spelt on the command line:
 * `srv <noun> <verb> ARGS... [--flag]`. Each positional names the field it
 * fills and is read by that field's rule; a flag is a field of the same
 * name (`--force` for a `flag` rule, `--meta JSON` for the others).
 */
export interface CliVerb<F extends string = string> {
  /** The first word: what the verb acts on. */
  readonly noun: "workspace" | "tab" | "block";
  /** The second word: what it does. */
  readonly verb: string;
  /** Positionals in order: the field each fills and its name in the usage text. */
  readonly args: readonly (readonly [field: F, metavar: string])[];
  /** Fields given as `--field`; absent means not sent (the decoder's default applies). */
  readonly flags?: readonly F[];
  /** Each flag's line in the verb's help: what it does for this command. */
  readonly flagHelp?: { readonly [K in F]?: string };
  /** One line for the usage text. */
  readonly summary: string;
  /** One example command line, for per-verb help (ids by name or prefix, as people type them). */
  readonly example: string;
}

/** One registry row: a command's fields and their rules, its CLI verb, the events it may cause. */
type CommandRow<K extends RegisteredCommandName> =
  & {
    /** Every field of the command and the rule it is checked by (missing or extra: a compile error). */
    readonly fields: { readonly [F in FieldOf<K>]-?: RuleFor<K, F> };
    /** The events a success may cause (an `error` is always possible and not listed). */
    readonly causes: readonly Exclude<EventName, "error">[];
  }
  & (K extends DomainCommand["cmd"] ? { readonly cli: CliVerb<FieldOf<K> & string> }
    : { readonly cli?: never });

/** The shape of {@linkcode COMMAND_REGISTRY}: one row per registered command, no more, no less. */
type CommandRegistry = { readonly [K in RegisteredCommandName]: CommandRow<K> };

/**
 * The one command registry (as Watchman's `W_CMD_REG`, but data): every
 * command srv accepts, its fields and their rules, the events it may cause,
 * and, for domain commands, the CLI verb that sends it. The decoder's
 * schemas and fast predicate, the CLI's domain verbs and their usage text,
 * {@linkcode CommandEventMap} and {@linkcode DOMAIN_EVENT_NAMES} all come
 * from it. It is typed against the hand-written command interfaces of
 * `protocol.ts` (which stay the documentation): a missing or extra command,
 * a missing or extra field, or a rule that does not fit a field's type is a
 * compile error.
 *
 * Adding a command: its interface and union member in `protocol.ts`, one
 * row here, its case in `decide` (and `evolve` for a new event), tests.
 */
export const COMMAND_REGISTRY = {
  register: {
    fields: { kind: "kind", pid: "u32", version: "string", observe: "flag" },
    causes: ["process_spawned", "lifecycle_phase_changed", "registered"],
  },
  ping: { fields: { nonce: "u64" }, causes: ["pong"] },
  goodbye: { fields: {}, causes: ["process_exited"] },
  get_srv_snapshot: { fields: {}, causes: ["srv_snapshot"] },
  get_events: { fields: { since: "u64" }, causes: ["event_list"] },
  get_server_info: { fields: {}, causes: ["server_info"] },
  create_workspace: {
    fields: { name: "name", workspace_id: "id" },
    causes: ["workspace_created"],
    cli: {
      noun: "workspace",
      verb: "create",
      args: [["name", "NAME"]],
      summary: "create a workspace",
      example: "srv workspace create main",
    },
  },
  delete_workspace: {
    fields: { workspace_id: "string", force: "flag" },
    causes: ["workspace_deleted"],
    cli: {
      noun: "workspace",
      verb: "delete",
      args: [["workspace_id", "ID"]],
      flags: ["force"],
      // docs/PROTOCOL.md §6: delete_workspace always deletes.
      flagHelp: { force: "accepted and ignored: a workspace is always deleted" },
      summary: "delete a workspace with its tabs and blocks",
      example: "srv workspace delete main",
    },
  },
  rename_workspace: {
    fields: { workspace_id: "string", name: "name" },
    causes: ["workspace_renamed"],
    cli: {
      noun: "workspace",
      verb: "rename",
      args: [["workspace_id", "ID"], ["name", "NAME"]],
      summary: "rename a workspace",
      example: "srv workspace rename main work",
    },
  },
  create_tab: {
    fields: { workspace_id: "string", name: "name", tab_id: "id" },
    causes: ["tab_created", "active_tab_changed"],
    cli: {
      noun: "tab",
      verb: "create",
      args: [["workspace_id", "WS"], ["name", "NAME"]],
      summary: "create a tab (a first tab becomes active)",
      example: "srv tab create main shell",
    },
  },
  delete_tab: {
    fields: { workspace_id: "string", tab_id: "string", force: "flag" },
    causes: ["tab_deleted", "active_tab_changed"],
    cli: {
      noun: "tab",
      verb: "delete",
      args: [["workspace_id", "WS"], ["tab_id", "TAB"]],
      flags: ["force"],
      flagHelp: { force: "delete even the workspace's last tab" },
      summary: "delete a tab and its blocks (the last needs --force)",
      example: "srv tab delete main shell --force",
    },
  },
  rename_tab: {
    fields: { tab_id: "string", name: "name" },
    causes: ["tab_renamed"],
    cli: {
      noun: "tab",
      verb: "rename",
      args: [["tab_id", "TAB"], ["name", "NAME"]],
      summary: "rename a tab",
      example: "srv tab rename shell logs",
    },
  },
  set_active_tab: {
    fields: { workspace_id: "string", tab_id: "string" },
    causes: ["active_tab_changed"],
    cli: {
      noun: "tab",
      verb: "activate",
      args: [["workspace_id", "WS"], ["tab_id", "TAB"]],
      summary: "make a tab its workspace's active tab",
      example: "srv tab activate main logs",
    },
  },
  reorder_tab: {
    fields: { workspace_id: "string", tab_id: "string", new_index: "u32" },
    causes: ["tab_reordered"],
    cli: {
      noun: "tab",
      verb: "reorder",
      args: [["workspace_id", "WS"], ["tab_id", "TAB"], ["new_index", "INDEX"]],
      summary: "move a tab to INDEX (clamped) in its workspace",
      example: "srv tab reorder main logs 0",
    },
  },
  reorder_tabs_bulk: {
    fields: { workspace_id: "string", tab_ids: "strings" },
    causes: ["tabs_reordered_bulk"],
    cli: {
      noun: "tab",
      verb: "order",
      args: [["workspace_id", "WS"], ["tab_ids", "TAB..."]],
      summary: "set the order of all of a workspace's tabs",
      example: "srv tab order main logs shell",
    },
  },
  move_tab: {
    fields: {
      tab_id: "string",
      src_workspace_id: "string",
      dst_workspace_id: "string",
      dst_index: "u32",
    },
    causes: ["tab_moved"],
    cli: {
      noun: "tab",
      verb: "move",
      args: [
        ["tab_id", "TAB"],
        ["src_workspace_id", "SRC_WS"],
        ["dst_workspace_id", "DST_WS"],
        ["dst_index", "INDEX"],
      ],
      summary: "move a tab to INDEX of a workspace",
      example: "srv tab move logs main work 0",
    },
  },
  create_block: {
    fields: { tab_id: "string", meta: "anyJson", block_id: "id" },
    causes: ["block_created"],
    cli: {
      noun: "block",
      verb: "create",
      args: [["tab_id", "TAB"]],
      flags: ["meta"],
      flagHelp: { meta: "the block's meta, any JSON (default null)" },
      summary: "create a block, --meta any JSON (default null)",
      example: `srv block create shell --meta '{"kind":"term"}'`,
    },
  },
  delete_block: {
    fields: { tab_id: "string", block_id: "string" },
    causes: ["block_deleted"],
    cli: {
      noun: "block",
      verb: "delete",
      args: [["tab_id", "TAB"], ["block_id", "BLOCK"]],
      summary: "delete a block",
      example: "srv block delete shell c81f",
    },
  },
  move_block: {
    fields: { block_id: "string", src_tab_id: "string", dst_tab_id: "string", dst_index: "u32" },
    causes: ["block_moved"],
    cli: {
      noun: "block",
      verb: "move",
      args: [
        ["block_id", "BLOCK"],
        ["src_tab_id", "SRC_TAB"],
        ["dst_tab_id", "DST_TAB"],
        ["dst_index", "INDEX"],
      ],
      summary: "move a block to INDEX of a tab",
      example: "srv block move c81f shell logs 0",
    },
  },
  update_workspace_meta: {
    fields: { workspace_id: "string", meta_patch: "object" },
    causes: ["workspace_meta_updated"],
    cli: {
      noun: "workspace",
      verb: "meta",
      args: [["workspace_id", "ID"], ["meta_patch", "PATCH"]],
      summary: "merge PATCH into a workspace's metadata",
      example: `srv workspace meta main '{"color":"red"}'`,
    },
  },
  update_tab_meta: {
    fields: { tab_id: "string", meta_patch: "object" },
    causes: ["tab_meta_updated"],
    cli: {
      noun: "tab",
      verb: "meta",
      args: [["tab_id", "TAB"], ["meta_patch", "PATCH"]],
      summary: "merge PATCH into a tab's metadata",
      example: `srv tab meta shell '{"pinned":true}'`,
    },
  },
  update_block_meta: {
    fields: { block_id: "string", meta_patch: "object" },
    causes: ["block_meta_updated"],
    cli: {
      noun: "block",
      verb: "meta",
      args: [["block_id", "BLOCK"], ["meta_patch", "PATCH"]],
      summary: "merge PATCH into a block's metadata",
      example: `srv block meta c81f '{"title":"build"}'`,
    },
  },
  // Protocol 2 (§11.3). Its elements are domain commands, decoded one by
  // one by `codec.ts`; it may cause any domain event.
  batch: {
    fields: { commands: "commands", if_unchanged_since: "optU64" },
    causes: [
      "workspace_created",
      "workspace_deleted",
      "workspace_renamed",
      "tab_created",
      "tab_deleted",
      "tab_renamed",
      "active_tab_changed",
      "tab_reordered",
      "tabs_reordered_bulk",
      "tab_moved",
      "block_created",
      "block_deleted",
      "block_moved",
      "workspace_meta_updated",
      "tab_meta_updated",
      "block_meta_updated",
    ],
  },
} as const satisfies CommandRegistry;

/**
 * The events each registered command may cause, from
 * {@linkcode COMMAND_REGISTRY}'s `causes` (an `error` rejects instead).
 * `SrvClient.command` resolves with `CommandEventMap[cmd][]`.
 */
export type CommandEventMap = {
  [K in RegisteredCommandName]: Extract<
    Event,
    { event: (typeof COMMAND_REGISTRY)[K]["causes"][number] }
  >;
};

/** The name of every event a domain command may cause. */
export type DomainEventName = CommandEventMap[DomainCommand["cmd"]]["event"];
// The registry's domain events are exactly the DomainEvent union's.
type _DomainEventsTyped = Expect<Same<DomainEventName, DomainEvent["event"]>>;

/**
 * Every {@linkcode DomainEvent}'s name, the events that change the tree:
 * what domain commands cause, in registry order.
 *
 * @example
 * ```ts
 * import { DOMAIN_EVENT_NAMES } from "./command_schema.ts";
 * DOMAIN_EVENT_NAMES.includes("tab_moved"); // true
 * ```
 */
export const DOMAIN_EVENT_NAMES: readonly DomainEventName[] = [
  ...new Set(
    Object.values(COMMAND_REGISTRY).flatMap((row) =>
      "cli" in row ? row.causes as readonly DomainEventName[] : []
    ),
  ),
];

/** One command's superstruct schema and its fast per-field predicates. */
export interface CommandSchema {
  // deno-lint-ignore no-explicit-any
  readonly struct: Struct<any, any>;
  readonly fields: readonly [name: string, accepts: (value: unknown) => boolean][];
}

// Built once: decoding dispatches on `cmd` and validates only that variant.
/** Every command's schema and fast predicate, by `cmd` (used by `codec.ts`). */
export const COMMAND_SCHEMAS: ReadonlyMap<string, CommandSchema> = new Map(
  Object.entries(COMMAND_REGISTRY).map(([cmd, row]) => {
    const entries = Object.entries(row.fields as Record<string, Rule>);
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
 * import { commandShapeAccepts } from "./command_schema.ts";
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

/** Whether `value` passes the fast predicate of `schema`. */
export function fastAccepts(schema: CommandSchema, value: Record<string, unknown>): boolean {
  for (const [field, accepts] of schema.fields) if (!accepts(value[field])) return false;
  return true;
}

/**
 * The `cmd` of every domain command, the ones a `batch` may hold: the
 * registry's rows with a CLI verb.
 *
 * @example
 * ```ts
 * import { DOMAIN_COMMAND_NAMES } from "./command_schema.ts";
 * DOMAIN_COMMAND_NAMES.has("move_tab"); // true
 * DOMAIN_COMMAND_NAMES.has("ping"); // false
 * ```
 */
export const DOMAIN_COMMAND_NAMES: ReadonlySet<string> = new Set(
  Object.entries(COMMAND_REGISTRY).flatMap(([cmd, row]) => "cli" in row ? [cmd] : []),
);

/** Every `cmd` tag srv accepts (launcher-pipe names aside). */
export const COMMAND_NAMES: readonly string[] = [...COMMAND_SCHEMAS.keys()];

/**
 * Whether `cmd` names a command of the reference's launcher pipe, which srv
 * parses but does not accept (docs/PROTOCOL.md §3).
 *
 * @example
 * ```ts
 * import { isLauncherCommandName } from "./command_schema.ts";
 * isLauncherCommandName("report_exit"); // true
 * ```
 */
export function isLauncherCommandName(cmd: string): cmd is LauncherCommand["cmd"] {
  return cmd === "get_snapshot" || cmd.startsWith("report_");
}
