#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env --allow-sys --allow-net
/**
 * The `srv` command line: `srv serve` runs the server; the other
 * subcommands are clients for scripts and shells. See README.md.
 *
 * @module
 */

import { resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import { defaultDataDir, readResolutionEnv, resolveEndpoint } from "./srv/transport/endpoint.ts";
import { EndpointError } from "./srv/transport/transport.ts";
import {
  DEFAULT_RETAIN_BYTES,
  DEFAULT_RETAIN_EVENTS,
  DurableEventLog,
} from "./srv/server/durable_event_log.ts";
import { STORE_SCHEMA_VERSION, StoreError } from "./srv/server/_store_schema.ts";
import { DataDirError, DEFAULT_LOCK_WAIT_MS, LockWaitAborted } from "./srv/server/data_dir.ts";
import type { State } from "./srv/core/state.ts";
import { ExitCode } from "./srv/cli/exit_code.ts";
import { DEFAULT_MAX_LINE_BYTES } from "./srv/core/line_splitter.ts";
import { DEFAULT_LIMITS, LIMIT_FLAGS, type Limits } from "./srv/core/limits.ts";
import { DEFAULT_OUTPUT_LIMITS } from "./srv/server/peer.ts";
import { DEFAULT_MAX_REPLY_BYTES } from "./srv/core/event_log.ts";
import {
  flushLogs,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  setupLogging,
  type SrvLogLevel,
} from "./srv/cli/log.ts";
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_REGISTER_TIMEOUT_MS,
  DRAIN_DEADLINE_MS,
  Server,
} from "./srv/server/server.ts";
import {
  type OpenEndpoint,
  openEndpoint,
  type TransportChoice,
  TRANSPORTS,
} from "./srv/server/open_endpoint.ts";
import { SRV_VERSION } from "./srv/version.ts";
import { CLIENT_COMMANDS, CLIENT_USAGE, runClientCommand } from "./srv/cli/client_commands.ts";
import { getLogger, type Logger } from "./deps.ts";
import inspector from "node:inspector";

const encoder = new TextEncoder();

function out(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
}

function err(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text.endsWith("\n") ? text : text + "\n"));
}

/** One flag of `srv serve`: parsed by node:util, documented by --help. */
interface FlagSpec {
  readonly type: "string" | "boolean";
  readonly value?: string;
  readonly help: string;
}

/** What each size cap bounds, for --help (the flag names are LIMIT_FLAGS). */
const LIMIT_HELP: Record<keyof Limits, string> = {
  maxNameBytes: "longest workspace or tab name, in UTF-8 bytes",
  maxMetaBytes:
    "largest meta of one workspace, tab or block after its patch, and largest meta_patch, in compact JSON bytes",
  maxWorkspaces: "most workspaces",
  maxTabs: "most tabs, all workspaces together",
  maxBlocks: "most blocks, all tabs together",
  maxStateBytes: "all names and metas together, in bytes",
};

/** One flag per size cap; a command that would cross one is refused with an error naming it. */
function limitFlags(): Record<string, FlagSpec> {
  return Object.fromEntries(
    (Object.keys(LIMIT_FLAGS) as (keyof Limits)[]).map((key) => [
      LIMIT_FLAGS[key].slice(2),
      {
        type: "string",
        value: "N",
        help: `${LIMIT_HELP[key]}; more is refused (default ${DEFAULT_LIMITS[key]})`,
      },
    ]),
  );
}

const SERVE_FLAGS: Record<string, FlagSpec> = {
  socket: {
    type: "string",
    value: "PATH",
    help:
      "endpoint to listen on (default: $SRV_SOCKET, $AGENTMUX_SRV_PIPE_PATH, then $XDG_RUNTIME_DIR/srv/srv.sock or <tmpdir>/srv-<uid>/srv.sock; on Windows \\\\.\\pipe\\srv-<hash16 of the data dir>\\srv-command)",
  },
  transport: {
    type: "string",
    value: TRANSPORTS.join("|"),
    help:
      "auto: named pipes (node:net) on Windows, Unix sockets (Deno.listen) elsewhere; node: node:net on a Unix socket too (default auto)",
  },
  memory: { type: "boolean", help: "keep events in memory only (no data store)" },
  "data-dir": {
    type: "string",
    value: "DIR",
    help:
      "where the store lives, and on Windows what the default pipe name derives from (default: $XDG_STATE_HOME/srv or ~/.local/state/srv; macOS ~/Library/Application Support/srv; Windows %LOCALAPPDATA%\\srv)",
  },
  "retain-events": {
    type: "string",
    value: "N",
    help: `events kept on disk for get_events (default ${DEFAULT_RETAIN_EVENTS})`,
  },
  "retain-bytes": {
    type: "string",
    value: "N",
    help:
      `bytes of events kept on disk for get_events, whichever of this and --retain-events is reached first (default ${DEFAULT_RETAIN_BYTES})`,
  },
  "lock-wait": {
    type: "string",
    value: "DURATION",
    help:
      `how long to wait for another srv (one shutting down) to let go of the data dir before exiting 5 (default ${
        DEFAULT_LOCK_WAIT_MS / 1000
      }; 0: do not wait)`,
  },
  sync: {
    type: "string",
    value: "normal|full",
    help:
      "normal: a commit survives a crash of srv; full: also power loss (fsync each commit). Default normal",
  },
  "max-line-bytes": {
    type: "string",
    value: "N",
    help:
      `longest accepted line in bytes; longer closes the connection (default ${DEFAULT_MAX_LINE_BYTES})`,
  },
  "max-connections": {
    type: "string",
    value: "N",
    help: `open connections before new ones are refused (default ${DEFAULT_MAX_CONNECTIONS})`,
  },
  "max-queue-bytes": {
    type: "string",
    value: "N",
    help:
      `hard limit: unsent bytes (replies included) past which a connection is evicted at once (default ${DEFAULT_OUTPUT_LIMITS.hardBytes})`,
  },
  "soft-queue-bytes": {
    type: "string",
    value: "N",
    help:
      `soft limit: past this many unsent bytes srv stops reading the connection's commands, and evicts it if it stays past them for --soft-queue-time (default ${DEFAULT_OUTPUT_LIMITS.softBytes})`,
  },
  "soft-queue-time": {
    type: "string",
    value: "DURATION",
    help: `how long a connection may stay past --soft-queue-bytes, e.g. 10s, 500ms (default ${
      DEFAULT_OUTPUT_LIMITS.softMs / 1000
    }s)`,
  },
  "max-reply-bytes": {
    type: "string",
    value: "N",
    help:
      `most bytes of one get_events reply, and at most half of --max-queue-bytes; past it the newest events that fit, with truncated:true (default ${DEFAULT_MAX_REPLY_BYTES})`,
  },
  "register-timeout": {
    type: "string",
    value: "DURATION",
    help: `a connection that has not registered by then is closed, e.g. 10s, 500ms (default ${
      DEFAULT_REGISTER_TIMEOUT_MS / 1000
    }s)`,
  },
  ...limitFlags(),
  "log-level": {
    type: "string",
    value: LOG_LEVELS.join("|"),
    help: "lowest level logged to stderr (default info)",
  },
  "log-format": {
    type: "string",
    value: LOG_FORMATS.join("|"),
    help: "stderr log format (default pretty)",
  },
  help: { type: "boolean", help: "show this help" },
};

function usage(): string {
  const lines = Object.entries(SERVE_FLAGS).map(([name, spec]) => {
    const left = `  --${name}${spec.value ? ` ${spec.value}` : ""}`;
    return `${left.padEnd(34)} ${spec.help}`;
  });
  return [
    `srv ${SRV_VERSION}: a local IPC state server (newline-delimited JSON over a Unix socket or named pipe)`,
    "",
    "Usage:",
    "  srv serve [flags]      run the server; prints one readiness line on stdout:",
    "                         srv ready socket=<path> pid=<pid> version=<version> instance=<id>",
    "  srv --version          print the version",
    "  srv --help             show this help",
    "",
    "Flags of serve:",
    ...lines,
    "",
    "Client commands (each registers as a tool, does one thing, says goodbye):",
    CLIENT_USAGE,
    "",
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 endpoint in use, 4 endpoint unsafe, 5 store,",
    "6 no server at the endpoint (or it went away), 7 the server refused the command,",
    "8 srv events: history truncated, 130 second signal.",
  ].join("\n");
}

class UsageError extends Error {}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) {
    throw new UsageError(`--${name} must be a positive integer, got "${raw}"`);
  }
  return Number(raw);
}

/**
 * A duration in ms from `10s`, `500ms`, or a bare number of seconds, within
 * [minMs, 1 h]: every time flag reads the same way.
 */
function duration(name: string, raw: string | undefined, fallbackMs: number, minMs = 1): number {
  if (raw === undefined) return fallbackMs;
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s)?$/.exec(raw);
  const ms = match === null ? NaN : Math.round(Number(match[1]) * (match[2] === "ms" ? 1 : 1000));
  if (!(ms >= minMs && ms <= 3_600_000)) {
    throw new UsageError(
      `--${name} must be a duration from ${minMs} ms to 1 h such as 10s or 500ms, got "${raw}"`,
    );
  }
  return ms;
}

function oneOf<T extends string>(
  name: string,
  raw: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  }
  return raw as T;
}

/** The parsed flags of `srv serve`. */
export interface ServeConfig {
  socket?: string;
  transport: TransportChoice;
  memory: boolean;
  dataDir?: string;
  retainEvents: number;
  retainBytes: number;
  /** `--lock-wait`, in milliseconds. */
  lockWaitMs: number;
  sync: "normal" | "full";
  maxLineBytes: number;
  maxConnections: number;
  maxQueueBytes: number;
  /** The size caps of the tree (--max-name-bytes …). */
  limits: Limits;
  softQueueBytes: number;
  softQueueMs: number;
  maxReplyBytes: number;
  registerTimeoutMs: number;
  logLevel: SrvLogLevel;
  logFormat: LogFormat;
  help: boolean;
}

/**
 * Parses `srv serve` flags; throws a usage error with a precise message.
 *
 * @example
 * ```ts
 * import { parseServeArgs } from "./main.ts";
 * parseServeArgs(["--socket", "/tmp/s.sock", "--memory"]).memory; // true
 * ```
 */
export function parseServeArgs(args: string[]): ServeConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options: SERVE_FLAGS, strict: true, allowPositionals: false }));
  } catch (e) {
    if (args.some((a) => a.startsWith("--max-queue-events"))) {
      throw new UsageError(
        "--max-queue-events was removed: eviction is judged in bytes and time (--max-queue-bytes, --soft-queue-bytes, --soft-queue-time)",
      );
    }
    throw new UsageError((e as Error).message);
  }
  const str = (k: string) => values[k] as string | undefined;
  const maxQueueBytes = positiveInt(
    "max-queue-bytes",
    str("max-queue-bytes"),
    DEFAULT_OUTPUT_LIMITS.hardBytes,
  );
  // An explicit hard limit below the default soft one brings the soft one down with it.
  const softQueueBytes = positiveInt(
    "soft-queue-bytes",
    str("soft-queue-bytes"),
    Math.min(DEFAULT_OUTPUT_LIMITS.softBytes, maxQueueBytes),
  );
  if (softQueueBytes > maxQueueBytes) {
    throw new UsageError(
      `--soft-queue-bytes (${softQueueBytes}) must not be above --max-queue-bytes (${maxQueueBytes})`,
    );
  }
  return {
    socket: str("socket"),
    transport: oneOf("transport", str("transport"), TRANSPORTS, "auto"),
    memory: values.memory === true,
    dataDir: str("data-dir"),
    retainEvents: positiveInt("retain-events", str("retain-events"), DEFAULT_RETAIN_EVENTS),
    retainBytes: positiveInt("retain-bytes", str("retain-bytes"), DEFAULT_RETAIN_BYTES),
    lockWaitMs: duration("lock-wait", str("lock-wait"), DEFAULT_LOCK_WAIT_MS, 0),
    sync: oneOf("sync", str("sync"), ["normal", "full"] as const, "normal"),
    maxLineBytes: positiveInt("max-line-bytes", str("max-line-bytes"), DEFAULT_MAX_LINE_BYTES),
    maxConnections: positiveInt("max-connections", str("max-connections"), DEFAULT_MAX_CONNECTIONS),
    maxQueueBytes,
    softQueueBytes,
    softQueueMs: duration("soft-queue-time", str("soft-queue-time"), DEFAULT_OUTPUT_LIMITS.softMs),
    maxReplyBytes: positiveInt(
      "max-reply-bytes",
      str("max-reply-bytes"),
      DEFAULT_MAX_REPLY_BYTES,
    ),
    registerTimeoutMs: duration(
      "register-timeout",
      str("register-timeout"),
      DEFAULT_REGISTER_TIMEOUT_MS,
    ),
    limits: Object.fromEntries(
      (Object.keys(LIMIT_FLAGS) as (keyof Limits)[]).map((key) => {
        const flag = LIMIT_FLAGS[key].slice(2);
        return [key, positiveInt(flag, str(flag), DEFAULT_LIMITS[key])];
      }),
    ) as unknown as Limits,
    logLevel: oneOf("log-level", str("log-level"), LOG_LEVELS, "info"),
    logFormat: oneOf("log-format", str("log-format"), LOG_FORMATS, "pretty"),
    help: values.help === true,
  };
}

function currentUid(): number | null {
  try {
    return Deno.uid();
  } catch {
    return null;
  }
}

/**
 * A repeat within this many ms is the same keypress delivered twice (the
 * terminal signals the whole process group, and `deno task` forwards it
 * again), not a second request.
 */
const SIGNAL_ECHO_MS = 300;

/**
 * Signals that stop srv gracefully. SIGHUP is what a closing terminal sends
 * (and what `nohup`-less launchers pass on): its default action kills the
 * process on the spot, leaving the socket file behind and skipping the
 * drain, so it is handled like SIGTERM. Windows has only these two.
 */
const STOP_SIGNALS: readonly Deno.Signal[] = Deno.build.os === "windows"
  ? ["SIGINT", "SIGBREAK"]
  : ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Signals srv has no use for but must survive: their default action, too,
 * kills the process without a shutdown, so a stray `kill -USR1` (a log
 * rotation script aimed at another daemon, a typo in a pkill) would take
 * srv down with its socket left behind. They are logged and ignored.
 */
const IGNORED_SIGNALS: readonly Deno.Signal[] = Deno.build.os === "windows"
  ? []
  : ["SIGUSR1", "SIGUSR2"];

/**
 * Resolves on the first stop signal. A second one (after the echo window)
 * runs `onForce` and exits at once with code 130. Ignored signals are
 * logged.
 */
function onceSignalled(onForce: () => void, log: Logger): Promise<Deno.Signal> {
  // Someone who started srv under --inspect wants the debugger; keep it then.
  const debuggerWanted = runtimeInspectorUrl() !== undefined;
  for (const signal of IGNORED_SIGNALS) {
    Deno.addSignalListener(signal, () => {
      log.warn("{signal} received; srv does not use it, ignoring it", { signal });
      if (signal === "SIGUSR1" && !debuggerWanted) closeRuntimeInspector(log);
    });
  }
  return new Promise((resolve) => {
    let firstAt: number | null = null;
    for (const signal of STOP_SIGNALS) {
      Deno.addSignalListener(signal, () => {
        const now = performance.now();
        if (firstAt === null) {
          firstAt = now;
          resolve(signal);
          return;
        }
        if (now - firstAt < SIGNAL_ECHO_MS) return;
        err(`srv: second ${signal} during shutdown; exiting now`);
        onForce();
        Deno.exit(ExitCode.interrupted);
      });
    }
  });
}

/** The runtime's debugger URL, or undefined (also without --allow-sys). */
function runtimeInspectorUrl(): string | undefined {
  try {
    return inspector.url();
  } catch {
    return undefined;
  }
}

/**
 * Deno (since 2.9.2, denoland/deno#35738) answers SIGUSR1 as Node does: it
 * opens its debugger on 127.0.0.1:9229, where any local user, not only the
 * one who may signal srv, could connect and run code as srv. It comes up a
 * moment after the signal; close it as soon as it does.
 */
async function closeRuntimeInspector(log: Logger): Promise<void> {
  const deadline = performance.now() + 2000;
  while (performance.now() < deadline) {
    const url = runtimeInspectorUrl();
    if (url !== undefined) {
      try {
        inspector.close();
        log.warn("closed the debugger the Deno runtime opened on SIGUSR1 ({url})", { url });
      } catch (e) {
        // Nothing thrown here may reach the event loop: that would stop srv.
        log.error(
          "could not close the debugger the Deno runtime opened on SIGUSR1 ({url}): {error}",
          {
            url,
            error: (e as Error).message,
          },
        );
      }
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function serve(args: string[]): Promise<number> {
  let config: ServeConfig;
  try {
    config = parseServeArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`srv serve: ${e.message}\n\n${usage()}`);
    return ExitCode.usage;
  }
  if (config.help) {
    out(usage());
    return ExitCode.ok;
  }
  await setupLogging(config.logLevel, config.logFormat);
  const log = getLogger(["srv", "main"]);
  const os = Deno.build.os;
  const env = readResolutionEnv();
  const dataDir = config.dataDir !== undefined
    ? resolvePath(config.dataDir)
    : defaultDataDir(env, os);
  const endpoint = resolveEndpoint({
    flag: config.socket,
    env,
    os,
    uid: currentUid(),
    dataDir: dataDir ?? "",
  });
  if (os === "windows" && endpoint.source === "default" && dataDir === null) {
    err(
      "srv serve: no data directory to derive the pipe name from (LOCALAPPDATA and USERPROFILE are unset); pass --data-dir or --socket",
    );
    return ExitCode.usage;
  }

  let opened: OpenEndpoint;
  try {
    opened = await openEndpoint({
      path: endpoint.path,
      transport: config.transport,
      os,
      uid: currentUid(),
    });
  } catch (e) {
    await flushLogs();
    if (e instanceof EndpointError) {
      err(`srv: ${e.message}`);
      return e.code === "in_use" ? ExitCode.endpointInUse : ExitCode.endpointUnsafe;
    }
    err(`srv: cannot use ${endpoint.path}: ${(e as Error).message}`);
    return ExitCode.endpointUnsafe;
  }

  // Stop signals are handled from here on, before the store is opened: a
  // SIGHUP or SIGTERM while srv waits for the data dir's lock (up to
  // --lock-wait) must not kill it with its socket file left behind.
  const stopWaiting = new AbortController();
  const signalled = onceSignalled(() => opened.release(), log);
  signalled.then((signal) => stopWaiting.abort(signal));
  let store: DurableEventLog | null = null;
  let recovered: State | undefined;
  if (!config.memory) {
    const started = performance.now();
    try {
      if (dataDir === null) {
        throw new StoreError(
          "",
          "no data directory (HOME, or LOCALAPPDATA on Windows, is unset); pass --data-dir or --memory",
        );
      }
      const maxPagesText = Deno.env.get("SRV_STORE_MAX_PAGES");
      if (maxPagesText && !/^[1-9][0-9]*$/.test(maxPagesText)) {
        err(`srv serve: SRV_STORE_MAX_PAGES must be a positive integer, got "${maxPagesText}"`);
        opened.release();
        return ExitCode.usage;
      }
      const maxPages = maxPagesText ? Number(maxPagesText) : undefined;
      const found = await DurableEventLog.open({
        dataDir,
        retainEvents: config.retainEvents,
        retainBytes: config.retainBytes,
        ringBytes: config.maxReplyBytes,
        sync: config.sync,
        maxPages,
        lockWaitMs: config.lockWaitMs,
        signal: stopWaiting.signal,
        onLockWait: (lockPath, waitMs) =>
          log.info(
            "the data dir is locked by another srv ({lock}); waiting up to {seconds} s for it to shut down",
            { lock: lockPath, seconds: waitMs / 1000 },
          ),
      });
      store = found.log;
      recovered = found.recovery.state;
      log.info(
        "store {path}: {workspaces} workspaces, {tabs} tabs, {blocks} blocks, {stored} events on disk, tables at v{tables}{migrated}, replayed {replayed}, next version v{next} ({ms} ms)",
        {
          path: store.path,
          workspaces: recovered.workspaces.size,
          tabs: recovered.tabs.size,
          blocks: recovered.blocks.size,
          stored: found.recovery.stored,
          tables: found.recovery.tablesVersion,
          migrated: found.recovery.migratedFrom > 0 &&
              found.recovery.migratedFrom < STORE_SCHEMA_VERSION
            ? ` (migrated from schema ${found.recovery.migratedFrom})`
            : "",
          replayed: found.recovery.replayed,
          next: recovered.eventVersion + 1,
          ms: Math.round(performance.now() - started),
        },
      );
    } catch (e) {
      opened.release();
      if (e instanceof StoreError && e.cause instanceof LockWaitAborted) {
        // Asked to stop before it served anything: a clean exit.
        log.info("{signal} received while waiting for the data dir's lock; exiting", {
          signal: stopWaiting.signal.reason,
        });
        await flushLogs();
        return ExitCode.ok;
      }
      await flushLogs();
      err(`srv: ${(e as Error).message}`);
      // Another user could read, write or swap the data dir: refused like
      // an unsafe socket directory.
      if (e instanceof StoreError && e.cause instanceof DataDirError && e.cause.unsafe) {
        return ExitCode.endpointUnsafe;
      }
      return e instanceof StoreError ? ExitCode.store : ExitCode.failure;
    }
  }

  if (opened.replacedStale) {
    log.info("removed a stale socket left at {path}", { path: endpoint.path });
  }

  let fatal: unknown = null;
  const failed = Promise.withResolvers<void>();
  const server = new Server({
    identity: { pid: Deno.pid, version: SRV_VERSION, instanceId: crypto.randomUUID() },
    history: store ?? undefined,
    initialState: recovered,
    storePath: store?.path ?? null,
    maxLineBytes: config.maxLineBytes,
    maxConnections: config.maxConnections,
    limits: config.limits,
    outputLimits: {
      hardBytes: config.maxQueueBytes,
      softBytes: config.softQueueBytes,
      softMs: config.softQueueMs,
    },
    maxReplyBytes: config.maxReplyBytes,
    registerTimeoutMs: config.registerTimeoutMs,
    onFatal: (error) => {
      fatal = error;
      failed.resolve();
    },
  });
  let acceptFailure: unknown = null;
  const serving = server.serve(opened.listener).catch((error) => {
    acceptFailure = error;
  });
  log.info("listening on {path} ({source}, {transport}), {mode}", {
    path: endpoint.path,
    source: endpoint.source,
    transport: opened.transport,
    mode: store === null ? "memory only" : `store ${store.path}`,
  });
  // The signal handlers went in before the store was opened, so before the
  // readiness line too: a launcher may signal as soon as it reads that line.
  out(
    `srv ready socket=${endpoint.path} pid=${Deno.pid} version=${SRV_VERSION} instance=${server.identity.instanceId}`,
  );
  const signal = await Promise.race([
    signalled,
    failed.promise.then(() => null),
    serving.then(() => null),
  ]);
  if (signal !== null) log.info("{signal} received; shutting down", { signal });
  await server.shutdown(DRAIN_DEADLINE_MS);
  await serving;
  opened.release();
  if (fatal !== null) {
    // The store failed mid-write: what it holds is all that was broadcast.
    log.error("stopped: {error}", { error: (fatal as Error).message ?? String(fatal) });
    try {
      store?.close();
    } catch {
      // Already failing; the first error is the one to report.
    }
    await flushLogs();
    err(`srv: stopped because the store failed: ${(fatal as Error).message ?? fatal}`);
    return ExitCode.store;
  }
  try {
    store?.close(server.state);
  } catch (e) {
    await flushLogs();
    err(`srv: ${(e as Error).message}`);
    return ExitCode.store;
  }
  await flushLogs();
  if (acceptFailure !== null) {
    err(`srv: stopped: cannot accept connections: ${(acceptFailure as Error).message}`);
    return ExitCode.failure;
  }
  return ExitCode.ok;
}

/**
 * Runs the `srv` command line and returns the process exit code.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(["serve", "--memory"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case "serve":
      return await serve(rest);
    case "--version":
    case "-V":
    case "version":
      out(`srv ${SRV_VERSION}`);
      return ExitCode.ok;
    case "--help":
    case "-h":
    case "help":
      out(usage());
      return ExitCode.ok;
    case undefined:
      err(usage());
      return ExitCode.usage;
    default:
      if (CLIENT_COMMANDS.has(command)) return await runClientCommand(args);
      err(`srv: unknown command "${command}"\n\n${usage()}`);
      return ExitCode.usage;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
