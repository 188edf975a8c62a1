/**
 * What both halves of the command line write with: a line to stdout or
 * stderr, the error a bad command line throws, and whether to colour.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Thrown by {@linkcode out} when stdout's reader has gone (`srv events | head
 * -1`). `main` turns it into a quiet exit 0, as git and jq do: the reader
 * took what it wanted, which is not a failure. Thrown rather than exiting on
 * the spot so the verb's `finally` still says goodbye to the server.
 */
export class StdoutClosed extends Error {
  constructor() {
    super("stdout was closed by its reader");
  }
}

/**
 * Thrown by {@linkcode out} when stdout cannot take the output for any other
 * reason (`srv snapshot > /dev/full`: no space left). The dispatcher says so
 * in one line and exits 1: the output asked for was not written.
 */
export class StdoutFailed extends Error {}

/**
 * Writes a line to stdout; throws {@linkcode StdoutClosed} when nobody reads
 * it any more (Deno ignores SIGPIPE, so a closed pipe is an EPIPE here) and
 * {@linkcode StdoutFailed} when the write fails otherwise.
 */
export function out(text: string): void {
  const bytes = encoder.encode(text.endsWith("\n") ? text : text + "\n");
  try {
    // writeSync may take part of the bytes (a pipe that is nearly full).
    for (let done = 0; done < bytes.length;) {
      done += Deno.stdout.writeSync(bytes.subarray(done));
    }
  } catch (e) {
    if (e instanceof Deno.errors.BrokenPipe) throw new StdoutClosed();
    throw new StdoutFailed((e as Error).message, { cause: e });
  }
}

/** Writes a line to stderr; a closed stderr is ignored (there is nowhere left to say so). */
export function err(text: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
  } catch (e) {
    if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
  }
}

/** A command line that cannot be run: the message says why; exit code 2. */
export class UsageError extends Error {}

/**
 * Whether output to `stream` may carry colour: only a terminal, and never
 * with `NO_COLOR` set (https://no-color.org; `Deno.noColor` reads it without
 * needing env permission).
 */
export function colorFor(stream: { isTerminal(): boolean }): boolean {
  return !Deno.noColor && stream.isTerminal();
}
