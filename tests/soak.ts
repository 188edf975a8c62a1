// `deno task soak [--duration SECONDS] [--concurrency N]`: the fuzz
// campaign of tests/fuzz_test.ts for minutes instead of seconds, printing
// figures as it goes. Not part of `deno task test`. Exits 1 when srv broke a
// rule (crash, missing or double process_exited, gap in the stream, wrong
// answer, leaked connection, error in its log). SRV_SOAK_SECONDS sets the
// default duration; SRV_FUZZ_SEED replays a seed's inputs. `--store` runs
// the store's full-size row instead (tests/_soak_store.ts).
import { parseArgs } from "node:util";
import { startSrv } from "./_harness.ts";
import { soakStoreRow } from "./_soak_store.ts";
import {
  type CampaignReport,
  formatReport,
  fuzzSeed,
  fuzzServerFlags,
  runCampaign,
} from "./_fuzz.ts";

const encoder = new TextEncoder();
function say(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text + "\n"));
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string" },
    concurrency: { type: "string" },
    store: { type: "boolean" },
  },
});
if (values.store) {
  say("soak --store: 650 blocks of 850 KB meta, SIGTERM, restart twice");
  const violations = await soakStoreRow(say);
  say(
    violations.length === 0 ? "soak --store: ok" : `soak --store FAILED: ${violations.join("; ")}`,
  );
  Deno.exit(violations.length === 0 ? 0 : 1);
}
const seconds = Number(values.duration ?? Deno.env.get("SRV_SOAK_SECONDS") ?? "120");
const concurrency = Number(values.concurrency ?? "32");
if (!(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1) {
  say("usage: deno task soak [--duration SECONDS] [--concurrency N] | --store");
  Deno.exit(2);
}

const MAX_LINE_BYTES = 16 * 1024;
const seed = fuzzSeed();
const srv = await startSrv({
  // A little short of the clients, so the cap refuses some.
  flags: fuzzServerFlags(MAX_LINE_BYTES, concurrency + 2 - 4),
});
say(
  `soak: ${seconds} s, ${concurrency} hostile clients at a time, srv pid ${srv.pid}, seed ${seed}`,
);

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const progress = (r: CampaignReport) =>
  say(
    `  t=${
      (r.durationMs / 1000).toFixed(0)
    }s connections=${r.stats.connections} lines=${r.stats.lines} ` +
      `round-trips=${r.roundTrips} evictions=${r.evictions} rss=${mib(r.endRss)} peak=${
        mib(r.peakRss)
      }`,
  );

let report: CampaignReport;
try {
  report = await runCampaign(srv, {
    seed,
    durationMs: seconds * 1000,
    concurrency,
    maxLineBytes: MAX_LINE_BYTES,
    onProgress: progress,
  });
} catch (e) {
  say(`soak FAILED: ${(e as Error).message}`);
  await srv.stop();
  Deno.exit(1);
}
const code = await srv.stop();
if (code !== 0) report.violations.push(`srv exited ${code} on SIGTERM`);
say(formatReport(report));
Deno.exit(report.violations.length === 0 ? 0 : 1);
