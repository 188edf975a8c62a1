/**
 * What both halves of the command line write with: a line to stdout or
 * stderr, and the error a bad command line throws.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Writes a line to stdout. */
export function out(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
}

/** Writes a line to stderr. */
export function err(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
}
/** A command line that cannot be run: the message says why; exit code 2. */
export class UsageError extends Error {}
