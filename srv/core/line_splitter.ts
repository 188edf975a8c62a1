/**
 * Byte-level newline framing with a line-length cap (docs/PROTOCOL.md §1).
 * `TextLineStream` has no cap and works on text; this works on bytes, so
 * invalid UTF-8 is reported per line and a flood without newlines is cut off
 * after `maxLineBytes` instead of buffered without bound.
 *
 * @module
 */

const LF = 0x0a;
const CR = 0x0d;

/** Default cap on one line, in bytes: 1 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

/**
 * Splits a byte stream into lines. Lines are handed to the callback without
 * their `\n` (and without a `\r` before it) as views that are only valid
 * during the call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LineSplitter } from "@srv/srv/core";
 *
 * const split = new LineSplitter(1024);
 * const lines: string[] = [];
 * const text = new TextDecoder();
 * const onLine = (line: Uint8Array) => void lines.push(text.decode(line));
 * split.push(new TextEncoder().encode('{"a":1}\r\n{"b"'), onLine);
 * split.push(new TextEncoder().encode(':2}\n'), onLine);
 * assert.deepEqual(lines, ['{"a":1}', '{"b":2}']);
 * ```
 */
export class LineSplitter {
  /** Longest line accepted, in bytes without its newline. */
  readonly maxLineBytes: number;
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  #overflowed = false;
  /** What a callback's `false` left undelivered, in order: whole lines as text, or raw bytes. */
  #held: (string | Uint8Array)[] = [];

  /** A longer line stops the splitter: {@linkcode LineSplitter.overflowed} turns true. */
  constructor(maxLineBytes: number = DEFAULT_MAX_LINE_BYTES) {
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < 1) {
      throw new RangeError(`maxLineBytes must be a positive integer, got ${maxLineBytes}`);
    }
    this.maxLineBytes = maxLineBytes;
  }

  /** Bytes of an unfinished line held back, waiting for its `\n`. */
  get pendingBytes(): number {
    return this.#partBytes;
  }

  /** True once a line went over the cap; the splitter accepts nothing more. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /**
   * True when a callback returned `false` before the chunk was done: the
   * rest is held, and {@linkcode LineSplitter.resume} delivers it.
   */
  get holding(): boolean {
    return this.#held.length > 0;
  }

  /**
   * Feeds one chunk. Calls `onLine` for each finished line, in order, and
   * stops early if `onLine` returns `false`: the rest of the chunk is then
   * held (copied, so the caller may reuse its buffer) until
   * {@linkcode LineSplitter.resume}; a chunk pushed meanwhile queues behind
   * it. Returns `false` when a line exceeded `maxLineBytes` (the lines
   * before it were delivered).
   */
  push(chunk: Uint8Array, onLine: (line: Uint8Array) => boolean | void): boolean {
    if (this.#overflowed) return false;
    if (this.#held.length > 0) {
      this.#held.push(chunk.slice());
      return true;
    }
    return this.#pushBytes(chunk, onLine);
  }

  /**
   * Like {@linkcode LineSplitter.push}, but hands over lines as text when
   * the chunk's finished lines are valid UTF-8, decoding them in one call
   * instead of one per line (the common case, and a hot path). A chunk with
   * invalid UTF-8 or an over-long line falls back to byte lines, so each bad
   * line can be reported on its own and the cap is enforced the same way.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LineSplitter } from "@srv/srv/core";
   *
   * const lines: (string | Uint8Array)[] = [];
   * new LineSplitter(64).pushText(new TextEncoder().encode("a\r\nb\nc"), (l) => void lines.push(l));
   * assert.deepEqual(lines, ["a", "b"]); // "c" waits for its newline
   * ```
   */
  pushText(chunk: Uint8Array, onLine: (line: string | Uint8Array) => boolean | void): boolean {
    if (this.#overflowed) return false;
    if (this.#held.length > 0) {
      this.#held.push(chunk.slice());
      return true;
    }
    return this.#pushText(chunk, onLine);
  }

  /**
   * Delivers what an earlier `false` held back, then the chunks pushed
   * since, like {@linkcode LineSplitter.pushText}; may stop (and hold)
   * again. Returns `false` when a line exceeded `maxLineBytes`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LineSplitter } from "@srv/srv/core";
   *
   * const split = new LineSplitter(64);
   * const lines: (string | Uint8Array)[] = [];
   * // Returning false asks the splitter to hold the next line until resume().
   * split.pushText(new TextEncoder().encode("a\nb\n"), (l) => lines.push(l) < 1);
   * assert.equal(split.holding, true);
   * split.resume((l) => void lines.push(l));
   * assert.deepEqual(lines, ["a", "b"]);
   * ```
   */
  resume(onLine: (line: string | Uint8Array) => boolean | void): boolean {
    const pieces = this.#held;
    this.#held = [];
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      const fits = typeof piece === "string"
        ? this.#textLines(piece, onLine)
        : this.#pushText(piece, onLine);
      if (!fits) return false;
      if (this.#held.length > 0) {
        // Stopped again: what it held comes first, then the pieces not yet begun.
        for (let j = i + 1; j < pieces.length; j++) this.#held.push(pieces[j]);
        return true;
      }
    }
    return true;
  }

  #pushBytes(chunk: Uint8Array, onLine: (line: Uint8Array) => boolean | void): boolean {
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      if (lf < 0) {
        // One byte of slack: it may turn out to be the `\r` of a CRLF ending.
        if (this.#partBytes + chunk.length - start > this.maxLineBytes + 1) return this.#overflow();
        this.#parts.push(chunk.slice(start));
        this.#partBytes += chunk.length - start;
        return true;
      }
      const line = this.#take(chunk.subarray(start, lf));
      if (line.length > this.maxLineBytes) return this.#overflow();
      start = lf + 1;
      if (onLine(line) === false) {
        if (start < chunk.length) this.#held.push(chunk.slice(start));
        return true;
      }
    }
    return true;
  }

  #pushText(chunk: Uint8Array, onLine: (line: string | Uint8Array) => boolean | void): boolean {
    const lastLf = chunk.lastIndexOf(LF);
    if (lastLf < 0) return this.#pushBytes(chunk, onLine);
    // The finished part: whatever was pending plus the chunk up to its last `\n`.
    const head = this.#parts.length === 0
      ? chunk.subarray(0, lastLf + 1)
      : this.#take(chunk.subarray(0, lastLf + 1), false);
    const tail = chunk.subarray(lastLf + 1);
    let text: string | null = null;
    if (this.#linesFit(head)) {
      try {
        text = LineSplitter.#utf8.decode(head);
      } catch {
        // Invalid UTF-8 somewhere: the byte path finds the line.
      }
    }
    if (text === null) {
      if (!this.#pushBytes(head, onLine)) return false;
    } else {
      this.#textLines(text, onLine);
    }
    if (this.#held.length > 0) {
      if (tail.length > 0) this.#held.push(tail.slice());
      return true;
    }
    return tail.length === 0 || this.#pushBytes(tail, onLine);
  }

  /** Delivers `text`, whole lines each ending in `\n`; holds the rest on a `false`. */
  #textLines(text: string, onLine: (line: string) => boolean | void): boolean {
    let start = 0;
    while (start < text.length) {
      const lf = text.indexOf("\n", start);
      const end = text.charCodeAt(lf - 1) === 0x0d && lf > start ? lf - 1 : lf;
      const go = onLine(text.slice(start, end));
      start = lf + 1;
      if (go === false) {
        if (start < text.length) this.#held.push(text.slice(start));
        return true;
      }
    }
    return true;
  }

  static readonly #utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

  /** Whether every `\n`-terminated line of `bytes` is within the cap (a `\r` before `\n` not counted). */
  #linesFit(bytes: Uint8Array): boolean {
    // No line is longer than all of them: the common chunk needs no scan.
    if (bytes.length <= this.maxLineBytes) return true;
    let start = 0;
    while (start < bytes.length) {
      const lf = bytes.indexOf(LF, start);
      const length = lf - start - (lf > start && bytes[lf - 1] === CR ? 1 : 0);
      if (length > this.maxLineBytes) return false;
      start = lf + 1;
    }
    return true;
  }

  /**
   * The stream ended: delivers a last line that had no `\n` (as a client
   * that writes `…}` and closes expects), then resets.
   */
  finish(onLine: (line: Uint8Array) => boolean | void): void {
    if (this.#overflowed || this.#partBytes === 0) return;
    onLine(this.#take(new Uint8Array(0)));
  }

  /** The pending bytes joined with `tail`; drops a final `\r` unless `stripCr` is false. */
  #take(tail: Uint8Array, stripCr = true): Uint8Array {
    let line = tail;
    if (this.#parts.length > 0) {
      line = new Uint8Array(this.#partBytes + tail.length);
      let offset = 0;
      for (const part of this.#parts) {
        line.set(part, offset);
        offset += part.length;
      }
      line.set(tail, offset);
      this.#parts = [];
      this.#partBytes = 0;
    }
    return stripCr && line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, -1) : line;
  }

  #overflow(): false {
    this.#overflowed = true;
    this.#held = [];
    this.#parts = [];
    this.#partBytes = 0;
    return false;
  }
}

/**
 * Bytes of `text` in UTF-8 (a lone surrogate counts as the 3 bytes of
 * U+FFFD, as `TextEncoder` writes it), without encoding it.
 *
 * @example
 * ```ts
 * import { utf8Length } from "./line_splitter.ts";
 * utf8Length("héllo"); // 6
 * ```
 */
export function utf8Length(text: string): number {
  // The native encoder into a reused scratch buffer is many times faster
  // than the loop below; the loop serves text too long for the buffer.
  if (text.length * 3 <= SCRATCH_BYTES) return utf8.encodeInto(text, scratch).written;
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      // A surrogate pair: 2 units, 4 bytes.
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2;
        i++;
      } else bytes += 2;
    } else bytes += 2;
  }
  return bytes;
}

const SCRATCH_BYTES = 256 * 1024;
const scratch = new Uint8Array(SCRATCH_BYTES);
const utf8 = new TextEncoder();
