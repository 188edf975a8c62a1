/**
 * Input the CLI reads whole or line by line (`srv apply FILE|-`,
 * `srv send -`), bounded: a file, a pipe or `/dev/zero` is never held past
 * {@linkcode MAX_INPUT_BYTES}, and invalid UTF-8 is an error, not text
 * quietly replaced.
 *
 * @module
 */

import { LineSplitter } from "../core/line_splitter.ts";
import { UsageError } from "./_terminal.ts";

/**
 * Most bytes the CLI reads for one input (a whole layout, or one line of
 * NDJSON): far more than srv takes in one line (1 MiB unless
 * `--max-line-bytes` says more) or one batch (1,000 commands).
 */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

const utf8 = new TextDecoder("utf-8", { fatal: true });

function text(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new UsageError(`${what} is not valid UTF-8`);
  }
}

/**
 * All of `stream` as text, at most `max` bytes; past it an `Error` saying
 * so (a `UsageError`), read no further.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readAll } from "./_stdin.ts";
 * const stream = new Blob(["héllo"]).stream();
 * assert.equal(await readAll(stream, "the input"), "héllo");
 * await assert.rejects(readAll(new Blob(["héllo"]).stream(), "the input", 3), /over 3 bytes/);
 * ```
 */
export async function readAll(
  stream: ReadableStream<Uint8Array>,
  what: string,
  max = MAX_INPUT_BYTES,
): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > max) {
      await stream.cancel().catch(() => {});
      throw new UsageError(`${what} is over ${max} bytes`);
    }
    chunks.push(chunk);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return text(all, what);
}

/**
 * Each line of `stream` (without its `\n` or `\r\n`) and its 1-based number;
 * a last line without a newline counts. A line over `max` bytes, or one
 * that is not UTF-8, is a `UsageError` naming it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLines } from "./_stdin.ts";
 * const lines = [];
 * for await (const line of readLines(new Blob(["a\r\nb\nc"]).stream())) lines.push(line);
 * assert.deepEqual(lines, [["a", 1], ["b", 2], ["c", 3]]);
 * const long = readLines(new Blob(["ok\nabcd\n"]).stream(), 3);
 * const read: string[] = [];
 * await assert.rejects(async () => {
 *   for await (const [line] of long) read.push(line);
 * }, /line 2 is over 3 bytes/);
 * assert.deepEqual(read, ["ok"]);
 * ```
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
  max = MAX_INPUT_BYTES,
): AsyncGenerator<[line: string, number: number]> {
  const splitter = new LineSplitter(max);
  const lines: Uint8Array[] = [];
  const take = (line: Uint8Array) => void lines.push(line);
  let number = 0;
  const ready = function* () {
    for (const line of lines) {
      number++;
      yield [text(line, `line ${number}`), number] as [string, number];
    }
    lines.length = 0;
  };
  for await (const chunk of stream) {
    const fits = splitter.push(chunk, take);
    yield* ready();
    if (!fits) {
      await stream.cancel().catch(() => {});
      throw new UsageError(`line ${number + 1} is over ${max} bytes`);
    }
  }
  splitter.finish(take);
  yield* ready();
}
