/**
 * `batch` (docs/PROTOCOL.md §11.3), pure: {@linkcode decideBatch} checks the
 * condition, then decides the commands one by one against a draft of the
 * state and returns either every event (each with `batch_end`) or one
 * private error. Nothing of the draft survives: the caller applies the
 * events to its state, as it applies any command's, so a replay of the
 * logged events rebuilds exactly what the batch did.
 *
 * @module
 */

import { COMMAND_REGISTRY } from "./command_schema.ts";
import { decide, type ReducerContext, type ReducerEvent } from "./decide.ts";
import { encodeEvent } from "./codec.ts";
import { evolveShared } from "./evolve.ts";
import { utf8Bytes } from "./limits.ts";
import type { BatchCommand, DomainCommand, ErrorCode, ErrorEvent, U64 } from "./protocol.ts";
import { lastChangeOf, type State } from "./state.ts";

/**
 * A map that reads through to a base map and keeps its own writes and
 * deletes, leaving the base untouched. Entities are replaced, never
 * mutated, by `evolve`, so sharing the base's values is safe. Reads and
 * writes cost O(1) whatever the base's size: a batch costs what its
 * commands touch, not what the tree holds.
 */
class Overlay<K, V> extends Map<K, V> {
  readonly #base: ReadonlyMap<K, V>;
  readonly #gone = new Set<K>();
  #size: number;

  constructor(base: ReadonlyMap<K, V>) {
    super();
    this.#base = base;
    this.#size = base.size;
  }
  override get size(): number {
    return this.#size;
  }
  override get(key: K): V | undefined {
    if (super.has(key)) return super.get(key);
    return this.#gone.has(key) ? undefined : this.#base.get(key);
  }
  override has(key: K): boolean {
    return super.has(key) || (!this.#gone.has(key) && this.#base.has(key));
  }
  override set(key: K, value: V): this {
    if (!this.has(key)) this.#size++;
    this.#gone.delete(key);
    return super.set(key, value);
  }
  override delete(key: K): boolean {
    const present = this.has(key);
    super.delete(key);
    if (this.#base.has(key)) this.#gone.add(key);
    if (present) this.#size--;
    return present;
  }
  override clear(): void {
    for (const key of this.#base.keys()) this.#gone.add(key);
    super.clear();
    this.#size = 0;
  }
  override *entries(): MapIterator<[K, V]> {
    for (const [key, value] of this.#base) {
      if (this.#gone.has(key)) continue;
      yield [key, super.has(key) ? super.get(key)! : value];
    }
    for (const entry of super.entries()) if (!this.#base.has(entry[0])) yield entry;
  }
  override *keys(): MapIterator<K> {
    for (const [key] of this.entries()) yield key;
  }
  override *values(): MapIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }
  override [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }
  override forEach(fn: (value: V, key: K, map: Map<K, V>) => void, self?: unknown): void {
    for (const [key, value] of this.entries()) fn.call(self, value, key, this);
  }
}

/** A draft of `state` that `evolveShared` may change without touching `state`. */
function draftOf(state: State): State {
  return {
    ...state,
    workspaces: new Overlay(state.workspaces),
    tabs: new Overlay(state.tabs),
    blocks: new Overlay(state.blocks),
    // Domain events never touch process records; the draft is never
    // given anything else.
    changedAt: new Overlay(state.changedAt),
  };
}

/** A failed batch's private error (§11.3): version 0, with the failing command's index. */
function batchError(code: ErrorCode, message: string, index: number | null): ErrorEvent {
  return { event: "error", code, message, fatal: false, index, version: 0 };
}

/** The entity kind a `*_id` field names, from its name. */
function kindOfField(field: string): "workspace" | "tab" | "block" | null {
  if (field.includes("workspace")) return "workspace";
  if (field.includes("tab")) return "tab";
  if (field.includes("block")) return "block";
  return null;
}

/**
 * Every entity a command names: its `*_id` fields and the ids of
 * `tab_ids`, among the fields its command has (the registry's): a field
 * srv does not know is skipped (§2), whatever its name.
 */
function* namedBy(command: DomainCommand): Generator<[kind: string, id: string]> {
  const fields: Record<string, unknown> = COMMAND_REGISTRY[command.cmd].fields;
  for (const field in fields) {
    const value = (command as unknown as Record<string, unknown>)[field];
    const kind = kindOfField(field);
    if (kind === null) continue;
    if (field.endsWith("_id") && typeof value === "string") yield [kind, value];
    if (field === "tab_ids" && Array.isArray(value)) {
      for (const id of value) if (typeof id === "string") yield [kind, id];
    }
  }
}

function after(version: number, since: U64): boolean {
  return typeof since === "bigint" ? BigInt(version) > since : version > since;
}

/**
 * The condition of §11.3: the first entity the commands name that changed
 * after `since`, as the message of `precondition_failed`, or null.
 */
function conflictOf(state: State, commands: readonly DomainCommand[], since: U64): string | null {
  // A version srv never issued cannot be what the client looked at: it
  // comes from another instance (a --memory server before its restart, a
  // store since replaced) or from nowhere, and "nothing changed after it"
  // would be a success srv cannot vouch for.
  if (typeof since === "bigint" ? since > BigInt(state.eventVersion) : since > state.eventVersion) {
    return `Batch: if_unchanged_since ${since} is after the current version ${state.eventVersion}`;
  }
  for (const command of commands) {
    for (const [kind, id] of namedBy(command)) {
      const at = lastChangeOf(state, id);
      if (after(at, since)) return `Batch: ${kind} ${id} changed at version ${at} (after ${since})`;
    }
  }
  return null;
}

/**
 * Decides a `batch` (docs/PROTOCOL.md §11.3), all or nothing. On success: the
 * events of every command, in order, with consecutive versions from the
 * state's next, each carrying `batch_end` (the last one's version);
 * commands that change nothing add none, so an empty list is a success
 * too. On failure: exactly one private error (version 0) and no version
 * used: `precondition_failed` when the condition fails, otherwise
 * `invalid_command` naming the first command that would have emitted an
 * error. `state` is never changed; apply the events to it like any
 * command's (`update` does).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decideBatch, initialState } from "@srv/srv";
 *
 * const ws = "6f1c0000-0000-4000-8000-000000000001";
 * const ctx = { registeredPid: 1, newId: () => crypto.randomUUID() };
 * const events = decideBatch(initialState(), {
 *   cmd: "batch",
 *   commands: [
 *     { cmd: "create_workspace", name: "main", workspace_id: ws },
 *     { cmd: "rename_workspace", workspace_id: ws, name: "work" },
 *   ],
 * }, ctx);
 * assert.deepEqual(events.map((e) => [e.event, e.version, "batch_end" in e && e.batch_end]), [
 *   ["workspace_created", 1, 2],
 *   ["workspace_renamed", 2, 2],
 * ]);
 * ```
 */
export function decideBatch(
  state: State,
  command: BatchCommand,
  ctx: ReducerContext,
): ReducerEvent[] {
  return decideBatchLines(state, command, ctx).events;
}

/** {@linkcode decideBatchLines}'s result. */
export interface DecidedBatch {
  /** What {@linkcode decideBatch} returns. */
  readonly events: ReducerEvent[];
  /**
   * Each event's `encodeEvent` text, index for index, when the batch was
   * measured against `maxBatchBytes` and succeeded; otherwise null.
   */
  readonly lines: readonly string[] | null;
}

/**
 * {@linkcode decideBatch}, handing on the lines it encoded to measure the
 * batch, so the caller logs and sends them without encoding the events a
 * second time.
 */
export function decideBatchLines(
  state: State,
  command: BatchCommand,
  ctx: ReducerContext,
): DecidedBatch {
  const refused = (error: ErrorEvent): DecidedBatch => ({ events: [error], lines: null });
  const since = command.if_unchanged_since;
  if (since !== undefined && since !== null) {
    const conflict = conflictOf(state, command.commands, since);
    if (conflict !== null) return refused(batchError("precondition_failed", conflict, null));
  }
  let draft = draftOf(state);
  // The draft's entities share their child lists with `state`'s until the
  // batch changes one: each is copied once, then changed in place.
  const copies = new Set<readonly string[]>();
  const events: ReducerEvent[] = [];
  for (let i = 0; i < command.commands.length; i++) {
    const one = command.commands[i];
    const decided = decide(draft, one, ctx);
    for (const event of decided) {
      if (event.event === "error") {
        const message = `Batch: command ${i} (${one.cmd}) failed: ${event.message}`;
        return refused(batchError("invalid_command", message, i));
      }
      draft = evolveShared(draft, event, copies);
      events.push(event);
    }
  }
  const end = events.at(-1)?.version;
  // `batch_end` goes before `version`, the last field of every event (§2).
  const run = events.map(({ version, ...rest }) =>
    ({ ...rest, batch_end: end, version }) as ReducerEvent
  );
  const max = ctx.maxBatchBytes;
  if (max === undefined) return { events: run, lines: null };
  const lines = run.map(encodeEvent);
  let bytes = 0;
  for (const line of lines) bytes += utf8Bytes(line) + 1;
  if (bytes > max) {
    const message = `Batch: its events take ${bytes} bytes, more than half of ` +
      `--max-queue-bytes (${max})`;
    return refused(batchError("invalid_command", message, null));
  }
  return { events: run, lines };
}
