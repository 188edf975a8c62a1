/**
 * `deno task bench:profile`: where srv's CPU goes under one bench workload.
 * Starts srv with the V8 inspector on, drives it with the bench's own load
 * process, records a CPU profile of the server over the measured window
 * (the inspector's `Profiler` domain; Deno has no `--cpu-prof`) and prints
 * the functions with the most self time.
 *
 * Usage: `deno task bench:profile [--op meta|ping|create] [--subscribers N]
 * [--store] [--seconds S] [--top N] [--out FILE.cpuprofile]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { LoadConfig } from "./load.ts";
import { runLoad, startTarget } from "./_servers.ts";

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

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      op: { type: "string", default: "meta" },
      subscribers: { type: "string", default: "0" },
      store: { type: "boolean", default: false },
      seconds: { type: "string", default: "4" },
      top: { type: "string", default: "25" },
      port: { type: "string", default: "9329" },
      out: { type: "string" },
    },
  });
  const port = Number(values.port);
  const windowMs = Number(values.seconds) * 1000;
  const dir = await Deno.makeTempDir({ prefix: "srv-profile-" });
  const target = values.store ? "srv_store" : "srv";
  const server = await startTarget(target, {
    dir,
    srv: {},
    inspect: `127.0.0.1:${port}`,
  });
  try {
    const inspector = await Inspector.open(port);
    await inspector.call("Profiler.enable");
    await inspector.call("Profiler.setSamplingInterval", { interval: 200 });
    const tree = values.op === "create";
    const config: LoadConfig = tree
      ? {
        phase: "tree",
        target: "srv",
        socket: server.socket,
        seed: 1,
        fill: 50_000,
        steps: 4096,
        deadlineMs: 300_000,
        pid: server.pid,
      }
      : {
        phase: "fanout",
        op: values.op === "ping" ? "ping" : "meta",
        subscribers: Number(values.subscribers),
        target: "srv",
        socket: server.socket,
        seed: 1,
        batch: 64,
        warmupMs: 1000,
        windowMs: windowMs + 1000,
        deadlineMs: windowMs + 30_000,
        pid: server.pid,
      };
    const load = runLoad(config);
    // Start after the load's warm-up, stop before its window ends.
    await new Promise((r) => setTimeout(r, tree ? 0 : 1500));
    await inspector.call("Profiler.start");
    if (tree) await load;
    else await new Promise((r) => setTimeout(r, windowMs));
    const { profile } = await inspector.call("Profiler.stop") as { profile: Profile };
    inspector.close();
    const result = await load;
    say(`load: ${JSON.stringify(result)}`);
    if (values.out) await Deno.writeTextFile(values.out, JSON.stringify(profile));
    // deno-lint-ignore no-console
    console.log(
      `srv${
        values.store ? " (store)" : " --memory"
      }, ${values.op}, ${values.subscribers} subscribers: self time`,
    );
    // deno-lint-ignore no-console
    for (const line of tops(profile, Number(values.top))) console.log(line);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
