/**
 * Addressing on the command line: wherever an id is expected, a full id, a
 * unique id prefix (4 characters or more) or a unique name of the right
 * kind, as docker takes a name or an id prefix. Tabs and blocks are looked
 * for under their parent when the command names it.
 *
 * @module
 */

import { escapeControls } from "../client/format_tree.ts";
import type { State } from "../core/state.ts";
import { UsageError } from "./_terminal.ts";

/** What an id field addresses, by its name (`src_workspace_id` is a workspace). */
export type EntityKind = "workspace" | "tab" | "block";

/** The kind an id field addresses, or undefined for a field that is no id. */
export function kindOfField(field: string): EntityKind | undefined {
  if (field.endsWith("workspace_id")) return "workspace";
  if (field.endsWith("tab_id") || field === "tab_ids") return "tab";
  if (field.endsWith("block_id")) return "block";
  return undefined;
}

/** Shortest prefix taken as one: shorter ones would match nearly everything. */
export const MIN_PREFIX = 4;

/** A server id srv makes itself (a UUID): taken as given, no lookup needed. */
const FULL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Entity {
  readonly id: string;
  readonly name?: string;
  readonly parent?: string;
}

function entities(state: State, kind: EntityKind): Entity[] {
  switch (kind) {
    case "workspace":
      return [...state.workspaces.values()].map(({ id, name }) => ({ id, name }));
    case "tab":
      return [...state.tabs.values()].map(({ id, name, workspaceId }) => ({
        id,
        name,
        parent: workspaceId,
      }));
    case "block":
      return [...state.blocks.values()].map(({ id, tabId }) => ({ id, parent: tabId }));
    default: {
      const unhandled: never = kind;
      throw new Error(`unknown kind ${unhandled}`);
    }
  }
}

/**
 * A name or prefix that matches nothing of its kind: said by the CLI
 * without sending (a delete of an unknown id is a silent no-op on the
 * server), with the not-found exit code of a server refusal (7).
 */
export class NoMatch extends Error {}

/**
 * The id `value` stands for. A full id that matches nothing is returned as
 * it is, so the server answers for it as it would for any id; a name or
 * prefix that matches nothing is a {@linkcode NoMatch}; more than one match
 * is a usage error listing them.
 */
export function resolveId(
  state: State,
  kind: EntityKind,
  value: string,
  label: string,
  parent?: string,
): string {
  const all = entities(state, kind);
  if (all.some((e) => e.id === value)) return value;
  const scoped = parent !== undefined && all.some((e) => e.parent === parent)
    ? all.filter((e) => e.parent === parent)
    : all;
  const found = scoped.filter((e) =>
    e.name === value || (value.length >= MIN_PREFIX && e.id.startsWith(value))
  );
  if (found.length === 1) return found[0].id;
  if (found.length === 0) {
    if (FULL_ID.test(value)) return value;
    throw new NoMatch(`no ${kind} matches "${escapeControls(value)}"`);
  }
  const listed = found.map((e) =>
    e.name === undefined
      ? escapeControls(e.id)
      : `${escapeControls(e.id)} (${escapeControls(e.name)})`
  );
  throw new UsageError(
    `${label} "${escapeControls(value)}" matches ${found.length} ${kind}s: ${listed.join(", ")}`,
  );
}

/** Whether resolving `command`'s ids needs the tree (false when every id is a full UUID). */
export function needsLookup(command: Record<string, unknown>): boolean {
  return Object.entries(command).some(([field, value]) =>
    kindOfField(field) !== undefined &&
    (Array.isArray(value) ? value : [value]).some((v) => typeof v === "string" && !FULL_ID.test(v))
  );
}

const ORDER: readonly EntityKind[] = ["workspace", "tab", "block"];

/**
 * `command` with every id field resolved against `state`: workspaces first,
 * so a tab is looked for in the workspace the command names (`workspace_id`
 * or `src_workspace_id`), and a block in its tab.
 */
export function resolveCommand(
  state: State,
  command: Record<string, unknown>,
  labels: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const resolved = { ...command };
  for (const kind of ORDER) {
    const parent = kind === "tab"
      ? resolved.workspace_id ?? resolved.src_workspace_id
      : kind === "block"
      ? resolved.tab_id ?? resolved.src_tab_id
      : undefined;
    for (const [field, value] of Object.entries(resolved)) {
      if (kindOfField(field) !== kind) continue;
      const label = labels[field] ?? field;
      const one = (v: unknown) =>
        typeof v === "string" ? resolveId(state, kind, v, label, parent as string) : v;
      resolved[field] = Array.isArray(value) ? value.map(one) : one(value);
    }
  }
  return resolved;
}
