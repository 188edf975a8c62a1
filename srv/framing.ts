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
   * Like {@linkcode LineSplitter.push}, but hands over lines as text when
   * the chunk's finished lines are valid UTF-8, decoding them in one call
   * instead of one per line (the common case, and a hot path). A chunk with
   * invalid UTF-8 or an over-long line falls back to byte lines, so each bad
   * line can be reported on its own and the cap is enforced the same way.
   *
   * @example
   * ```ts
   * import { LineSplitter } from "./framing.ts";
   * const lines: (string | Uint8Array)[] = [];
   * new LineSplitter(64).pushText(new TextEncoder().encode("a\r\nb\nc"), (l) => void lines.push(l));
   * lines; // ["a", "b"] ("c" waits for its newline)
   * ```
   */
  pushText(chunk: Uint8Array, onLine: (line: string | Uint8Array) => boolean | void): boolean {
    if (this.#overflowed) return false;
    const lastLf = chunk.lastIndexOf(LF);
    if (lastLf < 0) return this.push(chunk, onLine);
    // The finished part: whatever was pending plus the chunk up to its last `\n`.
    const head = this.#parts.length === 0
      ? chunk.subarray(0, lastLf + 1)
      : this.#take(chunk.subarray(0, lastLf + 1), false);
    let text: string | null = null;
    if (this.#linesFit(head)) {
      try {
        text = LineSplitter.#utf8.decode(head);
      } catch {
        // Invalid UTF-8 somewhere: the byte path finds the line.
      }
    }
    if (text === null) {
      if (!this.push(head, onLine)) return false;
    } else {
      let start = 0;
      while (start < text.length) {
        const lf = text.indexOf("\n", start);
        const end = text.charCodeAt(lf - 1) === 0x0d && lf > start ? lf - 1 : lf;
        const go = onLine(text.slice(start, end));
        start = lf + 1;
        if (go === false) return true;
      }
    }
    return lastLf + 1 === chunk.length || this.push(chunk.subarray(lastLf + 1), onLine);
  }

  static readonly #utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

  /** Whether every `\n`-terminated line of `bytes` is within the cap (a `\r` before `\n` not counted). */
  #linesFit(bytes: Uint8Array): boolean {
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
    this.#parts = [];
    this.#partBytes = 0;
    return false;
  }
}
