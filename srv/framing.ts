/**
 * Byte-level newline framing with a line-length cap (PROTOCOL.md §1).
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
 * import { LineSplitter } from "./framing.ts";
 * const split = new LineSplitter(1024);
 * const lines: string[] = [];
 * const text = new TextDecoder();
 * split.push(new TextEncoder().encode('{"a":1}\r\n{"b"'), (l) => lines.push(text.decode(l)));
 * split.push(new TextEncoder().encode(':2}\n'), (l) => lines.push(text.decode(l)));
 * lines; // ['{"a":1}', '{"b":2}']
 * ```
 */
export class LineSplitter {
  readonly maxLineBytes: number;
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  #overflowed = false;

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
   * Feeds one chunk. Calls `onLine` for each finished line, in order, and
   * stops early if `onLine` returns `false`. Returns `false` when a line
   * exceeded `maxLineBytes` (the lines before it were delivered).
   */
  push(chunk: Uint8Array, onLine: (line: Uint8Array) => boolean | void): boolean {
    if (this.#overflowed) return false;
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
      if (onLine(line) === false) return true;
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

  #take(tail: Uint8Array): Uint8Array {
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
    return line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, -1) : line;
  }

  #overflow(): false {
    this.#overflowed = true;
    this.#parts = [];
    this.#partBytes = 0;
    return false;
  }
}
