/**
 * The codec of docs/PROTOCOL.md §2: {@linkcode decodeCommand} for the server's
 * input, {@linkcode encodeEvent} for its output, and the client-side pair
 * {@linkcode encodeCommand} / {@linkcode decodeEvent}; plus
 * {@linkcode parseJson}, which keeps u64 integers exact.
 *
 * @module
 */

import { badBatchElement, decodeObject } from "./_decode_object.ts";
import { utf8Length } from "./line_splitter.ts";
import type { Command, Event, Json } from "./protocol.ts";

// ---------------------------------------------------------------------------
// Codec

/** What {@linkcode decodeCommand} returns: a command, or why the line is not one. */
export type DecodeResult =
  | { ok: true; command: Command }
  | {
    ok: false;
    reason: string;
    /** The field that failed its rule, when one did (so a caller can name it its own way). */
    field?: string;
  };

/**
 * Deepest nesting a line may have, objects and arrays together (docs/PROTOCOL.md
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
 * import { nestsDeeperThan } from "./codec.ts";
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

/**
 * Whether a value `JSON.parse` returned holds a number it may have read
 * "wrong" for srv: an integer beyond 2^53 - 1 (a u64 field needs its exact
 * digits), `-0` (read as `0`) or one beyond the range of a double (an
 * error, not `Infinity`). Only then does {@linkcode parseJson} parse again
 * with the source-text reviver. Checking the parsed numbers, not the text,
 * keeps the common line at the cost of one native parse: a scan of the text
 * for digit runs and exponents cost as much as the parse itself, and one
 * random UUID in four ("…4e123…") looked like an exponent. A work list, not
 * recursion: the value may nest as deep as the text did.
 */
function hasOddNumber(value: unknown): boolean {
  if (typeof value === "number") return isOdd(value);
  if (typeof value !== "object" || value === null) return false;
  const work: object[] = [value];
  for (let item = work.pop(); item !== undefined; item = work.pop()) {
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) {
        if (oddOrPushed(item[i], work)) return true;
      }
      continue;
    }
    // for-in, not Object.values: no array per object. What JSON.parse
    // returns has only own data keys, over a prototype with none.
    for (const key in item) {
      if (oddOrPushed((item as Record<string, unknown>)[key], work)) return true;
    }
  }
  return false;
}

/** Whether `v` is an odd number; an object or array goes on the work list. */
function oddOrPushed(v: unknown, work: object[]): boolean {
  if (typeof v === "number") return isOdd(v);
  if (typeof v === "object" && v !== null) work.push(v);
  return false;
}

function isOdd(n: number): boolean {
  return n === 0 ? Object.is(n, -0) : (!Number.isSafeInteger(n) && Number.isInteger(n)) ||
    !Number.isFinite(n);
}

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

/** Keys whose values are client JSON: their numbers are doubles (docs/PROTOCOL.md §10). */
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
 * import assert from "node:assert/strict";
 * import { parseJson } from "@srv/srv";
 *
 * assert.deepEqual(
 *   parseJson('{"nonce":18446744073709551615,"meta":{"n":18446744073709551615}}'),
 *   { nonce: 18446744073709551615n, meta: { n: 18446744073709552000 } },
 * );
 * ```
 */
export function parseJson(text: string): unknown {
  const plain: unknown = JSON.parse(text);
  if (!hasOddNumber(plain) || nestsDeeperThan(text, REVIVER_MAX_DEPTH)) return plain;
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

/**
 * Parses client metadata (a `meta` or `meta_patch` value on its own) the
 * way srv reads it inside a command: numbers are doubles, `-0` is `0`, a
 * number beyond a double is a `SyntaxError`, and so is nesting deeper than
 * {@linkcode MAX_JSON_DEPTH}. For tools that take a meta value by itself
 * (the CLI's `--meta`), where {@linkcode parseJson} would read a top-level
 * field's big integer as a u64.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMetaJson } from "./codec.ts";
 * assert.deepEqual(parseMetaJson('{"n":12345678901234567890}'), { n: 12345678901234567000 });
 * assert.throws(() => parseMetaJson('{"n":1e400}'), SyntaxError);
 * ```
 */
export function parseMetaJson(text: string): Json {
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new SyntaxError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  // No exact integers to collect: a meta's numbers are all doubles.
  return JSON.parse(text, reviverFor(new Map()) as (k: string, v: unknown) => unknown) as Json;
}

/**
 * Decodes one line (already UTF-8 decoded, without its `\n`) into a command,
 * per docs/PROTOCOL.md §2: unknown fields are ignored; a missing field, a wrong
 * type or an unknown `cmd` is a failure whose reason goes into
 * "parse failed: <reason>". Never throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand } from "@srv/srv";
 *
 * assert.deepEqual(decodeCommand('{"cmd":"ping","nonce":7}'), {
 *   ok: true,
 *   command: { cmd: "ping", nonce: 7 },
 * });
 * assert.deepEqual(decodeCommand('{"cmd":"fly"}'), { ok: false, reason: "unknown command `fly`" });
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
  const decoded = decodeObject(value);
  if (!decoded.ok || decoded.command.cmd !== "batch") return decoded;
  return badBatchElement(decoded.command.commands) ?? decoded;
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
 * import assert from "node:assert/strict";
 * import { encodeEvent } from "@srv/srv";
 *
 * assert.equal(
 *   encodeEvent({ event: "pong", nonce: 18446744073709551615n, version: 2 }),
 *   '{"event":"pong","nonce":18446744073709551615,"version":2}',
 * );
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
 * import assert from "node:assert/strict";
 * import { encodeCommand } from "@srv/srv";
 *
 * assert.equal(encodeCommand({ cmd: "ping", nonce: 1 }), '{"cmd":"ping","nonce":1}');
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
 * import { encodeEventList } from "./codec.ts";
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

const utf8 = new TextEncoder();
const EVENT_LIST_HEAD = utf8.encode('{"event":"event_list","events":[');

/** The bytes of an `event_list` line around its events, `\n` included. */
function eventListEnvelope(
  truncated: boolean,
  instanceId: string,
  version: number,
): { head: Uint8Array; tail: Uint8Array } {
  return {
    head: EVENT_LIST_HEAD,
    tail: utf8.encode(
      `],"truncated":${truncated},"instance_id":${
        JSON.stringify(instanceId)
      },"version":${version}}\n`,
    ),
  };
}

/**
 * {@linkcode encodeEventList} as UTF-8 bytes with the trailing `\n`, built
 * straight into one buffer of the exact size: a long catch-up never exists
 * as one string (see `DEFAULT_MAX_REPLY_BYTES` for why that matters).
 *
 * @example
 * ```ts
 * import { encodeEventListLine } from "./codec.ts";
 * new TextDecoder().decode(encodeEventListLine(['{"event":"pong","nonce":1,"version":1}'], false, "i-1", 1));
 * ```
 */
export function encodeEventListLine(
  events: readonly string[],
  truncated: boolean,
  instanceId: string,
  version: number,
): Uint8Array {
  const { head, tail } = eventListEnvelope(truncated, instanceId, version);
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
 * import { encodeEventListRuns } from "./codec.ts";
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
  const { head, tail } = eventListEnvelope(truncated, instanceId, version);
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

/** What {@linkcode decodeEvent} returns. */
export type DecodeEventResult =
  | { ok: true; event: Event }
  | { ok: false; reason: string };

/**
 * A version the client can order by: a non-negative integer, a `number`
 * while it is safe (every version srv can reach) and an exact `bigint`
 * above 2^53 - 1 (docs/PROTOCOL.md §1: versions are u64).
 */
function isVersion(value: unknown): boolean {
  return typeof value === "number"
    ? Number.isInteger(value) && value >= 0
    : typeof value === "bigint" && value >= 0n;
}

/** The nested versions of the private answers the client reads: the first one that is not one. */
function badNestedVersion(value: Record<string, unknown>): string | null {
  if (value.event === "event_list" && Array.isArray(value.events)) {
    for (const e of value.events as { version?: unknown }[]) {
      if (!isVersion(e?.version)) return "events[].version";
    }
  } else if (value.event === "server_info") {
    if (!isVersion(value.event_version)) return "event_version";
    const last = value.last_command as { first?: unknown; last?: unknown } | null | undefined;
    if (last !== null && last !== undefined) {
      if (last.first !== null && !isVersion(last.first)) return "last_command.first";
      if (last.last !== null && !isVersion(last.last)) return "last_command.last";
    }
  }
  return null;
}

/**
 * Decodes one event line (client side). It checks the envelope, an `event`
 * tag and the versions the client orders by (the event's own, those of an
 * `event_list`'s events, `server_info`'s `event_version` and
 * `last_command`): non-negative integers, a `number` while safe and an
 * exact `bigint` above 2^53 - 1, so nothing after this converts them. It
 * trusts the server for the rest; other integers above 2^53 - 1 come back
 * as `bigint` too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeEvent } from "@srv/srv";
 *
 * const r = decodeEvent('{"event":"pong","nonce":1,"version":4}');
 * assert(r.ok && r.event.event === "pong");
 * assert.equal(r.event.nonce, 1);
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
  if (version === undefined) return { ok: false, reason: "missing field `version`" };
  if (!isVersion(version)) return { ok: false, reason: "invalid value for `version`" };
  const bad = badNestedVersion(value as Record<string, unknown>);
  if (bad !== null) return { ok: false, reason: `invalid value for \`${bad}\`` };
  return { ok: true, event: value as Event };
}
