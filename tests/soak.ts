// `deno task soak [--duration SECONDS] [--concurrency N] [--delivery-runs N]`:
// first the delivery scenarios of tests/e2e/transport/hostile_delivery_test.ts at the
// default bounds, repeated (8 pipelining writers and 3 readers, N runs, 0
// evictions allowed; then how long a reader that stops reading survives),
// then the fuzz campaign of tests/e2e/transport/fuzz_test.ts for minutes instead of
// seconds, printing figures as it goes. Not part of `deno task test`. Exits 1 when srv broke a
// rule (crash, missing or double process_exited, gap in the stream, wrong
// answer, leaked connection, error in its log). SRV_SOAK_SECONDS sets the
// default duration; SRV_FUZZ_SEED replays a seed's inputs. `--store` runs
// the store's full-size row instead (tests/_soak_store.ts).
//
// `deno task soak --cycles N` runs another attack instead: N register/goodbye
// cycles with distinct pids against a fresh srv, printing its RSS as it goes
// (issue 11: exited process records must not grow memory without bound).
//
// `deno task soak --observers N` runs N protocol 2 observers through a fresh
// srv (connect, snapshot, catch-up, goodbye or drop; no event may be logged,
// RSS must stay flat once the heap settles), then 200 observers each asking
// for a 64 MiB catch-up and reading nothing (under 600 MiB RSS, bystander served),
// then 200 observers each asking for a snapshot of 2,000 blocks × 1 KB meta and
// reading nothing: one shared line per version, so srv's RSS grows by well
// under 200 snapshots (under 64 MiB; one copy each was about 400 MiB).
//
// `deno task soak --campaign` runs the campaign's full-size attacks
// (tests/_campaign.ts): 4,200 reorder_tabs_bulk of 10,000 tabs, and 200
// clients each asking for a 64 MiB catch-up and reading nothing; srv must
// stay under 600 MiB RSS in both and answer a bystander.
import { parseArgs } from "node:util";
import { startSrv } from "./_harness.ts";
import { mib as mibOf, rssBytes } from "./_proc.ts";
import { registerCycles } from "./_register_cycles.ts";
import { pipelinedWritersAndReaders, stalledReader } from "./_delivery.ts";
import { soakStoreRow } from "./_soak_store.ts";
import {
  bigEventsRing,
  manyUnreadCatchUps,
  manyUnreadSnapshots,
  observerChurn,
} from "./_campaign.ts";
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
    cycles: { type: "string" },
    "delivery-runs": { type: "string" },
    store: { type: "boolean" },
    campaign: { type: "boolean" },
    observers: { type: "string" },
  },
});

if (values.campaign) {
  const limit = 600 * 1024 * 1024;
  say("soak --campaign: 4,200 x reorder_tabs_bulk of 10,000 tabs (390 KB events), --memory");
  const ring = await bigEventsRing();
  say(`  peak rss ${mibOf(ring.peak)}, srv exited ${ring.exit}`);
  say("soak --campaign: 200 clients each asking for a 64 MiB catch-up, reading nothing");
  const replies = await manyUnreadCatchUps();
  say(
    `  peak rss ${mibOf(replies.peak)}, bystander ping ${
      replies.bystanderOk ? "answered" : "lost"
    }, srv exited ${replies.exit}`,
  );
  const ok = ring.peak < limit && ring.exit === 0 && replies.peak < limit &&
    replies.bystanderOk && replies.exit === 0;
  say(ok ? "soak --campaign: ok" : "soak --campaign FAILED");
  Deno.exit(ok ? 0 : 1);
}

if (values.observers !== undefined) {
  // Protocol 2 observers (§11.1): no event, no growth, and their catch-ups share the budget.
  const n = Number(values.observers);
  if (!Number.isInteger(n) || n < 1) {
    say("usage: deno task soak --observers N [--concurrency N]");
    Deno.exit(2);
  }
  say(`soak --observers: ${n} observers connect, read and go (half by goodbye), --memory`);
  // The heap settles over the first ~12,000 (50 at a time); from then on RSS stays
  // flat (run 40,000 to see it): the second half must not grow.
  let settled = 0;
  const churn = await observerChurn(n, Number(values.concurrency ?? "50"), (done, rss) => {
    if (done <= n / 2) settled = rss;
    say(`  observers=${done} rss=${mibOf(rss)}`);
  });
  say(
    `  rss ${mibOf(churn.start)} -> ${mibOf(churn.end)} (peak ${mibOf(churn.peak)}), ` +
      `version ${churn.versions[0]} -> ${churn.versions[1]}, srv exited ${churn.exit}`,
  );
  say("soak --observers: 200 observers each asking for a 64 MiB catch-up, reading nothing");
  const replies = await manyUnreadCatchUps(200, true);
  say(
    `  peak rss ${mibOf(replies.peak)}, bystander ping ${
      replies.bystanderOk ? "answered" : "lost"
    }, srv exited ${replies.exit}`,
  );
  say(
    "soak --observers: 200 observers each asking for a snapshot of 2,000 blocks, reading nothing",
  );
  const snaps = await manyUnreadSnapshots(200, 2000);
  say(
    `  snapshot ${mibOf(snaps.snapshot)}, rss ${mibOf(snaps.before)} -> ${
      mibOf(snaps.after)
    } once all were answered (peak ${mibOf(snaps.peak)}), bystander ping ${
      snaps.bystanderOk ? "answered" : "lost"
    }, srv exited ${snaps.exit}`,
  );
  const ok = churn.versions[0] === churn.versions[1] && churn.exit === 0 &&
    churn.end - settled < 16 * 1024 * 1024 && replies.peak < 600 * 1024 * 1024 &&
    replies.bystanderOk && replies.exit === 0 &&
    snaps.peak - snaps.before < 64 * 1024 * 1024 && snaps.bystanderOk && snaps.exit === 0;
  say(ok ? "soak --observers: ok" : "soak --observers FAILED");
  Deno.exit(ok ? 0 : 1);
}

if (values.store) {
  say("soak --store: 650 blocks of 850 KB meta, SIGTERM, restart twice");
  const violations = await soakStoreRow(say);
  say(
    violations.length === 0 ? "soak --store: ok" : `soak --store FAILED: ${violations.join("; ")}`,
  );
  Deno.exit(violations.length === 0 ? 0 : 1);
}
if (values.cycles !== undefined) {
  const cycles = Number(values.cycles);
  if (!Number.isInteger(cycles) || cycles < 1) {
    say("usage: deno task soak --cycles N [--concurrency N]");
    Deno.exit(2);
  }
  const srv = await startSrv();
  const startRss = rssBytes(srv.pid);
  say(`soak: ${cycles} register/goodbye cycles with distinct pids, srv pid ${srv.pid}`);
  say(`  cycles=0 rss=${mibOf(startRss)}`);
  let peak = startRss;
  const step = Math.max(1, Math.floor(cycles / 10));
  await registerCycles(srv.socket, {
    cycles,
    firstPid: 10_000,
    concurrency: Number(values.concurrency ?? "16"),
    onProgress: (done) => {
      if (done % step !== 0) return;
      const rss = rssBytes(srv.pid);
      peak = Math.max(peak, rss);
      say(`  cycles=${done} rss=${mibOf(rss)}`);
    },
  });
  const endRss = rssBytes(srv.pid);
  const code = await srv.stop();
  say(
    `soak: ${cycles} cycles: rss ${mibOf(startRss)} -> ${mibOf(endRss)} (peak ${mibOf(peak)}), ` +
      `srv exited ${code}`,
  );
  Deno.exit(code === 0 ? 0 : 1);
}
const seconds = Number(values.duration ?? Deno.env.get("SRV_SOAK_SECONDS") ?? "120");
const concurrency = Number(values.concurrency ?? "32");
const deliveryRuns = Number(values["delivery-runs"] ?? "10");
if (
  !(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1 ||
  !Number.isInteger(deliveryRuns) || deliveryRuns < 0
) {
  say(
    "usage: deno task soak [--duration SECONDS] [--concurrency N] [--delivery-runs N] | --store | --cycles N | --observers N",
  );
  Deno.exit(2);
}

if (deliveryRuns > 0) {
  // The defaults are the contract (docs/PROTOCOL.md §10): no bound flags here.
  const fresh = await startSrv({ flags: ["--memory"] });
  let evictions = 0;
  let incomplete = 0;
  try {
    for (let run = 1; run <= deliveryRuns; run++) {
      const r = await pipelinedWritersAndReaders(fresh, { pidBase: 500 + run * 20 });
      evictions += r.evictions;
      incomplete += r.incomplete;
      say(
        `delivery: run ${run}/${deliveryRuns}, 8 writers x 2500 pings + 3 readers: ` +
          `${r.evictions} evictions, ${r.incomplete} clients short of pongs, ${
            Math.round(r.ms)
          } ms`,
      );
    }
    // A flood reaches the hard limit; a trickle (about 5 MiB/s) the soft one's time.
    for (const [what, paceMs, pidBase] of [["flood", 0, 700], ["trickle", 50, 710]] as const) {
      const stalled = await stalledReader(fresh, { paceMs, pidBase });
      say(
        `delivery: a reader that stopped reading under a ${what} was closed after ${
          (stalled.survivedMs / 1000).toFixed(1)
        } s at the defaults, ${(stalled.floodBytes / 1048576).toFixed(1)} MiB broadcast ` +
          `(${stalled.roundTrips} bystander round trips meanwhile): ${stalled.reason}`,
      );
    }
  } finally {
    await fresh.stop();
  }
  say(`delivery: ${evictions} evictions over ${deliveryRuns} runs`);
  if (evictions > 0 || incomplete > 0) {
    say("soak FAILED: a client that kept up was evicted or lost pongs");
    Deno.exit(1);
  }
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
