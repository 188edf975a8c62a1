// Integration: graceful shutdown (README "Exit codes"): SIGINT/SIGTERM
// stop accepting, drain queued output up to a deadline, close, exit 0; a
// second signal exits at once with 130.
import assert from "node:assert/strict";
import { startSrv } from "./_harness.ts";

Deno.test("a signal the moment srv says ready is handled: graceful exit 0, never the default kill", async () => {
  // Several at once, so the CPUs are busy and a signal can land between the
  // readiness line and whatever srv does next.
  const codes = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const srv = await startSrv();
      return await srv.stop(i % 2 === 0 ? "SIGTERM" : "SIGINT");
    }),
  );
  assert.deepEqual(codes, Array(8).fill(0));
});
