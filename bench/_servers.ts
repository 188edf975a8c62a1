/**
 * Starting and stopping what the bench measures (srv, the echo baseline,
 * Redis) and the load processes that drive them, each as its own process,
 * each with a deadline so a hang becomes a reported timeout.
 *
 * @module
 */

import type { LoadConfig } from "./load.ts";

const decoder = new TextDecoder();
const ROOT = new URL("../", import.meta.url).pathname;
const MAIN = `${ROOT}main.ts`;
const ECHO = `${ROOT}bench/echo_server.ts`;
const FLOOR = `${ROOT}bench/floor_server.ts`;
const LOAD = `${ROOT}bench/load.ts`;
/** Exactly what `deno task start` grants srv. */
const SRV_PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys",
  "--allow-net",
];
const STDERR_TAIL = 4096;

/**
 * The servers a phase can target: srv with and without its store, the raw
 * echo baseline, the runtime's floor (bench/floor_server.ts) with and
 * without its minimal store, and Redis.
 */
export type TargetId = "srv" | "srv_store" | "echo" | "floor" | "floor_store" | "redis";

/** A server process that printed its readiness line. */
export interface Running {
  readonly id: TargetId;
  readonly pid: number;
  readonly socket: string;
  /** Milliseconds from spawn to the readiness line. */
  readonly readyMs: number;
  stderrTail(): string;
  /** SIGTERM, then SIGKILL if it is still there after 3 s. */
  stop(): Promise<void>;
}

/** How to start srv: `deno run main.ts`, or a compiled binary (`--srv-bin`). */
export interface SrvLauncher {
  readonly bin?: string;
}

const live = new Set<Deno.ChildProcess>();

/** Kills every child still running (on SIGINT, or after a failure). */
export function killAll(): void {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
  live.clear();
}

/** The soft and hard limits on open files of this process. */
export function fdLimits(): { soft: number; hard: number } | null {
  try {
    const text = Deno.readTextFileSync(`/proc/${Deno.pid}/limits`);
    const m = text.match(/^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m);
    if (!m) return null;
    const n = (s: string) => (s === "unlimited" ? Infinity : Number(s));
    return { soft: n(m[1]), hard: n(m[2]) };
  } catch {
    return null;
  }
}

/**
 * Runs `cmd` with at least `need` open files: through `sh -c 'ulimit -n'`
 * when this process's soft limit is lower (the hard limit caps it).
 */
export function withFdLimit(cmd: string, args: string[], need: number): [string, string[]] {
  const limits = fdLimits();
  if (limits === null || limits.soft >= need) return [cmd, args];
  const target = Math.min(need, limits.hard);
  return ["sh", ["-c", 'ulimit -n "$0" && exec "$@"', String(target), cmd, ...args]];
}

async function drainTail(
  stream: ReadableStream<Uint8Array>,
  sink: { text: string },
): Promise<void> {
  try {
    for await (const chunk of stream) {
      sink.text = (sink.text + decoder.decode(chunk, { stream: true })).slice(-STDERR_TAIL);
    }
  } catch {
    // The process is gone.
  }
}

async function stopChild(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already exited.
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }, 3000);
  await child.status;
  clearTimeout(timer);
  live.delete(child);
}

/** Spawns a process and waits (at most `timeoutMs`) for a stdout line matching `ready`. */
async function spawnReady(
  id: TargetId,
  cmd: string,
  args: string[],
  socket: string,
  ready: RegExp,
  timeoutMs: number,
): Promise<Running> {
  const t0 = performance.now();
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  live.add(child);
  const err = { text: "" };
  const errDone = drainTail(child.stderr, err);
  const out = { text: "" };
  const reader = child.stdout.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  let readyMs = NaN;
  try {
    while (true) {
      const next = await Promise.race([reader.read(), child.status.then(() => null), timedOut]);
      if (next === "timeout") throw new Error(`${id}: not ready within ${timeoutMs} ms`);
      if (next === null || next.done) {
        await errDone;
        throw new Error(`${id} exited before it was ready: ${err.text.trim().slice(-500)}`);
      }
      out.text += decoder.decode(next.value, { stream: true });
      const line = out.text.split("\n").find((l) => ready.test(l));
      if (line !== undefined) {
        readyMs = performance.now() - t0;
        break;
      }
      out.text = out.text.slice(-STDERR_TAIL);
    }
  } catch (e) {
    clearTimeout(timer);
    reader.releaseLock();
    await stopChild(child);
    throw e;
  }
  clearTimeout(timer);
  // Keep reading stdout so a chatty server never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch {
      // Gone.
    }
  })();
  return {
    id,
    pid: child.pid,
    socket,
    readyMs,
    stderrTail: () => err.text,
    stop: () => stopChild(child),
  };
}

/** Options of {@linkcode startTarget}. */
export interface StartOptions {
  /** A fresh directory for the socket (and srv's data dir). */
  readonly dir: string;
  readonly srv: SrvLauncher;
  /** Open files the server must be able to hold. */
  readonly fds?: number;
  readonly timeoutMs?: number;
  /** srv only: `--inspect=HOST:PORT` (bench/profile.ts). */
  readonly inspect?: string;
}

/** Starts one target in `dir` and waits for it to accept connections. */
export async function startTarget(id: TargetId, options: StartOptions): Promise<Running> {
  const { dir, srv } = options;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const fds = options.fds ?? 256;
  await Deno.mkdir(dir, { recursive: true });
  const socket = `${dir}/${id}.sock`;
  switch (id) {
    case "srv":
    case "srv_store": {
      const flags = ["serve", "--socket", socket];
      flags.push(...(id === "srv" ? ["--memory"] : ["--data-dir", `${dir}/data`]));
      const inspect = options.inspect ? [`--inspect=${options.inspect}`] : [];
      const [cmd, args] = srv.bin ? withFdLimit(srv.bin, flags, fds) : withFdLimit(
        Deno.execPath(),
        ["run", ...inspect, ...SRV_PERMISSIONS, MAIN, ...flags],
        fds,
      );
      return await spawnReady(id, cmd, args, socket, /^srv ready /, timeoutMs);
    }
    case "echo": {
      const args = [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-net",
        ECHO,
        "--socket",
        socket,
      ];
      return await spawnReady(id, Deno.execPath(), args, socket, /^echo ready /, timeoutMs);
    }
    case "floor":
    case "floor_store": {
      const args = ["run", "-A", FLOOR, "--socket", socket];
      if (id === "floor_store") args.push("--data-dir", `${dir}/data`);
      return await spawnReady(id, Deno.execPath(), args, socket, /^floor ready /, timeoutMs);
    }
    case "redis": {
      const args = [
        "--port",
        "0",
        "--unixsocket",
        socket,
        "--unixsocketperm",
        "700",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ];
      const [cmd, full] = withFdLimit("redis-server", args, fds);
      return await spawnReady(id, cmd, full, socket, /ready to accept connections/i, timeoutMs);
    }
  }
}

/** What a load process reported; `ok:false` with `error` (and `timeout`) when it failed. */
export interface LoadResult {
  ok: boolean;
  error?: string;
  timeout?: boolean;
  [key: string]: unknown;
}

/**
 * Runs one load process to completion. Its own watchdog fires at
 * `config.deadlineMs`; this one kills it 5 s later if it still has not
 * answered.
 */
export async function runLoad(config: LoadConfig, fds = 256): Promise<LoadResult> {
  const [cmd, args] = withFdLimit(
    Deno.execPath(),
    ["run", "-A", LOAD, JSON.stringify(config)],
    fds,
  );
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  live.add(child);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }, config.deadlineMs + 5000);
  const { stdout, stderr } = await child.output();
  clearTimeout(timer);
  live.delete(child);
  if (killed) {
    return { ok: false, timeout: true, error: `killed after ${config.deadlineMs + 5000} ms` };
  }
  const last = decoder.decode(stdout).trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(last) as LoadResult;
  } catch {
    const why = decoder.decode(stderr).trim().slice(-600) || "no output";
    return { ok: false, error: `load process failed: ${why}` };
  }
}

/** `redis-server --version` (e.g. "7.0.15"), or null when it is not on PATH. */
export async function redisVersion(): Promise<string | null> {
  try {
    const { success, stdout } = await new Deno.Command("redis-server", {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!success) return null;
    const text = decoder.decode(stdout);
    return text.match(/v=([0-9.]+)/)?.[1] ?? text.trim();
  } catch {
    return null;
  }
}
