/**
 * `srv serve`: the server's life from the endpoint claim and the store's
 * open to the drain on a stop signal, with the signals it stops on and the
 * ones it survives.
 *
 * @module
 */

import inspector from "node:inspector";
import { resolve as resolvePath } from "node:path";
import { getLogger, type Logger } from "../../deps.ts";
import type { State } from "../core/state.ts";
import { STORE_SCHEMA_VERSION, StoreError } from "../server/_store_schema.ts";
import { DataDirError, LockWaitAborted } from "../server/data_dir.ts";
import { DurableEventLog } from "../server/durable_event_log.ts";
import { type OpenEndpoint, openEndpoint } from "../server/open_endpoint.ts";
import { DRAIN_DEADLINE_MS } from "../server/server_options.ts";
import { Server } from "../server/server.ts";
import { defaultDataDir, readResolutionEnv, resolveEndpoint } from "../transport/endpoint.ts";
import { EndpointError } from "../transport/transport.ts";
import { SRV_VERSION } from "../version.ts";
import { err, out, UsageError } from "./_terminal.ts";
import { ExitCode } from "./exit_code.ts";
import { flushLogs, setupLogging } from "./log.ts";
import { parseServeArgs, type ServeConfig, serverBounds } from "./serve_args.ts";

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

/** How a serve run ended: its exit code, and the one line to print on stderr. */
interface Outcome {
  readonly code: number;
  readonly message?: string;
}

/** Runs `srv serve ARGS` to its end and returns the process exit code. */
export async function serve(args: string[]): Promise<number> {
  let config: ServeConfig;
  try {
    config = parseServeArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`srv serve: ${e.message}\nsee: srv help serve`);
    return ExitCode.usage;
  }
  await setupLogging(config.logLevel, config.logFormat);
  const outcome = await run(config, getLogger(["srv", "main"]));
  // Every way out ends here, after run() released what it held: the logs
  // first, then the one line that says why, so it is the last thing shown.
  await flushLogs();
  if (outcome.message !== undefined) err(outcome.message);
  return outcome.code;
}

/**
 * The server's life: claim the endpoint, open the store, serve until a
 * signal or a failure, shut down. What it holds (the endpoint's socket and
 * lock, the store and its lock) is released by one disposal stack on every
 * path out, early or not; the normal path releases them itself first, in
 * the order a restart needs (socket, then store), and the stack's calls are
 * then no-ops.
 */
async function run(config: ServeConfig, log: Logger): Promise<Outcome> {
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
    return {
      code: ExitCode.usage,
      message:
        "srv serve: no data directory to derive the pipe name from (LOCALAPPDATA and USERPROFILE are unset); pass --data-dir or --socket",
    };
  }

  await using held = new AsyncDisposableStack();
  let opened: OpenEndpoint;
  try {
    opened = await openEndpoint({
      path: endpoint.path,
      transport: config.transport,
      os,
      uid: currentUid(),
    });
  } catch (e) {
    if (e instanceof EndpointError) {
      return {
        code: e.code === "in_use" ? ExitCode.endpointInUse : ExitCode.endpointUnsafe,
        message: `srv: ${e.message}`,
      };
    }
    return {
      code: ExitCode.endpointUnsafe,
      message: `srv: cannot use ${endpoint.path}: ${(e as Error).message}`,
    };
  }
  // Once: the normal shutdown, a second signal and the stack may all ask.
  let endpointReleased = false;
  const releaseEndpoint = () => {
    if (endpointReleased) return;
    endpointReleased = true;
    opened.release();
  };
  held.defer(releaseEndpoint);

  // Stop signals are handled from here on, before the store is opened: a
  // SIGHUP or SIGTERM while srv waits for the data dir's lock (up to
  // --lock-wait) must not kill it with its socket file left behind.
  const stopWaiting = new AbortController();
  const signalled = onceSignalled(releaseEndpoint, log);
  signalled.then((signal) => stopWaiting.abort(signal));
  let store: DurableEventLog | null = null;
  let recovered: State | undefined;
  if (!config.memory) {
    const found = await openStore(config, dataDir, stopWaiting.signal, log);
    if ("code" in found) return found;
    store = found.log;
    recovered = found.recovery.state;
    const toClose = store;
    // Closing twice is safe: the normal path closes with the final state first.
    held.defer(() => {
      try {
        toClose.close();
      } catch {
        // Already failing; the first error is the one reported.
      }
    });
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
    ...serverBounds(config),
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
  // The socket first, so a new srv can bind it and then wait for the store's lock.
  releaseEndpoint();
  if (fatal !== null) {
    // The store failed mid-write: what it holds is all that was broadcast.
    const message = (fatal as Error).message ?? String(fatal);
    log.error("stopped: {error}", { error: message });
    return { code: ExitCode.store, message: `srv: stopped because the store failed: ${message}` };
  }
  try {
    store?.close(server.state);
  } catch (e) {
    return { code: ExitCode.store, message: `srv: ${(e as Error).message}` };
  }
  if (acceptFailure !== null) {
    return {
      code: ExitCode.failure,
      message: `srv: stopped: cannot accept connections: ${(acceptFailure as Error).message}`,
    };
  }
  return { code: ExitCode.ok };
}

/**
 * Opens the store in the data dir (waiting for its lock up to --lock-wait,
 * given up when `signal` aborts), or says how serving ends instead.
 */
async function openStore(
  config: ServeConfig,
  dataDir: string | null,
  signal: AbortSignal,
  log: Logger,
): Promise<Awaited<ReturnType<typeof DurableEventLog.open>> | Outcome> {
  const started = performance.now();
  const maxPagesText = Deno.env.get("SRV_STORE_MAX_PAGES");
  if (maxPagesText && !/^[1-9][0-9]*$/.test(maxPagesText)) {
    return {
      code: ExitCode.usage,
      message: `srv serve: SRV_STORE_MAX_PAGES must be a positive integer, got "${maxPagesText}"`,
    };
  }
  try {
    if (dataDir === null) {
      throw new StoreError(
        "",
        "no data directory (HOME, or LOCALAPPDATA on Windows, is unset); pass --data-dir or --memory",
      );
    }
    const found = await DurableEventLog.open({
      dataDir,
      retainEvents: config.retainEvents,
      retainBytes: config.retainBytes,
      ringBytes: config.maxReplyBytes,
      sync: config.sync,
      maxPages: maxPagesText ? Number(maxPagesText) : undefined,
      lockWaitMs: config.lockWaitMs,
      signal,
      onLockWait: (lockPath, waitMs) =>
        log.info(
          "the data dir is locked by another srv ({lock}); waiting up to {seconds} s for it to shut down",
          { lock: lockPath, seconds: waitMs / 1000 },
        ),
    });
    const { recovery } = found;
    const migrated = recovery.migratedFrom > 0 && recovery.migratedFrom < STORE_SCHEMA_VERSION;
    // The logger quotes string values, so an empty `migrated` would print
    // `""`: the migration gets its own wording instead of an empty field.
    log.info(
      `store {path}: {workspaces} workspaces, {tabs} tabs, {blocks} blocks, {stored} events on disk, tables at v{tables}${
        migrated ? " (migrated from schema {migratedFrom})" : ""
      }, replayed {replayed}, next version v{next} ({ms} ms)`,
      {
        path: found.log.path,
        workspaces: recovery.state.workspaces.size,
        tabs: recovery.state.tabs.size,
        blocks: recovery.state.blocks.size,
        stored: recovery.stored,
        tables: recovery.tablesVersion,
        migratedFrom: recovery.migratedFrom,
        replayed: recovery.replayed,
        next: recovery.state.eventVersion + 1,
        ms: Math.round(performance.now() - started),
      },
    );
    return found;
  } catch (e) {
    if (e instanceof StoreError && e.cause instanceof LockWaitAborted) {
      // Asked to stop before it served anything: a clean exit.
      log.info("{signal} received while waiting for the data dir's lock; exiting", {
        signal: signal.reason,
      });
      return { code: ExitCode.ok };
    }
    // Another user could read, write or swap the data dir: refused like an
    // unsafe socket directory.
    const unsafe = e instanceof StoreError && e.cause instanceof DataDirError && e.cause.unsafe;
    return {
      code: unsafe
        ? ExitCode.endpointUnsafe
        : e instanceof StoreError
        ? ExitCode.store
        : ExitCode.failure,
      message: `srv: ${(e as Error).message}`,
    };
  }
}
