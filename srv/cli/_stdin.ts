/**
 * Lines of a byte stream with their numbers, for `srv send -`.
 *
 * @module
 */

/**
 * Each line of `stream` (without its `\n` or `\r\n`) and its 1-based number;
 * a last line without a newline counts.
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<[line: string, number: number]> {
  let number = 0;
  let pending = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let at: number;
    while ((at = pending.indexOf("\n")) >= 0) {
      yield [pending.slice(0, at).replace(/\r$/, ""), ++number];
      pending = pending.slice(at + 1);
    }
  }
  if (pending !== "") yield [pending, ++number];
}
