/**
 * The flags of `srv serve`: parsed by node:util, documented by `--help`,
 * checked into a {@linkcode ServeConfig}.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DEFAULT_MAX_REPLY_BYTES } from "../core/event_log.ts";
import { DEFAULT_LIMITS, LIMIT_FLAGS, type Limits } from "../core/limits.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../core/line_splitter.ts";
import { DEFAULT_LOCK_WAIT_MS } from "../server/data_dir.ts";
import { DEFAULT_RETAIN_BYTES, DEFAULT_RETAIN_EVENTS } from "../server/durable_event_log.ts";
import { type TransportChoice, TRANSPORTS } from "../server/open_endpoint.ts";
import { DEFAULT_OUTPUT_LIMITS } from "../server/peer.ts";
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_REGISTER_TIMEOUT_MS,
  type ServerOptions,
} from "../server/server_options.ts";
import { UsageError } from "./_terminal.ts";
import { type FlagSpec, parseOptions, reworded } from "./_verb.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type SrvLogLevel } from "./log.ts";

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

/** The flags of `srv serve`, parsed by node:util and shown by `srv help serve`. */
export const SERVE_FLAGS: Record<string, FlagSpec> = {
  socket: {
    type: "string",
    short: "s",
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
      }s; 0: do not wait)`,
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
  help: { type: "boolean", short: "h", help: "show this help" },
};

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
export function duration(
  name: string,
  raw: string | undefined,
  fallbackMs: number,
  minMs = 1,
): number {
  if (raw === undefined) return fallbackMs;
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s)?$/.exec(raw);
  const exact = match === null ? NaN : Number(match[1]) * (match[2] === "ms" ? 1 : 1000);
  const ms = Math.round(exact);
  // 0 may mean "none" (--timeout 0, --lock-wait 0); 0.1ms must not round to it.
  if (!(ms >= minMs && ms <= 3_600_000) || (exact > 0 && ms === 0)) {
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
 * import { parseServeArgs } from "./serve_args.ts";
 * parseServeArgs(["--socket", "/tmp/s.sock", "--memory"]).memory; // true
 * ```
 */
export function parseServeArgs(args: string[]): ServeConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    // No flag is declared `multiple`, so every value is one string or boolean.
    values = parseArgs({
      // `deno task start -- --memory` hands serve a `--` first; serve takes
      // no operands, so a leading `--` can only be that and is dropped.
      args: args[0] === "--" ? args.slice(1) : args,
      options: parseOptions(SERVE_FLAGS),
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    if (args.some((a) => a.startsWith("--max-queue-events"))) {
      throw new UsageError(
        "--max-queue-events was removed: eviction is judged in bytes and time (--max-queue-bytes, --soft-queue-bytes, --soft-queue-time)",
      );
    }
    throw new UsageError(reworded(e, args));
  }
  const str = (k: string) => values[k] as string | undefined;
  if (values.socket === "") throw new UsageError("--socket needs a path, got an empty one");
  // Said rather than silently dropping one of them.
  if (values.memory === true && values["data-dir"] !== undefined) {
    throw new UsageError("--memory keeps no store, so --data-dir has nothing to do; pick one");
  }
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

/**
 * The bounds a {@linkcode ServeConfig} gives a `Server`: one place turns the
 * flags into server options, for `srv serve` and for in-process tests alike.
 */
export function serverBounds(
  config: ServeConfig,
): Pick<
  ServerOptions,
  | "maxLineBytes"
  | "maxConnections"
  | "limits"
  | "outputLimits"
  | "maxReplyBytes"
  | "registerTimeoutMs"
> {
  return {
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
  };
}
