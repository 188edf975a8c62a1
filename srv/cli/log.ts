/**
 * Logging setup: LogTape, always to stderr (stdout carries only the
 * readiness line), as readable text or JSON lines.
 *
 * @module
 */

import {
  configure,
  dispose,
  getAnsiColorFormatter,
  getTextFormatter,
  jsonLinesFormatter,
  type LogLevel,
  type LogRecord,
} from "../../deps.ts";
import { colorFor } from "./_terminal.ts";

/** Levels `--log-level` accepts. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** A level `--log-level` accepts. */
export type SrvLogLevel = typeof LOG_LEVELS[number];
/** Formats `--log-format` accepts. */
export const LOG_FORMATS = ["pretty", "json"] as const;
/** A format `--log-format` accepts. */
export type LogFormat = typeof LOG_FORMATS[number];

/**
 * Routes every `srv` log record at `level` or above to stderr.
 *
 * @example
 * ```ts ignore
 * import { setupLogging } from "./log.ts";
 * await setupLogging("info", "json");
 * ```
 */
export async function setupLogging(level: SrvLogLevel, format: LogFormat): Promise<void> {
  const formatter = format === "json"
    ? jsonLinesFormatter
    : colorFor(Deno.stderr)
    ? getAnsiColorFormatter({ timestamp: "date-time-timezone" })
    : getTextFormatter({ timestamp: "date-time-timezone" });
  await configure({
    reset: true,
    sinks: { stderr: stderrSink(formatter) },
    loggers: [
      { category: ["srv"], lowestLevel: toLogTapeLevel(level), sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/**
 * Writes each record synchronously: nothing is buffered, so nothing is lost
 * when the process exits, and stderr stays open for our own messages.
 */
function stderrSink(formatter: (record: LogRecord) => string): (record: LogRecord) => void {
  const encoder = new TextEncoder();
  return (record) => {
    try {
      Deno.stderr.writeSync(encoder.encode(formatter(record)));
    } catch {
      // stderr is gone (the parent closed it); logging must never crash srv.
    }
  };
}

function toLogTapeLevel(level: SrvLogLevel): LogLevel {
  return level === "warn" ? "warning" : level;
}

/** Releases the logging configuration; call before the process exits. */
export async function flushLogs(): Promise<void> {
  await dispose();
}
