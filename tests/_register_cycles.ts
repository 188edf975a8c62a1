// Register/goodbye cycles with distinct pids, as fast as srv takes them: each
// cycle is a fresh connection that registers, says goodbye and waits for srv
// to close it. Used by tests/e2e/hostile_input_test.ts (a few thousand) and
// `deno task soak --cycles N` (tens of thousands, with RSS figures).
import { connectClient } from "./_harness.ts";

const encoder = new TextEncoder();

/** One cycle: connect, register `pid`, goodbye, read until srv closes. */
async function cycle(socket: string, pid: number): Promise<void> {
  const conn = await connectClient(socket);
  try {
    await conn.write(encoder.encode(
      `{"cmd":"register","kind":"tool","pid":${pid},"version":"cycle"}\n{"cmd":"goodbye"}\n`,
    ));
    while ((await conn.read()) !== null) { /* srv's events, then the close */ }
  } catch {
    // Reset by srv after the goodbye: the cycle is over all the same.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

/**
 * Runs `cycles` register/goodbye cycles with pids `firstPid`,
 * `firstPid + 1`, …, `concurrency` at a time, in pid order per worker.
 * `onProgress` gets the number done after each cycle.
 */
export async function registerCycles(
  socket: string,
  options: {
    cycles: number;
    firstPid: number;
    concurrency: number;
    onProgress?: (done: number) => void;
  },
): Promise<void> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < options.cycles) {
      const pid = options.firstPid + next++;
      await cycle(socket, pid);
      options.onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
}
