// Fuzz, bounded to a few seconds so it runs in every `deno task test`:
// seeded random hostile clients against a live srv (see tests/_fuzz.ts).
// The seed is printed; SRV_FUZZ_SEED=<seed> replays the same inputs
// (the interleaving of clients still varies from run to run).
import assert from "node:assert/strict";
import { withSrv } from "../../_harness.ts";
import { formatReport, fuzzSeed, fuzzServerFlags, runCampaign } from "../../_fuzz.ts";
import { linuxOnly } from "../../_proc.ts";

const MAX_LINE_BYTES = 4096;

Deno.test(
  "fuzz: hostile clients never crash srv, every gone registration gets one process_exited, a good client's answers stay right",
  { ignore: linuxOnly("counts srv's sockets and RSS in /proc") },
  async () => {
    const seed = fuzzSeed();
    await withSrv(async (srv) => {
      const report = await runCampaign(srv, {
        seed,
        durationMs: 3000,
        concurrency: 24,
        maxLineBytes: MAX_LINE_BYTES,
      });
      // deno test shows this with the result; the seed is what replays a failure.
      // deno-lint-ignore no-console
      console.log(formatReport(report).replace(/^/gm, "  "));
      assert.deepEqual(report.violations, [], `seed ${seed}`);
      assert.ok(report.stats.connections > 50, "the fuzz really ran");
      assert.ok(report.roundTrips > 10, "the good client was served throughout");
    }, {
      // 24 + 2 connections against a cap of 24: some are refused.
      flags: fuzzServerFlags(MAX_LINE_BYTES, 24),
    });
  },
);
