/**
 * `deno task bench:profile`: where srv's CPU goes under one bench workload.
 * Starts srv with the V8 inspector on, drives it with the bench's own load
 * process, records a CPU profile of the server over the measured window
 * (the inspector's `Profiler` domain; Deno has no `--cpu-prof`) and prints
 * the functions with the most self time.
 *
 * Usage: `deno task bench:profile [--op meta|ping|create] [--subscribers N]
 * [--store] [--seconds S] [--top N] [--out FILE.cpuprofile] [--write]`. Without
 * `--op` it profiles the standard set (ping, update_block_meta with the store
 * off and on, and with 10 subscribers); `--write` puts them, with what the
 * runtime alone charges for a command's JSON, into `bench/results.md`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { LoadConfig } from "./load.ts";
import { type LoadResult, runLoad, startTarget } from "./_servers.ts";
import { PROFILE_SECTION_END, PROFILE_SECTION_START, replaceSection } from "./_store_section.ts";

const encoder = new TextEncoder();

function say(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text + "\n"));
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
class Inspector {
  readonly #ws: WebSocket;
  #next = 1;
  readonly #waiting = new Map<number, PromiseWithResolvers<unknown>>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data));
      const w = this.#waiting.get(msg.id);
      if (w === undefined) return;
      this.#waiting.delete(msg.id);
      if (msg.error) w.reject(new Error(JSON.stringify(msg.error)));
      else w.resolve(msg.result);
    };
  }

  static async open(port: number): Promise<Inspector> {
    let targets: { webSocketDebuggerUrl: string }[] = [];
    for (let i = 0; i < 100 && targets.length === 0; i++) {
      try {
        targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    if (targets.length === 0) throw new Error(`no inspector on port ${port}`);
    const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    return new Inspector(ws);
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#next++;
    const w = Promise.withResolvers<unknown>();
    this.#waiting.set(id, w);
    this.#ws.send(JSON.stringify({ id, method, params }));
    return w.promise;
  }

  close(): void {
    this.#ws.close();
  }
}

/** Self time per function (name and place), in % of all samples, most first. */
function tops(profile: Profile, count: number): string[] {
  const self = new Map<string, number>();
  const parent = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node);
  }
  const name = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^.*\/(srv|bench|ext|node)\//, "$1/");
    return `${functionName || "(anonymous)"}${file ? ` ${file}:${lineNumber + 1}` : ""}`;
  };
  let total = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    total += hits;
    // A native function (SQLite's run, a write) is named with its caller.
    const up = node.callFrame.url === "" ? parent.get(node.id) : undefined;
    const key = up !== undefined && up.callFrame.url !== ""
      ? `${name(node)} ← ${name(up)}`
      : name(node);
    self.set(key, (self.get(key) ?? 0) + hits);
  }
  return [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, count).map(([key, hits]) =>
    `${(hits * 100 / total).toFixed(1).padStart(5)}%  ${key}`
  );
}

/** One profiled workload. */
interface Run {
  op: "ping" | "meta" | "create";
  subscribers: number;
  store: boolean;
}

/** The load's result and the profile's top functions. */
interface Profiled {
  run: Run;
  load: LoadResult;
  tops: string[];
  profile: Profile;
}

function label(run: Run): string {
  const subs = run.op === "create" ? "" : `, ${run.subscribers} subscribers`;
  return `srv${run.store ? " store" : " --memory"}, ${run.op}${subs}`;
}

async function profileOne(run: Run, windowMs: number, port: number, top: number) {
  const dir = await Deno.makeTempDir({ prefix: "srv-profile-" });
  const target = run.store ? "srv_store" : "srv";
  const server = await startTarget(target, { dir, srv: {}, inspect: `127.0.0.1:${port}` });
  try {
    const inspector = await Inspector.open(port);
    await inspector.call("Profiler.enable");
    await inspector.call("Profiler.setSamplingInterval", { interval: 200 });
    const tree = run.op === "create";
    const common = { target: "srv" as const, socket: server.socket, seed: 1, pid: server.pid };
    const config: LoadConfig = tree
      ? { ...common, phase: "tree", fill: 50_000, steps: 4096, deadlineMs: 300_000 }
      : {
        ...common,
        phase: "fanout",
        op: run.op === "ping" ? "ping" : "meta",
        subscribers: run.subscribers,
        batch: 64,
        warmupMs: 1000,
        windowMs: windowMs + 1000,
        deadlineMs: windowMs + 30_000,
      };
    const load = runLoad(config);
    // Start after the load's warm-up, stop before its window ends.
    await new Promise((r) => setTimeout(r, tree ? 0 : 1500));
    await inspector.call("Profiler.start");
    if (tree) await load;
    else await new Promise((r) => setTimeout(r, windowMs));
    const { profile } = await inspector.call("Profiler.stop") as { profile: Profile };
    inspector.close();
    return { run, load: await load, tops: tops(profile, top), profile };
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Median µs of `f` over `rounds` rounds of `n` calls. */
function timeUs(f: () => unknown, n = 20_000, rounds = 7): number {
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) f();
    times.push(((performance.now() - t0) * 1000) / n);
  }
  return times.sort((a, b) => a - b)[rounds >> 1];
}

/**
 * What the runtime alone charges for the JSON a command and its event
 * carry, measured in this process: the floor under any server that
 * parses the line and serializes the event (srv does each once).
 */
function runtimeFloor(): { rows: string[]; metaUs: number; pingUs: number } {
  const id = crypto.randomUUID();
  const patch = '{"title":"~/src/project 12345","cwd":"/home/user/src/project","n":12345}';
  const metaLine = `{"cmd":"update_block_meta","block_id":"${id}","meta_patch":${patch}}`;
  const pingLine = '{"cmd":"ping","nonce":1234567890123}';
  const metaEvent = {
    event: "block_meta_updated",
    block_id: id,
    meta_patch: JSON.parse(patch),
    version: 1234567,
  };
  const pong = { event: "pong", nonce: 1234567890123, version: 1234567 };
  const encoder = new TextEncoder();
  const metaJson = JSON.stringify(metaEvent);
  const pongJson = JSON.stringify(pong);
  const scratch = new Uint8Array(4096);
  let metaUs = 0;
  let pingUs = 0;
  const row = (what: string, meta: number, ping: number) => {
    metaUs += meta;
    pingUs += ping;
    return `| ${what} | ${meta.toFixed(2)} | ${ping.toFixed(2)} |`;
  };
  const rows = [
    "| Runtime operation (this machine, µs) | `update_block_meta` | `ping` |",
    "| --- | ---: | ---: |",
    row(
      "`JSON.parse` of the command line",
      timeUs(() => JSON.parse(metaLine)),
      timeUs(() => JSON.parse(pingLine)),
    ),
    row(
      "`JSON.stringify` of the event",
      timeUs(() => JSON.stringify(metaEvent)),
      timeUs(() => JSON.stringify(pong)),
    ),
    row(
      // encodeInto a buffer that is reused, as srv's ring does: encode() would
      // add a fresh array and its op call to every line.
      "UTF-8 encode of the event line (`encodeInto`)",
      timeUs(() => encoder.encodeInto(metaJson, scratch)),
      timeUs(() => encoder.encodeInto(pongJson, scratch)),
    ),
    row(
      "`JSON.stringify` of the merged meta (its size)",
      timeUs(() => JSON.stringify(metaEvent.meta_patch)),
      0,
    ),
  ];
  return { rows, metaUs, pingUs };
}

function perCommandUs(load: LoadResult): number | null {
  const cpu = Number(load.server_cpu);
  const rate = Number(load.commands_per_s);
  return load.ok && cpu > 0 && rate > 0 ? (cpu / 100) * 1e6 / rate : null;
}

function section(results: Profiled[], windowMs: number): string {
  const lines = [
    PROFILE_SECTION_START,
    "## Where a command's time goes",
    "",
    `Written by \`deno task bench:profile --write\` on ${new Date().toISOString()}: srv under ` +
    "the bench's own load process, profiled with the V8 inspector (sampling every 200 µs over " +
    `${windowMs / 1000} s of the measured window). Server CPU per command = the server's CPU ` +
    "time in the window ÷ commands answered. Self time is per function; a native call (SQLite's " +
    "`run`, a socket write) is named with its JS caller. The machine was shared, so compare the " +
    "shares, not the absolute figures.",
    "",
    "| Workload | Commands/s | Server CPU per command (µs) |",
    "| --- | ---: | ---: |",
  ];
  for (const r of results) {
    const us = perCommandUs(r.load);
    const rate = Number(r.load.commands_per_s);
    lines.push(
      `| ${label(r.run)} | ${r.load.ok ? rate.toLocaleString("en-US") : "failed"} | ${
        us === null ? "–" : us.toFixed(2)
      } |`,
    );
  }
  const floor = runtimeFloor();
  lines.push(
    "",
    "What the runtime itself charges for the JSON of one command (measured in-process, the " +
      "median of 7 rounds): the parts of a command's cost srv cannot remove without changing the " +
      "protocol's encoding.",
    "",
    ...floor.rows,
    "",
  );
  const cost = (op: string, store: boolean) => {
    const r = results.find((x) => x.run.op === op && x.run.store === store && !x.run.subscribers);
    return r === undefined ? null : perCommandUs(r.load);
  };
  const ping = cost("ping", false);
  const meta = cost("meta", false);
  const stored = cost("meta", true);
  if (ping !== null && meta !== null) {
    const json = floor.metaUs - floor.pingUs;
    lines.push(
      `Read together: \`update_block_meta\` costs ${(meta - ping).toFixed(2)} µs of server CPU ` +
        `more than \`ping\`, of which the runtime's JSON work accounts for ${
          json.toFixed(2)
        } µs; ` +
        "the rest is srv's own work on a meta update (merging the patch, measuring the patch and " +
        "the merged meta for the size caps, the decision, the new block entity, their garbage): " +
        "the functions named in the profiles below." +
        (stored === null ? "" : ` The store adds ${(stored - meta).toFixed(2)} µs a command: ` +
          "SQLite's statements (`run ← commit` is the batch row, the version scalars and the " +
          "commit, which writes the turn's pages to the WAL and, every 10,000 pages, checkpoints " +
          "them; `run ← #writeMetas` the meta rows; `run ← #prune` retention)."),
      "",
    );
  }
  for (const r of results) {
    lines.push(`### ${label(r.run)}`, "", "```", ...r.tops, "```", "");
  }
  lines.push(PROFILE_SECTION_END);
  return lines.join("\n");
}

const STANDARD: Run[] = [
  { op: "ping", subscribers: 0, store: false },
  { op: "meta", subscribers: 0, store: false },
  { op: "meta", subscribers: 0, store: true },
  { op: "meta", subscribers: 10, store: false },
];

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      op: { type: "string" },
      subscribers: { type: "string", default: "0" },
      store: { type: "boolean", default: false },
      seconds: { type: "string", default: "4" },
      top: { type: "string", default: "25" },
      port: { type: "string", default: "9329" },
      out: { type: "string" },
      write: { type: "boolean", default: false },
    },
  });
  const port = Number(values.port);
  const windowMs = Number(values.seconds) * 1000;
  if (values.op !== undefined && !["ping", "meta", "create"].includes(values.op)) {
    say(`--op must be ping, meta or create, got ${values.op}`);
    return 2;
  }
  // One workload (--op), or the standard set that the results section shows.
  const runs: Run[] = values.op === undefined ? STANDARD : [{
    op: values.op as Run["op"],
    subscribers: Number(values.subscribers),
    store: values.store,
  }];
  const results: Profiled[] = [];
  for (const run of runs) {
    const r = await profileOne(run, windowMs, port, Number(values.top));
    say(`${label(run)}: ${JSON.stringify(r.load)}`);
    // deno-lint-ignore no-console
    console.log(`${label(run)}: self time\n${r.tops.join("\n")}\n`);
    results.push(r);
  }
  if (values.out && results.length === 1) {
    await Deno.writeTextFile(values.out, JSON.stringify(results[0].profile));
  }
  if (values.write) {
    const path = new URL("results.md", import.meta.url).pathname;
    const old = await Deno.readTextFile(path).catch(() => "");
    const text = section(results.map((r) => ({ ...r, tops: r.tops.slice(0, 15) })), windowMs);
    await Deno.writeTextFile(
      path,
      replaceSection(old, PROFILE_SECTION_START, PROFILE_SECTION_END, text),
    );
    say(`wrote the profile section of ${path}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
