/**
 * `deno task bench`: srv side by side with the runtime's limit (a raw echo
 * server with the same framing) and with Redis, in one run on one machine.
 * Every (phase, target) pair gets a fresh server process and its own load
 * process; this orchestrator only starts, waits and collects. It prints one
 * table and writes `bench/results.md` and `bench/ratios.svg`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { deriveSeed, seededRandom, shuffled } from "./_rng.ts";
import {
  cpuTable,
  emptyRun,
  FANOUT_SIZES,
  figuresOf,
  medians,
  ratioSvg,
  resultTable,
  type RunData,
  type StartupResult,
  targetTable,
  TREE_STEPS,
  WORKLOADS,
} from "./_report.ts";
import {
  fdLimits,
  killAll,
  type LoadResult,
  redisVersion,
  runLoad,
  type SrvLauncher,
  startTarget,
  type TargetId,
} from "./_servers.ts";
import type { LoadConfig, TargetKind } from "./load.ts";
import {
  PROFILE_SECTION_END,
  PROFILE_SECTION_START,
  STORE_SECTION_END,
  STORE_SECTION_START,
} from "./_store_section.ts";

const encoder = new TextEncoder();
const PHASES = [
  "rtt",
  "pipeline",
  "fanout",
  "workload",
  "tree",
  "catchup",
  "idle",
  "startup",
] as const;
type PhaseName = (typeof PHASES)[number];

/** Sizes of one run: the default (a few minutes at most) and `--quick`. */
interface Plan {
  rttWarmup: number;
  rttSamples: number;
  warmupMs: number;
  windowMs: number;
  ringFill: number;
  ringSamples: number;
  storeFill: number;
  storeSamples: number;
  /** tree: blocks in the full tab, and commands per measured step. */
  treeFill: number;
  treeSteps: number;
  idleConnections: number;
  startups: number;
}

const FULL: Plan = {
  rttWarmup: 2000,
  rttSamples: 20000,
  warmupMs: 1000,
  windowMs: 3000,
  ringFill: 5000,
  ringSamples: 50,
  storeFill: 100_000,
  storeSamples: 5,
  treeFill: 50_000,
  treeSteps: 4096,
  idleConnections: 1000,
  startups: 7,
};

const QUICK: Plan = {
  rttWarmup: 500,
  rttSamples: 3000,
  warmupMs: 300,
  windowMs: 1000,
  ringFill: 5000,
  ringSamples: 10,
  storeFill: 20_000,
  storeSamples: 3,
  treeFill: 50_000,
  treeSteps: 1024,
  idleConnections: 1000,
  startups: 3,
};

function say(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text + "\n"));
}

function print(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text + "\n"));
}

const USAGE = `deno task bench [options]

  --seed N        seed for payloads, nonces and target order (default 1)
  --runs N        repeat the whole bench N times; report medians (default 1)
  --quick         short run (about a minute) instead of the full one
  --only LIST     comma-separated phases: ${PHASES.join(",")} (default all)
  --srv-bin PATH  bench a compiled srv (deno task compile) instead of deno run main.ts
  --no-redis      skip Redis even when redis-server is installed
  --out DIR       where results.md and ratios.svg go (default bench/)
  --no-write      print the table only; write no files
  --help`;

interface Options {
  seed: number;
  runs: number;
  quick: boolean;
  only: Set<PhaseName>;
  srvBin?: string;
  redis: boolean;
  out: string;
  write: boolean;
  argv: string[];
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      seed: { type: "string", default: "1" },
      runs: { type: "string", default: "1" },
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      "srv-bin": { type: "string" },
      "no-redis": { type: "boolean", default: false },
      out: { type: "string", default: new URL(".", import.meta.url).pathname },
      "no-write": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    print(USAGE);
    Deno.exit(0);
  }
  const int = (name: string, raw: string, min: number) => {
    if (!/^[0-9]+$/.test(raw) || Number(raw) < min) {
      throw new Error(`--${name} must be an integer ≥ ${min}, got "${raw}"`);
    }
    return Number(raw);
  };
  const only = new Set<PhaseName>();
  for (const p of (values.only ?? PHASES.join(",")).split(",").map((s) => s.trim())) {
    if (!(PHASES as readonly string[]).includes(p)) {
      throw new Error(`--only: unknown phase "${p}" (phases: ${PHASES.join(", ")})`);
    }
    only.add(p as PhaseName);
  }
  return {
    seed: int("seed", values.seed, 0),
    runs: int("runs", values.runs, 1),
    quick: values.quick,
    only,
    srvBin: values["srv-bin"],
    redis: !values["no-redis"],
    out: values.out.replace(/\/?$/, "/"),
    write: !values["no-write"],
    argv,
  };
}

function kindOf(target: TargetId): TargetKind {
  // The floor speaks srv's protocol (the part the load process uses).
  return target === "echo" || target === "redis" ? target : "srv";
}

const LABEL: Record<TargetId, string> = {
  srv: "srv --memory",
  srv_store: "srv store",
  echo: "echo",
  floor: "floor",
  floor_store: "floor store",
  redis: "Redis",
};

function summary(phase: string, r: LoadResult): string {
  if (!r.ok) return `${r.timeout ? "TIMEOUT" : "ERROR"}: ${r.error}`;
  const cpu = r.server_cpu !== undefined
    ? `  (cpu: server ${r.server_cpu ?? "?"}%, load ${r.load_cpu ?? "?"}%)`
    : "";
  switch (phase) {
    case "rtt":
      return `p50 ${r.p50_us} µs, p99 ${r.p99_us} µs${cpu}`;
    case "pipeline":
    case "fanout":
      if (r.commands_per_s !== undefined && r.subscribers === 0) {
        return `${Number(r.commands_per_s).toLocaleString("en-US")} commands/s${cpu}`;
      }
      return `${Number(r.per_s).toLocaleString("en-US")}/s${cpu}`;
    case "tree":
      return TREE_STEPS.map((s) => `${s} ${Number(r[`${s}_per_s`]).toLocaleString("en-US")}/s`)
        .join(", ") + `, filled at ${Number(r.fill_per_s).toLocaleString("en-US")}/s`;
    case "catchup":
      return `p50 ${r.p50_ms} ms, ${r.events} events, ${
        (Number(r.reply_bytes) / 1048576).toFixed(1)
      } MB, filled at ${Number(r.fill_per_s).toLocaleString("en-US")}/s`;
    case "idle":
      return `RSS ${(Number(r.rss_kb) / 1024).toFixed(1)} MB (idle server ${
        (Number(r.rss_before_kb) / 1024).toFixed(1)
      } MB, ${r.per_connection_kb} kB per connection), set up in ${r.setup_ms} ms`;
  }
  return JSON.stringify(r);
}

class Bench {
  readonly opts: Options;
  readonly plan: Plan;
  readonly tmp: string;
  readonly srv: SrvLauncher;
  readonly targets: TargetId[];
  readonly notes: string[] = [];
  #serial = 0;

  constructor(opts: Options, tmp: string, redis: boolean) {
    this.opts = opts;
    this.plan = opts.quick ? QUICK : FULL;
    this.tmp = tmp;
    this.srv = { bin: opts.srvBin };
    this.targets = ["echo", "srv", "srv_store", "floor", "floor_store"];
    if (redis) this.targets.push("redis");
  }

  /** A fresh server for one load process, stopped afterwards. */
  async measure(
    run: number,
    phase: string,
    target: TargetId,
    config: Omit<LoadConfig, "socket" | "seed" | "target" | "pid">,
    fds = 256,
  ): Promise<LoadResult> {
    const dir = `${this.tmp}/${++this.#serial}-${target}`;
    const label = `run ${run + 1}/${this.opts.runs}  ${phase.padEnd(11)} ${
      LABEL[target].padEnd(13)
    }`;
    let result: LoadResult;
    let server;
    try {
      server = await startTarget(target, { dir, srv: this.srv, fds });
    } catch (e) {
      result = { ok: false, error: `could not start: ${(e as Error).message}` };
      say(`${label} ${summary(config.phase, result)}`);
      this.notes.push(`run ${run + 1}, ${phase}, ${LABEL[target]}: ${result.error}`);
      return result;
    }
    try {
      result = await runLoad({
        ...config,
        target: kindOf(target),
        socket: server.socket,
        pid: server.pid,
        seed: deriveSeed(this.opts.seed, run, phase, target),
      } as LoadConfig, fds);
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    if (!result.ok) {
      const tail = server.stderrTail().trim().split("\n").slice(-3).join(" | ");
      if (tail) result.server_stderr = tail.slice(-600);
      this.notes.push(
        `run ${run + 1}, ${phase}, ${LABEL[target]}: ${
          result.timeout ? "timeout: " : ""
        }${result.error}`,
      );
    }
    say(`${label} ${summary(config.phase, result)}`);
    return result;
  }

  async run(run: number): Promise<RunData> {
    const data = emptyRun();
    const p = this.plan;
    const next = deriveSeed(this.opts.seed, "order", run);
    let k = 0;
    const order = <T>(items: readonly T[]) => shuffled(items, seededRandom(deriveSeed(next, k++)));
    const window = p.warmupMs + p.windowMs;
    const only = this.opts.only;

    if (only.has("rtt")) {
      // No target compares store latencies of the floor.
      for (const t of order(this.targets.filter((t) => t !== "floor_store"))) {
        data.rtt[t] = await this.measure(run, "rtt", t, {
          phase: "rtt",
          warmup: p.rttWarmup,
          samples: p.rttSamples,
          deadlineMs: Math.round((p.rttWarmup + p.rttSamples) * 1.0) + 20_000,
        });
      }
    }
    if (only.has("pipeline")) {
      for (const t of order(this.targets)) {
        data.pipeline[t] = await this.measure(run, "pipeline", t, {
          phase: "pipeline",
          batch: 64,
          warmupMs: p.warmupMs,
          windowMs: p.windowMs,
          deadlineMs: window + 20_000,
        });
      }
    }
    if (only.has("fanout")) {
      const fanTargets = this.targets.filter((t) => t === "srv" || t === "redis");
      for (const n of FANOUT_SIZES) {
        data.fanout[n] = {};
        for (const t of order(fanTargets)) {
          data.fanout[n][t] = await this.measure(run, `fanout ${n}`, t, {
            phase: "fanout",
            subscribers: n,
            batch: 64,
            warmupMs: p.warmupMs,
            windowMs: p.windowMs,
            deadlineMs: window + n * 100 + 20_000,
          });
        }
      }
    }
    if (only.has("workload")) {
      for (const [name, w] of Object.entries(WORKLOADS)) {
        data.workload[name] = {};
        const targets = this.targets.filter((t) => (w.targets as readonly string[]).includes(t));
        for (const t of order(targets)) {
          data.workload[name][t] = await this.measure(run, name, t, {
            phase: "fanout",
            op: w.op,
            subscribers: w.subscribers,
            batch: 64,
            warmupMs: p.warmupMs,
            windowMs: p.windowMs,
            deadlineMs: window + 30_000,
          });
        }
      }
    }
    if (only.has("tree")) {
      for (const t of order(["srv", "srv_store"] as const)) {
        data.tree[t] = await this.measure(run, "tree", t, {
          phase: "tree",
          fill: p.treeFill,
          steps: p.treeSteps,
          batch: 64,
          // Generous: before issue 16, a 50k tab filled at a few hundred blocks/s.
          deadlineMs: 300_000,
        });
      }
    }
    if (only.has("catchup")) {
      data.catchup.ring = await this.measure(run, "catchup", "srv", {
        phase: "catchup",
        fill: p.ringFill,
        samples: p.ringSamples,
        deadlineMs: 60_000,
      });
      data.catchup.store = await this.measure(run, "catchup", "srv_store", {
        phase: "catchup",
        fill: p.storeFill,
        samples: p.storeSamples,
        // Generous: 100k events at a slow 2k/s is 50 s.
        deadlineMs: Math.round(p.storeFill / 2) + p.storeSamples * 10_000 + 30_000,
      });
    }
    if (only.has("idle")) {
      const fds = p.idleConnections + 256;
      data.idle = await this.measure(run, "idle", "srv", {
        phase: "idle",
        connections: p.idleConnections,
        settleMs: 1000,
        deadlineMs: 90_000,
      }, fds);
    }
    if (only.has("startup")) {
      for (const t of order(["srv", "srv_store"] as const)) {
        data.startup[t] = await this.startup(run, t);
      }
    }
    return data;
  }

  /** Spawn to readiness line, `startups` times (after one unmeasured start). */
  async startup(run: number, target: "srv" | "srv_store"): Promise<StartupResult> {
    const samples: number[] = [];
    try {
      for (let i = 0; i <= this.plan.startups; i++) {
        const dir = `${this.tmp}/${++this.#serial}-startup`;
        const server = await startTarget(target, { dir, srv: this.srv });
        await server.stop();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
        if (i > 0) samples.push(Math.round(server.readyMs * 10) / 10);
      }
    } catch (e) {
      const error = (e as Error).message;
      this.notes.push(`run ${run + 1}, startup, ${LABEL[target]}: ${error}`);
      say(
        `run ${run + 1}/${this.opts.runs}  startup     ${LABEL[target].padEnd(13)} ERROR: ${error}`,
      );
      return { ok: false, error };
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const median_ms = sorted[sorted.length >> 1];
    say(
      `run ${run + 1}/${this.opts.runs}  startup     ${
        LABEL[target].padEnd(13)
      } median ${median_ms} ms of [${samples.join(", ")}]`,
    );
    return { ok: true, median_ms, samples_ms: samples };
  }
}

async function commandText(cmd: string, args: string[]): Promise<string | null> {
  try {
    const { success, stdout } = await new Deno.Command(cmd, {
      args,
      stdout: "piped",
      stderr: "null",
      cwd: new URL("..", import.meta.url).pathname,
    }).output();
    return success ? new TextDecoder().decode(stdout).trim() : null;
  } catch {
    return null;
  }
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function loadAverage(): string {
  return readText("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

interface Machine {
  cpu: string;
  cores: number;
  ramGiB: string;
  os: string;
  deno: string;
  redis: string | null;
  commit: string;
  loadStart: string;
}

async function machine(redis: string | null): Promise<Machine> {
  const cpu = readText("/proc/cpuinfo").match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ??
    Deno.build.arch;
  const os = readText("/etc/os-release").match(/^PRETTY_NAME="?([^"\n]+)"?/m)?.[1] ?? Deno.build.os;
  let ram = "?";
  try {
    ram = (Deno.systemMemoryInfo().total / 1024 ** 3).toFixed(1);
  } catch {
    // Not available here.
  }
  const rev = await commandText("git", ["rev-parse", "--short", "HEAD"]);
  const dirty = await commandText("git", [
    "status",
    "--porcelain",
    "--",
    "srv",
    "main.ts",
    "mod.ts",
    "deps.ts",
  ]);
  const branch = await commandText("git", ["rev-parse", "--abbrev-ref", "HEAD"]);
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    ramGiB: ram,
    os: `${os}, ${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: `Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, TypeScript ${Deno.version.typescript}`,
    redis,
    commit: rev === null ? "unknown" : `${rev}${dirty ? " (srv modified)" : ""} on ${branch}`,
    loadStart: loadAverage(),
  };
}

function resultsMarkdown(
  opts: Options,
  m: Machine,
  figures: Record<string, number>,
  runs: RunData[],
  notes: string[],
  startedAt: Date,
  seconds: number,
): string {
  const mode = opts.quick ? "quick" : "full";
  const cmd = `deno task bench${opts.argv.length ? " " + opts.argv.join(" ") : ""}`;
  const ring = figures["catchup.ring.events"];
  const store = figures["catchup.store.events"];
  const lines = [
    "# srv benchmark results",
    "",
    `Written by \`${cmd}\` on ${startedAt.toISOString()} (${
      Math.round(seconds)
    } s). Regenerate; do not edit.`,
    "",
    "## Machine and run",
    "",
    "| | |",
    "| --- | --- |",
    `| CPU | ${m.cpu}, ${m.cores} cores |`,
    `| RAM | ${m.ramGiB} GiB |`,
    `| OS | ${m.os} |`,
    `| Runtime | ${m.deno} |`,
    `| Redis | ${m.redis ?? "not installed"} |`,
    `| srv | ${m.commit}${opts.srvBin ? `, binary ${opts.srvBin}` : ", deno run main.ts"} |`,
    `| Runs | ${opts.runs} (${mode}); figures are medians over runs, ratios medians of per-run ratios |`,
    `| Seed | ${opts.seed} |`,
    `| Load average (1, 5, 15 min) | ${m.loadStart} at start, ${loadAverage()} at the end |`,
    "",
    `srv, the load process and the peer server share the ${m.cores} cores: every figure here includes ` +
    "the load process's own cost, the same for every target. Compare ratios, not absolute figures " +
    "across machines. A load average near or above the core count at the start means other work " +
    "shared the machine and added noise; `--runs 3` on a quiet machine gives steadier medians.",
    "",
    "## Results",
    "",
    resultTable(figures),
    "",
    `Catch-up: \`get_events{since:0}\` from a fresh registered connection; full ring: ${
      ring ?? "?"
    } events (memory srv, ${figures["catchup.ring.mb"]?.toFixed(2) ?? "?"} MB reply); store: ${
      store ?? "?"
    } events after ${opts.quick ? QUICK.storeFill : FULL.storeFill} pings (${
      figures["catchup.store.mb"]?.toFixed(1) ?? "?"
    } MB reply). Startup: srv store opens an empty data dir.`,
    "",
    "## Targets (issues 8, 12 and 16)",
    "",
    targetTable(figures, m.redis),
    "",
    "Issue 16's rows compare two figures of the same run measured by the same loop, so only the " +
    "thing under test differs: `update_block_meta` against `ping`, 10 subscribers against none, " +
    "the store against `--memory`, a 50k-block tab against an empty one in the same tree, srv " +
    "against Redis doing the same work (HSET of the fields, PUBLISH of the same event line). For a " +
    'target not met, "Where a command\'s time goes" below (`deno task bench:profile --write`) ' +
    "shows where srv's CPU goes under that workload and what the runtime alone charges for the " +
    "JSON of one command.",
    "",
    "**The floor** (`bench/floor_server.ts`) measures the runtime's share directly: a server in " +
    "the same runtime that does only what any server must do to speak this protocol (UTF-8 check " +
    "and line split, `JSON.parse` of each line, `JSON.stringify` of each event, the turn's bytes " +
    "encoded once and written to every connection; the floor store commits each turn's lines and " +
    "the changed block rows in one SQLite transaction with srv's pragmas) and none of the " +
    "protocol's rules, which are srv's part (validation, state, merge, size caps, exact u64s, " +
    "the ring, backpressure). It runs in the same loops. A missed target is read by what its " +
    'ratio divides by. Against an outside baseline (echo, Redis), "The floor" is the floor\'s ' +
    "same ratio: if the floor misses it too, it is out of reach in this runtime. Store on ÷ off: " +
    "srv with its store does all its `--memory` work plus at least the floor's durable write, so " +
    "if that write alone costs more per command than the ratio leaves at srv's `--memory` cost, " +
    "it is out of reach. One srv workload ÷ another: the first costs srv at least what it costs " +
    "the floor, so if that exceeds what the ratio allows at srv's cost of the other, it is out of " +
    "reach. Otherwise the gap is in srv's part. Costs are µs a command as 1 ÷ rate in the same " +
    "loop. Figures are noisy, so a floor within 5% of the limit, either side, reads as at the " +
    "limit.",
    "",
    "![ratios](ratios.svg)",
    "",
    "## Where the time goes",
    "",
    "CPU during each measured window, server / load process, in % of one core (from /proc). A side " +
    "near 100% is the bottleneck.",
    "",
    cpuTable(figures),
    "",
  ];
  if (notes.length > 0) {
    lines.push("## Failures and timeouts", "", ...notes.map((n) => `- ${n}`), "");
  }
  if (m.redis === null) {
    lines.push("Redis was not installed: its column and the Redis ratios are empty.", "");
  }
  lines.push(
    "## Raw results",
    "",
    "<details><summary>Every load process's report, per run</summary>",
    "",
    "```json",
    JSON.stringify(runs, null, 1),
    "```",
    "",
    "</details>",
    "",
  );
  return lines.join("\n");
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(Deno.args);
  } catch (e) {
    say(`bench: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      killAll();
      say(`bench: ${signal}; stopped every child process`);
      Deno.exit(130);
    });
  }
  const startedAt = new Date();
  const t0 = performance.now();
  const installed = await redisVersion();
  const useRedis = opts.redis && installed !== null;
  if (installed === null) say("bench: redis-server is not on PATH; Redis is skipped");
  else if (!opts.redis) say("bench: --no-redis; Redis is skipped");
  const m = await machine(useRedis ? installed : null);
  const fd = fdLimits();
  if (fd !== null && fd.hard < QUICK.idleConnections + 256) {
    say(`bench: open-files hard limit is ${fd.hard}; the idle phase will likely fail`);
  }
  say(
    `bench: ${
      opts.quick ? "quick" : "full"
    } run, seed ${opts.seed}, ${opts.runs} run(s); ${m.cpu}, ${m.cores} cores; load average ${m.loadStart}`,
  );
  const tmp = await Deno.makeTempDir({ prefix: "srv-bench-" });
  const bench = new Bench(opts, tmp, useRedis);
  const runs: RunData[] = [];
  try {
    for (let r = 0; r < opts.runs; r++) runs.push(await bench.run(r));
  } finally {
    killAll();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  const seconds = (performance.now() - t0) / 1000;
  const figures = medians(runs.map(figuresOf));
  print("");
  print(resultTable(figures));
  print("");
  print(targetTable(figures, m.redis));
  print("");
  print("CPU during each window, server / load process (% of one core):");
  print(cpuTable(figures));
  if (bench.notes.length > 0) {
    print("");
    print("Failures and timeouts:");
    for (const n of bench.notes) print(`- ${n}`);
  }
  if (opts.write) {
    let md = resultsMarkdown(opts, m, figures, runs, bench.notes, startedAt, seconds);
    // `deno task bench:store` and `bench:profile --write` own a section each: keep them.
    const old = await Deno.readTextFile(`${opts.out}results.md`).catch(() => "");
    for (
      const [start, end] of [
        [STORE_SECTION_START, STORE_SECTION_END],
        [PROFILE_SECTION_START, PROFILE_SECTION_END],
      ]
    ) {
      const a = old.indexOf(start);
      const b = old.indexOf(end);
      if (a >= 0 && b > a) md += "\n" + old.slice(a, b + end.length) + "\n";
    }
    await Deno.mkdir(opts.out, { recursive: true });
    await Deno.writeTextFile(`${opts.out}results.md`, md);
    const subtitle = `${m.cpu}, ${m.cores} cores · ${m.deno.split(",")[0]} · Redis ${
      m.redis ?? "not installed"
    } · ${opts.runs} run(s), seed ${opts.seed} · ${startedAt.toISOString().slice(0, 10)}`;
    await Deno.writeTextFile(`${opts.out}ratios.svg`, ratioSvg(figures, subtitle, m.redis));
    print("");
    print(`wrote ${opts.out}results.md and ${opts.out}ratios.svg (${Math.round(seconds)} s)`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
