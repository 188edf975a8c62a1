#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env --allow-sys --allow-net
/**
 * The `srv` command line: `srv serve` runs the server; the other
 * subcommands are clients for scripts and shells. See README.md.
 *
 * @module
 */

import { resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import {
  defaultDataDir,
  EndpointError,
  readResolutionEnv,
  resolveEndpoint,
} from "./srv/endpoint.ts";
import {
  DEFAULT_RETAIN_EVENTS,
  DurableEventLog,
  STORE_SCHEMA_VERSION,
  StoreError,
} from "./srv/store.ts";
import type { State } from "./srv/state.ts";
import { ExitCode } from "./srv/exit_code.ts";
import { DEFAULT_MAX_LINE_BYTES } from "./srv/framing.ts";
import { DEFAULT_QUEUE_LIMITS } from "./srv/hub.ts";
import {
  flushLogs,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  setupLogging,
  type SrvLogLevel,
} from "./srv/log.ts";
import { DEFAULT_MAX_CONNECTIONS, DRAIN_DEADLINE_MS, Server } from "./srv/server.ts";
import {
  type OpenEndpoint,
  openEndpoint,
  type TransportChoice,
  TRANSPORTS,
} from "./srv/transport/open_endpoint.ts";
import { SRV_VERSION } from "./srv/version.ts";
import { CLIENT_COMMANDS, CLIENT_USAGE, runClientCommand } from "./srv/cli.ts";
import { getLogger } from "./deps.ts";

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
  "max-queue-events": {
    type: "string",
    value: "N",
    help:
      `unsent events a connection may fall behind before it is evicted (default ${DEFAULT_QUEUE_LIMITS.maxEvents})`,
  },
  "max-queue-bytes": {
    type: "string",
    value: "N",
    help:
      `unsent bytes a connection may fall behind before it is evicted (default ${DEFAULT_QUEUE_LIMITS.maxBytes})`,
  },
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
  sync: "normal" | "full";
  maxLineBytes: number;
  maxConnections: number;
  maxQueueEvents: number;
  maxQueueBytes: number;
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
    throw new UsageError((e as Error).message);
  }
  const str = (k: string) => values[k] as string | undefined;
  return {
    socket: str("socket"),
    transport: oneOf("transport", str("transport"), TRANSPORTS, "auto"),
    memory: values.memory === true,
    dataDir: str("data-dir"),
    retainEvents: positiveInt("retain-events", str("retain-events"), DEFAULT_RETAIN_EVENTS),
    sync: oneOf("sync", str("sync"), ["normal", "full"] as const, "normal"),
    maxLineBytes: positiveInt("max-line-bytes", str("max-line-bytes"), DEFAULT_MAX_LINE_BYTES),
    maxConnections: positiveInt("max-connections", str("max-connections"), DEFAULT_MAX_CONNECTIONS),
    maxQueueEvents: positiveInt(
      "max-queue-events",
      str("max-queue-events"),
      DEFAULT_QUEUE_LIMITS.maxEvents,
    ),
    maxQueueBytes: positiveInt(
      "max-queue-bytes",
      str("max-queue-bytes"),
      DEFAULT_QUEUE_LIMITS.maxBytes,
    ),
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
 * Resolves on the first SIGINT/SIGTERM. A second one (after the echo
 * window) runs `onForce` and exits at once with code 130.
 */
function onceSignalled(onForce: () => void): Promise<Deno.Signal> {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  return new Promise((resolve) => {
    let firstAt: number | null = null;
    for (const signal of signals) {
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
        sync: config.sync,
        maxPages,
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
      await flushLogs();
      err(`srv: ${(e as Error).message}`);
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
    queueLimits: { maxEvents: config.maxQueueEvents, maxBytes: config.maxQueueBytes },
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
  // Handlers go in before the readiness line: a launcher may signal as soon
  // as it reads that line, and an unhandled SIGINT would kill srv outright.
  const signalled = onceSignalled(() => opened.release());
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
