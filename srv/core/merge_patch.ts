/**
 * RFC 7386 JSON merge patch, as the `*_meta_updated` events apply it.
 *
 * @module
 */

import { isJsonObject } from "./command_schema.ts";
import type { Json, JsonObject } from "./protocol.ts";

/**
 * Applies an RFC 7386 JSON merge patch: `null` deletes a key, objects merge
 * recursively, anything else replaces. Neither input is modified; what the
 * patch does not touch is shared with `target`. Iterative (a work list, not
 * recursion), so no patch is too deep for the stack.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mergePatch } from "@srv/srv/core";
 *
 * assert.deepEqual(mergePatch({ a: 1, b: { c: 2 } }, { a: null, b: { d: 3 } }), { b: { c: 2, d: 3 } });
 * ```
 */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isJsonObject(patch)) return patch;
  const root: JsonObject = isJsonObject(target) ? { ...target } : {};
  // Each item: a fresh copy in the result, and the patch object to merge
  // into it. Made only for a nested patch: a flat one (the common update)
  // allocates nothing beyond the copy.
  let work: [JsonObject, JsonObject][] | null = null;
  let result = root;
  let changes = patch;
  for (;;) {
    for (const key in changes) {
      // Own keys only, as Object.keys would give (for-in allocates no array).
      if (!Object.hasOwn(changes, key)) continue;
      const value = changes[key];
      if (value === null) {
        delete result[key];
        continue;
      }
      let merged: Json = value;
      if (isJsonObject(value)) {
        const current = Object.hasOwn(result, key) ? result[key] : undefined;
        const copy: JsonObject = isJsonObject(current) ? { ...current } : {};
        (work ??= []).push([copy, value]);
        merged = copy;
      }
      if (key !== "__proto__") {
        result[key] = merged;
        continue;
      }
      // defineProperty, not assignment: a "__proto__" key must stay data.
      Object.defineProperty(result, key, {
        value: merged,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    const item = work?.pop();
    if (item === undefined) break;
    [result, changes] = item;
  }
  return root;
}
