/**
 * From raw load results to what a reader sees: flat figures per run, their
 * medians over runs, the table (absolute figures and ratios), the targets of
 * issue 8 with pass/fail, `results.md` and the hand-written SVG chart.
 *
 * @module
 */

import type { LoadResult, TargetId } from "./_servers.ts";

/** Fan-out sizes measured. */
export const FANOUT_SIZES = [1, 10, 100] as const;

/** The workload rows of issue 16: what the fan-out writer sends, to how many subscribers. */
export const WORKLOADS = {
  ping0: { op: "ping", subscribers: 0, targets: ["srv", "floor"] },
  meta0: { op: "meta", subscribers: 0, targets: ["srv", "srv_store", "floor", "floor_store"] },
  meta10: { op: "meta", subscribers: 10, targets: ["srv", "srv_store", "floor", "redis"] },
} as const;

/** The steps of the tree phase (see `tree` in load.ts). */
export const TREE_STEPS = ["create_full", "create_empty", "move_full", "move_small"] as const;

/** Startup times of one kind of srv start. */
export interface StartupResult {
  ok: boolean;
  error?: string;
  median_ms?: number;
  samples_ms?: number[];
}

/** Everything one run measured. A missing entry was not run (or skipped). */
export interface RunData {
  rtt: Partial<Record<TargetId, LoadResult>>;
  pipeline: Partial<Record<TargetId, LoadResult>>;
  fanout: Record<string, Partial<Record<TargetId, LoadResult>>>;
  /** Keyed by {@linkcode WORKLOADS}. */
  workload: Record<string, Partial<Record<TargetId, LoadResult>>>;
  tree: Partial<Record<TargetId, LoadResult>>;
  catchup: { ring?: LoadResult; store?: LoadResult };
  idle?: LoadResult;
  startup: Partial<Record<"srv" | "srv_store", StartupResult>>;
}

/** An empty {@linkcode RunData}. */
export function emptyRun(): RunData {
  return { rtt: {}, pipeline: {}, fanout: {}, workload: {}, tree: {}, catchup: {}, startup: {} };
}

type Figures = Record<string, number>;

const TARGET_IDS: TargetId[] = ["srv", "srv_store", "echo", "floor", "floor_store", "redis"];

function num(result: LoadResult | undefined, field: string): number | undefined {
  if (!result?.ok) return undefined;
  const v = result[field];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function put(figures: Figures, key: string, value: number | undefined): void {
  if (value !== undefined && Number.isFinite(value)) figures[key] = value;
}

function ratio(figures: Figures, key: string, a: string, b: string): void {
  if (figures[a] !== undefined && figures[b] !== undefined && figures[b] !== 0) {
    figures[key] = figures[a] / figures[b];
  }
}

/**
 * One run as flat figures, ratios included (computed within the run, as the
 * targets ask).
 *
 * @example
 * ```ts
 * import { emptyRun, figuresOf } from "./_report.ts";
 * Object.keys(figuresOf(emptyRun())).length; // 0
 * ```
 */
export function figuresOf(run: RunData): Figures {
  const f: Figures = {};
  for (const t of TARGET_IDS) {
    put(f, `rtt.p50.${t}`, num(run.rtt[t], "p50_us"));
    put(f, `rtt.p99.${t}`, num(run.rtt[t], "p99_us"));
    put(f, `pipe.${t}`, num(run.pipeline[t], "per_s"));
    for (const [phase, r] of [["rtt", run.rtt[t]], ["pipe", run.pipeline[t]]] as const) {
      put(f, `cpu.${phase}.${t}.server`, num(r, "server_cpu"));
      put(f, `cpu.${phase}.${t}.load`, num(r, "load_cpu"));
    }
    for (const n of FANOUT_SIZES) {
      const r = run.fanout[n]?.[t];
      put(f, `fan.${n}.${t}`, num(r, "per_s"));
      put(f, `cpu.fan${n}.${t}.server`, num(r, "server_cpu"));
      put(f, `cpu.fan${n}.${t}.load`, num(r, "load_cpu"));
    }
    for (const w of Object.keys(WORKLOADS)) {
      const r = run.workload[w]?.[t];
      put(f, `wl.${w}.${t}`, num(r, "commands_per_s"));
      put(f, `cpu.wl_${w}.${t}.server`, num(r, "server_cpu"));
      put(f, `cpu.wl_${w}.${t}.load`, num(r, "load_cpu"));
    }
    for (const step of TREE_STEPS) put(f, `tree.${step}.${t}`, num(run.tree[t], `${step}_per_s`));
  }
  put(f, "catchup.ring", num(run.catchup.ring, "p50_ms"));
  put(f, "catchup.ring.events", num(run.catchup.ring, "events"));
  put(f, "catchup.ring.mb", mb(num(run.catchup.ring, "reply_bytes")));
  put(f, "catchup.store", num(run.catchup.store, "p50_ms"));
  put(f, "catchup.store.events", num(run.catchup.store, "events"));
  put(f, "catchup.store.mb", mb(num(run.catchup.store, "reply_bytes")));
  put(f, "catchup.store.fill", num(run.catchup.store, "fill_per_s"));
  const rss = num(run.idle, "rss_kb");
  put(f, "rss.mb", rss === undefined ? undefined : rss / 1024);
  const before = num(run.idle, "rss_before_kb");
  put(f, "rss.before.mb", before === undefined ? undefined : before / 1024);
  put(f, "rss.per_conn_kb", num(run.idle, "per_connection_kb"));
  put(f, "startup.srv", run.startup.srv?.median_ms);
  put(f, "startup.srv_store", run.startup.srv_store?.median_ms);

  for (const p of ["p50", "p99"]) {
    ratio(f, `r.rtt_${p}.echo`, `rtt.${p}.srv`, `rtt.${p}.echo`);
    ratio(f, `r.rtt_${p}.redis`, `rtt.${p}.srv`, `rtt.${p}.redis`);
  }
  ratio(f, "r.pipe.echo", "pipe.srv", "pipe.echo");
  ratio(f, "r.pipe.redis", "pipe.srv", "pipe.redis");
  ratio(f, "r.pipe.store", "pipe.srv_store", "pipe.srv");
  for (const n of FANOUT_SIZES) ratio(f, `r.fan.${n}.redis`, `fan.${n}.srv`, `fan.${n}.redis`);
  // Issue 16 (and issue 12's last figure), each within this run.
  ratio(f, "r.meta.ping", "wl.meta0.srv", "wl.ping0.srv");
  ratio(f, "r.meta.subs", "wl.meta10.srv", "wl.meta0.srv");
  ratio(f, "r.meta.store", "wl.meta0.srv_store", "wl.meta0.srv");
  ratio(f, "r.meta.redis", "wl.meta10.srv", "wl.meta10.redis");
  for (const t of ["srv", "srv_store"]) {
    ratio(f, `r.create.full.${t}`, `tree.create_full.${t}`, `tree.create_empty.${t}`);
    ratio(f, `r.move.full.${t}`, `tree.move_full.${t}`, `tree.move_small.${t}`);
  }
  // The runtime's floor (bench/floor_server.ts) against the same outside
  // baselines (see FloorCheck for the targets that divide by srv itself).
  ratio(f, "rf.rtt_p50.echo", "rtt.p50.floor", "rtt.p50.echo");
  ratio(f, "rf.pipe.echo", "pipe.floor", "pipe.echo");
  ratio(f, "rf.meta.redis", "wl.meta10.floor", "wl.meta10.redis");
  if (f["rss.mb"] !== undefined) f["r.rss.budget"] = f["rss.mb"] / RSS_BUDGET_MB;
  return f;
}

function mb(bytes: number | undefined): number | undefined {
  return bytes === undefined ? undefined : bytes / (1024 * 1024);
}

/**
 * Per key, the median over the runs that have it.
 *
 * @example
 * ```ts
 * import { medians } from "./_report.ts";
 * medians([{ a: 1 }, { a: 3 }, { a: 2 }]).a; // 2
 * ```
 */
export function medians(runs: readonly Figures[]): Figures {
  const keys = new Set(runs.flatMap((r) => Object.keys(r)));
  const out: Figures = {};
  for (const key of keys) {
    const values = runs.map((r) => r[key]).filter((v) => v !== undefined).sort((a, b) => a - b);
    const mid = values.length >> 1;
    out[key] = values.length % 2 === 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Formatting

function grouped(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

const formats = {
  us: (n: number) => n.toFixed(1),
  rate: grouped,
  ms: (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1)),
  mb: (n: number) => n.toFixed(1),
  x: (n: number) => `${n < 0.1 ? n.toFixed(3) : n.toFixed(2)}x`,
};

interface Row {
  label: string;
  cells: Partial<Record<TargetId, string>>;
  echo?: string;
  redis?: string;
  format: keyof typeof formats;
}

const ROWS: Row[] = [
  {
    label: "Round trip p50 (µs)",
    cells: {
      srv: "rtt.p50.srv",
      srv_store: "rtt.p50.srv_store",
      echo: "rtt.p50.echo",
      floor: "rtt.p50.floor",
    },
    echo: "r.rtt_p50.echo",
    redis: "r.rtt_p50.redis",
    format: "us",
  },
  {
    label: "Round trip p99 (µs)",
    cells: {
      srv: "rtt.p99.srv",
      srv_store: "rtt.p99.srv_store",
      echo: "rtt.p99.echo",
      floor: "rtt.p99.floor",
    },
    echo: "r.rtt_p99.echo",
    redis: "r.rtt_p99.redis",
    format: "us",
  },
  {
    label: "Pipelined, batches of 64 (commands/s)",
    cells: {
      srv: "pipe.srv",
      srv_store: "pipe.srv_store",
      echo: "pipe.echo",
      floor: "pipe.floor",
      floor_store: "pipe.floor_store",
    },
    echo: "r.pipe.echo",
    redis: "r.pipe.redis",
    format: "rate",
  },
  ...FANOUT_SIZES.map((n): Row => ({
    label: `Fan-out to ${n} subscriber${n === 1 ? "" : "s"} (deliveries/s)`,
    cells: { srv: `fan.${n}.srv` },
    redis: `r.fan.${n}.redis`,
    format: "rate",
  })),
  {
    label: "`ping`, writer ≤ 4 batches of 64 ahead (commands/s)",
    cells: { srv: "wl.ping0.srv", floor: "wl.ping0.floor" },
    format: "rate",
  },
  {
    label: "`update_block_meta`, same loop, no subscriber (commands/s)",
    cells: {
      srv: "wl.meta0.srv",
      srv_store: "wl.meta0.srv_store",
      floor: "wl.meta0.floor",
      floor_store: "wl.meta0.floor_store",
    },
    format: "rate",
  },
  {
    label: "`update_block_meta` (Redis: HSET + PUBLISH), 10 subscribers (commands/s)",
    cells: { srv: "wl.meta10.srv", srv_store: "wl.meta10.srv_store", floor: "wl.meta10.floor" },
    redis: "r.meta.redis",
    format: "rate",
  },
  ...([
    ["create_full", "`create_block` into a tab of 50k blocks (/s)"],
    ["create_empty", "`create_block` into an empty tab, same tree (/s)"],
    ["move_full", "`move_block` within a tab of 50k blocks (/s)"],
    ["move_small", "`move_block` within a tab of 64 blocks, same tree (/s)"],
  ] as const).map(([step, label]): Row => ({
    label,
    cells: { srv: `tree.${step}.srv`, srv_store: `tree.${step}.srv_store` },
    format: "rate",
  })),
  {
    label: "Catch-up, full ring (ms)",
    cells: { srv: "catchup.ring" },
    format: "ms",
  },
  {
    label: "Catch-up from the store (ms)",
    cells: { srv_store: "catchup.store" },
    format: "ms",
  },
  {
    label: "RSS, 1000 idle connections (MB)",
    cells: { srv: "rss.mb" },
    format: "mb",
  },
  {
    label: "Startup to readiness (ms)",
    cells: { srv: "startup.srv", srv_store: "startup.srv_store" },
    format: "ms",
  },
];

// Redis's own figure sits in the Redis column; look it up from the row's keys.
for (const row of ROWS) {
  const srvKey = row.cells.srv;
  if (row.redis && srvKey) row.cells.redis = srvKey.replace(/\.srv$/, ".redis");
}

function cell(f: Figures, key: string | undefined, format: keyof typeof formats): string {
  if (key === undefined) return "";
  const v = f[key];
  return v === undefined ? "–" : formats[format](v);
}

/**
 * The one table: absolute figures per target and srv (`--memory`) as a
 * ratio of echo and of Redis.
 *
 * @example
 * ```ts
 * import { resultTable } from "./_report.ts";
 * resultTable({}).startsWith("| Measure"); // true
 * ```
 */
export function resultTable(f: Figures): string {
  const lines = [
    "| Measure | srv --memory | srv store | echo | floor | floor store | Redis | srv ÷ echo | srv ÷ Redis |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const row of ROWS) {
    const c = (t: TargetId) => cell(f, row.cells[t], row.format);
    lines.push(
      `| ${row.label} | ${c("srv")} | ${c("srv_store")} | ${c("echo")} | ${c("floor")} | ${
        c("floor_store")
      } | ${c("redis")} | ${cell(f, row.echo, "x")} | ${cell(f, row.redis, "x")} |`,
    );
  }
  return lines.join("\n");
}

/** Where CPU went during each measured window, in % of one core. */
export function cpuTable(f: Figures): string {
  const lines = [
    "| Window | srv --memory | srv store | echo | floor | floor store | Redis |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const phases: [string, string][] = [
    ["rtt", "Round trip"],
    ["pipe", "Pipelined"],
    ...FANOUT_SIZES.map((n): [string, string] => [`fan${n}`, `Fan-out ${n}`]),
    ["wl_ping0", "ping, no subscriber"],
    ["wl_meta0", "update_block_meta, no subscriber"],
    ["wl_meta10", "update_block_meta, 10 subscribers"],
  ];
  for (const [key, label] of phases) {
    const c = (t: TargetId) => {
      const s = f[`cpu.${key}.${t}.server`];
      const l = f[`cpu.${key}.${t}.load`];
      if (s === undefined && l === undefined) return "";
      return `${s === undefined ? "?" : Math.round(s)}% / ${
        l === undefined ? "?" : Math.round(l)
      }%`;
    };
    lines.push(
      `| ${label} | ${c("srv")} | ${c("srv_store")} | ${c("echo")} | ${c("floor")} | ${
        c("floor_store")
      } | ${c("redis")} |`,
    );
  }
  return lines.join("\n");
}

/** The RSS budget of the idle-connections target. */
export const RSS_BUDGET_MB = 150;

/** One target (issues 8, 12 and 16). */
export interface Target {
  name: string;
  key: string;
  op: "<=" | ">=" | "<";
  limit: number;
  format: keyof typeof formats;
  /** Says why there is no figure, when there cannot be one. */
  needsRedis?: boolean;
  /** How the runtime's floor bears on this target, when the bench measures it. */
  floor?: FloorCheck;
}

/**
 * How a target's figure is read against the runtime's floor
 * (bench/floor_server.ts), by what its ratio divides by:
 */
export type FloorCheck =
  /**
   * An outside baseline (echo, Redis): the floor's same ratio, `key`, is
   * the best any server in this runtime gets.
   */
  | { kind: "baseline"; key: string }
  /**
   * Store on ÷ off for one workload (rates): srv with its store does all of
   * its `--memory` work plus at least the floor's durable write, so the
   * floor's store cost per command must fit the budget the ratio leaves
   * at srv's `--memory` cost.
   */
  | {
    kind: "store";
    srv: readonly [on: string, off: string];
    floor: readonly [on: string, off: string];
  }
  /**
   * One srv workload ÷ another (rates): the first may cost at most the
   * second's cost ÷ the limit, and it costs srv at least what it costs
   * the floor (`floor`, its rate).
   */
  | {
    kind: "self";
    srv: readonly [num: string, den: string];
    floor: string;
    /** The two workloads' names, numerator first. */
    names: readonly [string, string];
  };

/** The targets of issues 8, 12 and 16, as ratios (or a budget) within one run. */
export const TARGETS: Target[] = [
  {
    name: "Round trip p50 within 1.2x of echo",
    key: "r.rtt_p50.echo",
    floor: { kind: "baseline", key: "rf.rtt_p50.echo" },
    op: "<=",
    limit: 1.2,
    format: "x",
  },
  {
    name: "Pipelined throughput ≥ 0.5x echo",
    key: "r.pipe.echo",
    floor: { kind: "baseline", key: "rf.pipe.echo" },
    op: ">=",
    limit: 0.5,
    format: "x",
  },
  {
    name: "Fan-out to 100 subscribers ≥ 0.5x Redis",
    key: "r.fan.100.redis",
    op: ">=",
    limit: 0.5,
    format: "x",
    needsRedis: true,
  },
  {
    name: "Store on: pipelined ≥ 0.7x --memory",
    key: "r.pipe.store",
    floor: {
      kind: "store",
      srv: ["pipe.srv_store", "pipe.srv"],
      floor: ["pipe.floor_store", "pipe.floor"],
    },
    op: ">=",
    limit: 0.7,
    format: "x",
  },
  {
    name: "`update_block_meta` pipelined ≥ 0.6x `ping` (issue 16)",
    key: "r.meta.ping",
    floor: {
      kind: "self",
      srv: ["wl.meta0.srv", "wl.ping0.srv"],
      floor: "wl.meta0.floor",
      names: ["`update_block_meta`", "`ping`"],
    },
    op: ">=",
    limit: 0.6,
    format: "x",
  },
  {
    name: "`update_block_meta`, 10 subscribers ≥ 0.8x none (issue 16)",
    key: "r.meta.subs",
    floor: {
      kind: "self",
      srv: ["wl.meta10.srv", "wl.meta0.srv"],
      floor: "wl.meta10.floor",
      names: ["`update_block_meta` to 10 subscribers", "`update_block_meta` to none"],
    },
    op: ">=",
    limit: 0.8,
    format: "x",
  },
  {
    name: "`update_block_meta`, store on ≥ 0.85x --memory (issues 12, 16)",
    key: "r.meta.store",
    floor: {
      kind: "store",
      srv: ["wl.meta0.srv_store", "wl.meta0.srv"],
      floor: ["wl.meta0.floor_store", "wl.meta0.floor"],
    },
    op: ">=",
    limit: 0.85,
    format: "x",
  },
  {
    name: "`create_block` into a 50k tab ≥ 0.8x an empty tab (issue 16)",
    key: "r.create.full.srv",
    op: ">=",
    limit: 0.8,
    format: "x",
  },
  {
    name: "The same, store on (issue 16)",
    key: "r.create.full.srv_store",
    op: ">=",
    limit: 0.8,
    format: "x",
  },
  {
    name: "`update_block_meta`, 10 subscribers ≥ 1.0x Redis HSET+PUBLISH (issue 16)",
    key: "r.meta.redis",
    floor: { kind: "baseline", key: "rf.meta.redis" },
    op: ">=",
    limit: 1.0,
    format: "x",
    needsRedis: true,
  },
  {
    name: `1000 idle connections < ${RSS_BUDGET_MB} MB RSS`,
    key: "rss.mb",
    op: "<",
    limit: RSS_BUDGET_MB,
    format: "mb",
  },
];

/** Pass, fail, or no figure. */
export type Verdict = "pass" | "FAIL" | "n/a";

/** Judges one target against the figures. */
export function verdict(t: Target, f: Figures): Verdict {
  const v = f[t.key];
  if (v === undefined) return "n/a";
  const ok = t.op === "<=" ? v <= t.limit : t.op === ">=" ? v >= t.limit : v < t.limit;
  return ok ? "pass" : "FAIL";
}

/**
 * How close to a target's limit (or budget) the floor's figure must be for
 * its reading to be left to noise: runs on this machine vary by about this
 * much.
 */
export const FLOOR_MARGIN = 0.05;

/** µs a command from a rate (commands/s), or undefined. */
function usPer(f: Figures, key: string): number | undefined {
  const rate = f[key];
  return rate === undefined || rate <= 0 ? undefined : 1e6 / rate;
}

function us(n: number): string {
  return n.toFixed(2);
}

/**
 * What the floor says about a missed target (see {@linkcode FloorCheck}):
 * out of reach in this runtime, in srv's part (the protocol's rules and
 * srv's code, which the floor leaves out), or at the limit (the floor within
 * {@linkcode FLOOR_MARGIN} of it, either side). Empty for a target met or
 * without the figures.
 *
 * @example
 * ```ts
 * import { floorReading, TARGETS } from "./_report.ts";
 * const pipe = TARGETS.find((t) => t.key === "r.pipe.echo")!;
 * floorReading(pipe, { "r.pipe.echo": 0.3, "rf.pipe.echo": 0.4 }).startsWith("out of reach"); // true
 * ```
 */
export function floorReading(t: Target, f: Figures): string {
  const check = t.floor;
  if (check === undefined || verdict(t, f) !== "FAIL") return "";
  const near = (a: number, b: number) => Math.abs(a - b) <= FLOOR_MARGIN * b;
  const atLimit = `at the limit: the floor is within ${FLOOR_MARGIN * 100}% of it`;
  switch (check.kind) {
    case "baseline": {
      const value = f[check.key];
      if (value === undefined) return "";
      if (near(value, t.limit)) return atLimit;
      return verdict({ ...t, key: check.key }, f) === "FAIL"
        ? "out of reach in this runtime: the floor misses it too"
        : "in srv's part: the floor meets it";
    }
    case "store": {
      const [srvOn, srvOff] = [usPer(f, check.srv[0]), usPer(f, check.srv[1])];
      const [floorOn, floorOff] = [usPer(f, check.floor[0]), usPer(f, check.floor[1])];
      if (srvOn === undefined || srvOff === undefined) return "";
      if (floorOn === undefined || floorOff === undefined) return "";
      const budget = (1 / t.limit - 1) * srvOff;
      const least = floorOn - floorOff;
      const costs = `srv --memory costs ${us(srvOff)} µs a command, so the store may add ` +
        `${us(budget)}; the floor's durable write adds ${us(least)}, srv's store ` +
        us(srvOn - srvOff);
      if (near(least, budget)) return `${atLimit}: ${costs}`;
      return least > budget
        ? `out of reach in this runtime unless --memory got slower: ${costs}`
        : `in srv's part: ${costs}`;
    }
    case "self": {
      const [num, den] = [usPer(f, check.srv[0]), usPer(f, check.srv[1])];
      const floor = usPer(f, check.floor);
      if (num === undefined || den === undefined || floor === undefined) return "";
      const budget = den / t.limit;
      const [what, other] = check.names;
      const costs = `${other} costs srv ${us(den)} µs a command, so ${what} may cost ` +
        `${us(budget)}; it costs the floor ${us(floor)}, srv ${us(num)}`;
      if (near(floor, budget)) return `${atLimit}: ${costs}`;
      return floor > budget
        ? `out of reach in this runtime unless ${other} got slower in srv: ${costs}`
        : `in srv's part: ${costs}`;
    }
  }
}

/**
 * The targets table with measured values and pass/fail, the floor's same
 * ratio where it divides by an outside baseline, and each missed target's
 * reading against the floor.
 *
 * @example
 * ```ts
 * import { targetTable } from "./_report.ts";
 * targetTable({ "r.pipe.echo": 0.3, "rf.pipe.echo": 0.4 }, null).includes("out of reach"); // true
 * ```
 */
export function targetTable(f: Figures, redis: string | null): string {
  const lines = [
    "| Target | Measured | Result | The floor | Reading |",
    "| --- | ---: | --- | ---: | --- |",
  ];
  for (const t of TARGETS) {
    const v = f[t.key];
    let measured = v === undefined ? "–" : formats[t.format](v);
    if (t.format === "mb" && v !== undefined) measured += " MB";
    let result: string = verdict(t, f);
    if (result === "n/a") {
      result = t.needsRedis && redis === null ? "n/a (Redis not installed)" : "n/a (no figure)";
    }
    const floor = t.floor?.kind === "baseline" ? cell(f, t.floor.key, t.format) : "";
    lines.push(`| ${t.name} | ${measured} | ${result} | ${floor} | ${floorReading(t, f)} |`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// SVG

interface Bar {
  label: string;
  key: string;
  target?: { op: "<=" | ">=" | "<"; limit: number };
  redis?: boolean;
}

const BARS: Bar[] = [
  { label: "Round trip p50, srv ÷ echo", key: "r.rtt_p50.echo", target: { op: "<=", limit: 1.2 } },
  { label: "Round trip p99, srv ÷ echo", key: "r.rtt_p99.echo" },
  { label: "Pipelined, srv ÷ echo", key: "r.pipe.echo", target: { op: ">=", limit: 0.5 } },
  { label: "Pipelined, store ÷ --memory", key: "r.pipe.store", target: { op: ">=", limit: 0.7 } },
  { label: "update_block_meta ÷ ping", key: "r.meta.ping", target: { op: ">=", limit: 0.6 } },
  { label: "meta, 10 subscribers ÷ none", key: "r.meta.subs", target: { op: ">=", limit: 0.8 } },
  { label: "meta, store ÷ --memory", key: "r.meta.store", target: { op: ">=", limit: 0.85 } },
  {
    label: "create_block, 50k tab ÷ empty",
    key: "r.create.full.srv",
    target: { op: ">=", limit: 0.8 },
  },
  {
    label: "the same, store on",
    key: "r.create.full.srv_store",
    target: { op: ">=", limit: 0.8 },
  },
  { label: "move_block, 50k tab ÷ 64", key: "r.move.full.srv" },
  { label: "the same, store on", key: "r.move.full.srv_store" },
  {
    label: "meta, 10 subs, srv ÷ Redis",
    key: "r.meta.redis",
    redis: true,
    target: { op: ">=", limit: 1.0 },
  },
  { label: "RSS 1000 idle ÷ 150 MB", key: "r.rss.budget", target: { op: "<", limit: 1 } },
  { label: "Round trip p50, srv ÷ Redis", key: "r.rtt_p50.redis", redis: true },
  { label: "Pipelined, srv ÷ Redis", key: "r.pipe.redis", redis: true },
  ...FANOUT_SIZES.map((n): Bar => ({
    label: `Fan-out ${n}, srv ÷ Redis`,
    key: `r.fan.${n}.redis`,
    redis: true,
    target: n === 100 ? { op: ">=", limit: 0.5 } : undefined,
  })),
];

function xml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function niceStep(max: number): number {
  for (const step of [0.25, 0.5, 1, 2, 5, 10, 20, 50]) if (max / step <= 8) return step;
  return 100;
}

/**
 * The ratios as horizontal bars, each target as a dark tick on its bar's
 * row, parity (1.0) as a light line. Green meets its target, red misses it,
 * grey has none.
 *
 * @example
 * ```ts
 * import { ratioSvg } from "./_report.ts";
 * ratioSvg({}, "test", null).startsWith("<svg"); // true
 * ```
 */
export function ratioSvg(f: Figures, subtitle: string, redis: string | null): string {
  const W = 820;
  const LEFT = 250;
  const RIGHT = 110;
  const TOP = 64;
  const ROW = 30;
  const plot = W - LEFT - RIGHT;
  const H = TOP + BARS.length * ROW + 62;
  const values = BARS.map((b) => f[b.key]).filter((v): v is number => v !== undefined);
  const limits = BARS.flatMap((b) => (b.target ? [b.target.limit] : []));
  const CAP = 20;
  const max = Math.min(CAP, Math.max(1.5, ...values, ...limits) * 1.08);
  const step = niceStep(max);
  const xmax = Math.ceil(max / step) * step;
  const x = (v: number) => LEFT + (Math.min(v, xmax) / xmax) * plot;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="bold">srv ratios (same run, same machine)</text>`,
    `<text x="16" y="44" fill="#555555">${xml(subtitle)}</text>`,
  );
  const bottom = TOP + BARS.length * ROW;
  for (let g = 0; g <= xmax + 1e-9; g += step) {
    const gx = x(g).toFixed(1);
    const parity = Math.abs(g - 1) < 1e-9;
    out.push(
      `<line x1="${gx}" y1="${TOP - 6}" x2="${gx}" y2="${bottom}" stroke="${
        parity ? "#9e9e9e" : "#eeeeee"
      }" stroke-width="1"${parity ? ' stroke-dasharray="4 3"' : ""}/>`,
      `<text x="${gx}" y="${bottom + 16}" text-anchor="middle" fill="#555555">${
        Number(g.toFixed(2))
      }x</text>`,
    );
  }
  BARS.forEach((bar, i) => {
    const y = TOP + i * ROW;
    const v = f[bar.key];
    out.push(
      `<text x="${LEFT - 10}" y="${y + 19}" text-anchor="end">${xml(bar.label)}</text>`,
    );
    if (v === undefined) {
      const why = bar.redis && redis === null ? "n/a (Redis not installed)" : "n/a";
      out.push(`<text x="${LEFT + 6}" y="${y + 19}" fill="#888888">${why}</text>`);
      return;
    }
    let color = "#90a4ae";
    if (bar.target) {
      const t = bar.target;
      const ok = t.op === "<=" ? v <= t.limit : t.op === ">=" ? v >= t.limit : v < t.limit;
      color = ok ? "#2e7d32" : "#c62828";
    }
    const w = Math.max(1, x(v) - LEFT);
    // The value goes right of the bar, and right of the target tick if that is further.
    const labelX = Math.max(LEFT + w, bar.target ? x(bar.target.limit) : 0) + 6;
    out.push(
      `<rect x="${LEFT}" y="${y + 6}" width="${w.toFixed(1)}" height="${
        ROW - 12
      }" fill="${color}" rx="2"/>`,
    );
    const clipped = v > xmax ? " ▸" : "";
    out.push(
      `<text x="${labelX.toFixed(1)}" y="${y + 19}">${formats.x(v)}${clipped}</text>`,
    );
    if (bar.target) {
      const tx = x(bar.target.limit).toFixed(1);
      const sign = bar.target.op === ">=" ? "≥" : bar.target.op === "<=" ? "≤" : "<";
      out.push(
        `<line x1="${tx}" y1="${y + 2}" x2="${tx}" y2="${
          y + ROW - 2
        }" stroke="#212121" stroke-width="2"/>`,
        `<text x="${W - 12}" y="${y + 19}" text-anchor="end" fill="#212121">${
          xml(`target ${sign} ${bar.target.limit}x`)
        }</text>`,
      );
    }
  });
  out.push(
    `<text x="16" y="${
      H - 26
    }" fill="#555555">Lower is better for round trip and RSS; higher for throughput and fan-out.</text>`,
    `<text x="16" y="${
      H - 10
    }" fill="#555555">Green: target met. Red: target missed. Grey: no target. Dark tick: the target. Dashed: parity (1x).</text>`,
    "</svg>",
    "",
  );
  return out.join("\n");
}
