/**
 * The size bounds of PROTOCOL.md §10 that the reducer enforces, and how
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
  readonly maxWorkspaces: number;
  readonly maxTabs: number;
  readonly maxBlocks: number;
  /** Every name (UTF-8 bytes) and every meta (compact JSON bytes) together. */
  readonly maxStateBytes: number;
}

/**
 * The defaults of PROTOCOL.md §10, and why they keep srv alive.
 *
 * V8 cannot build a string longer than 2^29 - 24 characters (~512 Mi), and
 * a `srv_snapshot` and a store checkpoint are each one string. With these
 * caps the largest possible tree serializes to about half of that:
 *
 * - metadata: at most 128 MiB of compact JSON (maxStateBytes) = 128 Mi
 *   characters at most (a character is at least one UTF-8 byte);
 * - names: at most (10,000 workspaces + 10,000 tabs) × 1 KiB = 20 MiB of
 *   UTF-8; JSON escapes a control character as 6 characters (`\u0001`), so
 *   ≤ 120 Mi characters in the worst case (also within the 128 MiB total);
 * - structure: a block appears in `blocks`, `block_order` and `meta.blocks`
 *   with its id (36 characters) and its tab's id: measured ~160 characters
 *   × 100,000 blocks = 16 Mi; a workspace or tab ~205 characters × 20,000
 *   = 4 Mi.
 *
 * Total ≤ 128 + 120 + 20 ≈ 268 Mi characters < 512 Mi, so `srv_snapshot`
 * always encodes. A checkpoint holds the same names and metas with less
 * structure (measured ~145 characters per entity, each block's id once in
 * its own record and once in its tab's list), so it is smaller still. The
 * replies that grow with the history rather than the tree, `event_list`
 * (catch-up), are bounded by bytes where the server builds them (the
 * delivery bound of §10, srv/server.ts and srv/hub.ts), not here; one
 * event is at most a line (`--max-line-bytes`) plus the ids srv adds, or a
 * cascade's `block_ids` (≤ 100,000 × 39 characters ≈ 4 Mi).
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
 * What the size caps count for a whole state: the UTF-8 bytes of every
 * workspace and tab name plus the compact JSON bytes of every meta. The
 * reducer keeps this total in `State.contentBytes` event by event; this
 * recomputes it from scratch, for a state built any other way (a store
 * checkpoint, a snapshot), and so that tests can check the running total.
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
  for (const ws of state.workspaces.values()) bytes += utf8Bytes(ws.name) + jsonBytes(ws.meta);
  for (const tab of state.tabs.values()) bytes += utf8Bytes(tab.name) + jsonBytes(tab.meta);
  for (const block of state.blocks.values()) bytes += jsonBytes(block.meta);
  return bytes;
}
