/**
 * The command schemas of PROTOCOL.md §3: one table of every command's
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
  type JsonObject,
  type LauncherCommand,
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

/** One command's superstruct schema and its fast per-field predicates. */
export interface CommandSchema {
  // deno-lint-ignore no-explicit-any
  readonly struct: Struct<any, any>;
  readonly fields: readonly [name: string, accepts: (value: unknown) => boolean][];
}

// Built once: decoding dispatches on `cmd` and validates only that variant.
/** Every command's schema and fast predicate, by `cmd` (used by `codec.ts`). */
export const COMMAND_SCHEMAS: ReadonlyMap<string, CommandSchema> = new Map(
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

/** Every `cmd` tag srv accepts (launcher-pipe names aside). */
export const COMMAND_NAMES: readonly string[] = [...COMMAND_SCHEMAS.keys()];

/**
 * Whether `cmd` names a command of the reference's launcher pipe, which srv
 * parses but does not accept (PROTOCOL.md §3).
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
