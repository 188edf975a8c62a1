/**
 * The size bounds of docs/PROTOCOL.md §10 that the reducer enforces, and how
 * srv measures what they bound: UTF-8 bytes of names, compact JSON bytes of
 * metadata, and the running total of both that the state carries.
 *
 * @module
 */

import type { Json } from "./protocol.ts";
import type { State } from "./state.ts";

/**
 * What one srv accepts into its tree. Each field is a `srv serve` flag
 * ({@linkcode LIMIT_FLAGS}); a command that would cross one gets a
 * broadcast `invalid_command` error naming the limit and the flag, and the
 * state stays as it was.
 */
export interface Limits {
  /** UTF-8 bytes of a workspace or tab name. */
  readonly maxNameBytes: number;
  /** Compact JSON bytes of one entity's `meta`, after its patch. */
  readonly maxMetaBytes: number;
  /** Most workspaces at once. */
  readonly maxWorkspaces: number;
  /** Most tabs at once, over all workspaces. */
  readonly maxTabs: number;
  /** Most blocks at once, over all tabs. */
  readonly maxBlocks: number;
  /** Every name and every meta together, as JSON writes them ({@linkcode nameBytes}, {@linkcode jsonBytes}). */
  readonly maxStateBytes: number;
}

/**
 * The defaults of docs/PROTOCOL.md §10, and why they keep srv alive.
 *
 * V8 cannot build a string longer than 2^29 - 24 characters (~512 Mi), and
 * a `srv_snapshot` is one string (the store keeps one row per entity and
 * never serializes the whole tree). With these caps the largest possible
 * snapshot is well under that, and under the 256 MiB hard output limit
 * (srv/server/peer.ts) with a full catch-up reply behind it:
 *
 * - names and metas: at most 128 MiB (maxStateBytes), each counted as it
 *   appears in a JSON line (compact JSON for a meta, {@linkcode nameBytes}
 *   for a name, escapes included), so ≤ 128 MiB of the snapshot's bytes
 *   and characters (a character is at least one byte);
 * - structure: a block appears in `blocks`, `block_order` and `meta.blocks`
 *   with its id (36 characters) and its tab's id: measured ~160 characters
 *   × 100,000 blocks = 16 Mi; a workspace or tab ~205 characters × 20,000
 *   = 4 Mi.
 *
 * Total ≤ 128 + 20 = 148 Mi (measured: 147 MiB for 10,000 workspaces and
 * 10,000 tabs named with 1 KiB of control characters, 100,000 blocks and
 * the rest in 64 KiB metas), so `srv_snapshot` always encodes, and 148 +
 * 64 MiB (`--max-reply-bytes`) < 256 MiB. Were names counted in UTF-8
 * bytes, their 6-byte escapes (`\u0001`) would let the same tree reach
 * 245 MiB. The replies that grow with the history rather than the tree,
 * `event_list` (catch-up), are bounded by bytes where the server builds
 * them (the delivery bound of §10, srv/server/server.ts and srv/server/peer.ts), not
 * here; one event is at most a line (`--max-line-bytes`) plus the ids srv
 * adds, or a cascade's `block_ids` (≤ 100,000 × 39 characters ≈ 4 Mi).
 */
export const DEFAULT_LIMITS: Limits = {
  maxNameBytes: 1024,
  maxMetaBytes: 64 * 1024,
  maxWorkspaces: 10_000,
  maxTabs: 10_000,
  maxBlocks: 100_000,
  maxStateBytes: 128 * 1024 * 1024,
};

/** The `srv serve` flag of each limit, named in every refusal. */
export const LIMIT_FLAGS: Readonly<Record<keyof Limits, string>> = {
  maxNameBytes: "--max-name-bytes",
  maxMetaBytes: "--max-meta-bytes",
  maxWorkspaces: "--max-workspaces",
  maxTabs: "--max-tabs",
  maxBlocks: "--max-blocks",
  maxStateBytes: "--max-state-bytes",
};

// Anything outside ASCII (including lone surrogates) needs the slow count.
const NON_ASCII = /[\u0080-\uffff]/;

/**
 * UTF-8 bytes of a string, as `TextEncoder` would write it (a lone
 * surrogate becomes U+FFFD, 3 bytes), without encoding it.
 *
 * @example
 * ```ts
 * import { utf8Bytes } from "./limits.ts";
 * utf8Bytes("héllo"); // 6
 * ```
 */
export function utf8Bytes(text: string): number {
  if (!NON_ASCII.test(text)) return text.length;
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

// What JSON.stringify escapes in a string: control characters, `"`, `\`
// and lone surrogates (well-formed JSON.stringify).
// deno-lint-ignore no-control-regex
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * Bytes a name takes inside a JSON line (a snapshot, an event), without its
 * quotes: its UTF-8 bytes, plus what JSON escaping adds (`\u0001` is 6
 * bytes for one). `--max-state-bytes` counts names this way, so a tree of
 * names made of control characters cannot make a snapshot 6 times larger
 * than the total the cap allows.
 *
 * @example
 * ```ts
 * import { nameBytes } from "./limits.ts";
 * nameBytes("héllo"); // 6
 * nameBytes("\u0001"); // 6
 * ```
 */
export function nameBytes(name: string): number {
  if (!ESCAPED.test(name)) return utf8Bytes(name);
  return utf8Bytes(JSON.stringify(name)) - 2;
}

// Metadata is immutable once in a state, so an object's size is measured
// once: when decide checks a patch, evolve and later deletes reuse it.
const measured = new WeakMap<object, number>();

/**
 * Bytes of the compact JSON of a meta value (`JSON.stringify`, UTF-8).
 * An object's size is remembered, so measuring it again costs nothing.
 *
 * @example
 * ```ts
 * import { jsonBytes } from "./limits.ts";
 * jsonBytes({ a: 1 }); // 7
 * jsonBytes(null); // 4
 * ```
 */
export function jsonBytes(value: Json): number {
  if (typeof value !== "object" || value === null) return utf8Bytes(JSON.stringify(value));
  let bytes = measured.get(value);
  if (bytes === undefined) {
    bytes = utf8Bytes(JSON.stringify(value));
    measured.set(value, bytes);
  }
  return bytes;
}

/**
 * The sizes of the metas a meta update measured, by entity id: the meta
 * it replaced and the one it made. An update measures the patched meta
 * once and looks the entity's current one up here (by identity: the id's
 * meta may have changed since, or belong to another state), which costs a
 * `Map.get` where {@linkcode jsonBytes}'s WeakMap costs an ephemeron per
 * new meta (measured: more than serializing a small meta). A cache, not
 * state: a miss measures with {@linkcode jsonBytes}.
 *
 * It holds metas no state may hold any more (the one an update replaced,
 * those of deleted entities and of failed batches), so it is bounded by
 * the bytes of the metas it refers to, not only by ids: a client cycling
 * through large metas must not grow srv past `--max-state-bytes`.
 */
const byEntity = new Map<string, { meta: Json; bytes: number; old: Json; oldBytes: number }>();
/** Ids {@linkcode byEntity} holds at most: past it, it starts over. */
const BY_ENTITY_MAX = 1 << 20;
/** Bytes of metas {@linkcode byEntity} refers to at most: past it, it starts over. */
export const BY_ENTITY_MAX_BYTES = 32 * 1024 * 1024;
/** What {@linkcode byEntity} refers to now, in meta bytes (shared metas counted for each use). */
let byEntityBytes = 0;

/** Meta bytes the size cache refers to now, for tests of its bound. */
export function metaCacheBytes(): number {
  return byEntityBytes;
}

/**
 * {@linkcode jsonBytes} of the meta `id` has or had, from what a meta
 * update recorded ({@linkcode rememberMetaBytes}) when it can.
 *
 * @example
 * ```ts
 * import { metaBytes, rememberMetaBytes } from "./limits.ts";
 * const meta = { a: 1 };
 * rememberMetaBytes("b-1", {}, 2, meta, 7);
 * metaBytes("b-1", meta); // 7, not measured again
 * ```
 */
export function metaBytes(id: string, meta: Json): number {
  const known = byEntity.get(id);
  if (known !== undefined) {
    if (known.meta === meta) return known.bytes;
    if (known.old === meta) return known.oldBytes;
  }
  return jsonBytes(meta);
}

/**
 * Records that `id`'s meta `old` (`oldBytes`) became `meta` (`bytes`), for
 * {@linkcode metaBytes}. Meta is immutable once in a state, so a size
 * recorded for an object stays true.
 *
 * @example
 * ```ts
 * import { rememberMetaBytes } from "./limits.ts";
 * rememberMetaBytes("b-1", {}, 2, { a: 1 }, 7);
 * ```
 */
export function rememberMetaBytes(
  id: string,
  old: Json,
  oldBytes: number,
  meta: Json,
  bytes: number,
): void {
  const known = byEntity.get(id);
  if (known !== undefined) {
    byEntityBytes += bytes + oldBytes - known.bytes - known.oldBytes;
    // Updated in place: nothing allocated per update.
    known.old = old;
    known.oldBytes = oldBytes;
    known.meta = meta;
    known.bytes = bytes;
  } else {
    byEntityBytes += bytes + oldBytes;
    byEntity.set(id, { meta, bytes, old, oldBytes });
  }
  if (byEntity.size > BY_ENTITY_MAX || byEntityBytes > BY_ENTITY_MAX_BYTES) {
    byEntity.clear();
    byEntityBytes = 0;
  }
}

/**
 * What the size caps count for a whole state: the bytes of every workspace
 * and tab name as JSON writes it ({@linkcode nameBytes}) plus the compact
 * JSON bytes of every meta. The
 * reducer keeps this total in `State.contentBytes` event by event; this
 * recomputes it from scratch, for a state built any other way (the store's
 * tables, a snapshot), and so that tests can check the running total.
 *
 * @example
 * ```ts
 * import { measure } from "./limits.ts";
 * import { initialState } from "./state.ts";
 * measure(initialState()); // 0
 * ```
 */
export function measure(state: Pick<State, "workspaces" | "tabs" | "blocks">): number {
  let bytes = 0;
  for (const ws of state.workspaces.values()) bytes += nameBytes(ws.name) + jsonBytes(ws.meta);
  for (const tab of state.tabs.values()) bytes += nameBytes(tab.name) + jsonBytes(tab.meta);
  for (const block of state.blocks.values()) bytes += jsonBytes(block.meta);
  return bytes;
}

/**
 * `text` cut to its first `max` characters, saying how long it was: for
 * messages that quote what a client sent, so that an error is never larger
 * than a screenful however large the line that caused it (docs/PROTOCOL.md
 * §10).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clipText } from "./limits.ts";
 * assert.equal(clipText("abcdef", 3), "abc… (6 characters)");
 * assert.equal(clipText("abc", 3), "abc");
 * ```
 */
export function clipText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}

/**
 * Longest reducer error message: far above any message srv writes about
 * ids it minted (under 200 characters), far below a line's size.
 */
export const MAX_ERROR_MESSAGE_CHARS = 1024;
