/**
 * The client half of the `srv` command line: `ping`, `info`, `snapshot`,
 * `events`, `send` and the domain verbs (`workspace`, `tab`, `block`). Each
 * run connects, registers as a `tool` with its own pid, does one thing and
 * says goodbye. Output is for people by default and one JSON value per line
 * with `--json`; exit codes are {@linkcode ExitCode}'s.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { connect, type SrvClient } from "../client/client.ts";
import { type StreamItem } from "../client/_event_subscription.ts";
import {
  ConnectionLostError,
  ProtocolError,
  SrvError,
  UnreachableError,
} from "../client/errors.ts";
import { ExitCode } from "./exit_code.ts";
import { formatTree } from "../client/format_tree.ts";
import {
  type Command,
  type Event,
  type Json,
  type JsonObject,
  type U64,
} from "../core/protocol.ts";
import { encodeEvent, parseJson } from "../core/codec.ts";
import { stateFromSnapshot } from "../core/state.ts";
import { SRV_VERSION } from "../version.ts";
import { err, out, UsageError } from "./_terminal.ts";

/** The subcommands {@linkcode runClientCommand} handles. */
export const CLIENT_COMMANDS: ReadonlySet<string> = new Set([
  "ping",
  "info",
  "snapshot",
  "events",
  "send",
  "workspace",
  "tab",
  "block",
]);

/** Usage text of the client subcommands, for `srv --help`. */
export const CLIENT_USAGE: string = [
  "  srv ping [--nonce N]                       round trip: register, ping, print the pong",
  "  srv info                                   server_info: pid, version, instance, log, store",
  "  srv snapshot                               the workspace/tab/block tree",
  "  srv events [--since N] [--follow]          logged events after N (default 0); --follow prints",
  "                                             live ones (after N when given), across reconnects,",
  "                                             until a signal",
  "  srv send '<json command>'                  send one command, print every event it caused",
  "  srv workspace create NAME | delete ID [--force] | rename ID NAME | meta ID PATCH",
  "  srv tab create WS NAME | delete WS TAB [--force] | rename TAB NAME | activate WS TAB",
  "          | reorder WS TAB INDEX | order WS TAB... | move TAB SRC_WS DST_WS INDEX | meta TAB PATCH",
  "  srv block create TAB [--meta JSON] | delete TAB BLOCK | move BLOCK SRC_TAB DST_TAB INDEX",
  "          | meta BLOCK PATCH",
  "",
  "Flags of the client commands:",
  "  --socket PATH    endpoint (default: $SRV_SOCKET, $AGENTMUX_SRV_PIPE_PATH, then the default)",
  "  --json           one JSON value per line on stdout (events as srv sends them)",
  "  PATCH            a JSON object, applied as an RFC 7386 merge patch",
].join("\n");

const OPTIONS = {
  socket: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean" },
  since: { type: "string" },
  follow: { type: "boolean" },
  nonce: { type: "string" },
  force: { type: "boolean" },
  meta: { type: "string" },
} as const;

type Flag = keyof typeof OPTIONS;
const COMMON_FLAGS: readonly Flag[] = ["socket", "json", "help"];

interface Parsed {
  readonly positionals: string[];
  readonly values: { [K in Flag]?: string | boolean };
}

function parse(args: string[]): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: OPTIONS,
      strict: true,
      allowPositionals: true,
    });
    return { values, positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function allowOnly(parsed: Parsed, what: string, flags: readonly Flag[]): void {
  for (const flag of Object.keys(parsed.values) as Flag[]) {
    if (!COMMON_FLAGS.includes(flag) && !flags.includes(flag)) {
      throw new UsageError(`${what} takes no --${flag}`);
    }
  }
}

function arity(positionals: string[], names: string[], what: string): string[] {
  if (positionals.length !== names.length) {
    throw new UsageError(`${what} needs ${names.length ? names.join(" ") : "no arguments"}`);
  }
  return positionals;
}

function u64(name: string, raw: string): U64 {
  if (!/^[0-9]+$/.test(raw)) throw new UsageError(`${name} must be a non-negative integer`);
  const big = BigInt(raw);
  if (big > (1n << 64n) - 1n) throw new UsageError(`${name} is larger than 2^64 - 1`);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function index(name: string, raw: string): number {
  if (!/^[0-9]+$/.test(raw) || Number(raw) > 0xffff_ffff) {
    throw new UsageError(`${name} must be an integer from 0 to 4294967295`);
  }
  return Number(raw);
}

function json(name: string, raw: string): Json {
  try {
    return parseJson(raw) as Json;
  } catch (e) {
    throw new UsageError(`${name} is not JSON: ${(e as Error).message}`);
  }
}

function patch(name: string, raw: string): JsonObject {
  const value = json(name, raw);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(`${name} must be a JSON object`);
  }
  return value;
}

/** A domain verb, turned into the command it sends. */
function domainCommand(noun: string, parsed: Parsed): Command {
  const [verb, ...rest] = parsed.positionals.slice(1);
  const what = `srv ${noun} ${verb ?? ""}`.trim();
  const force = parsed.values.force === true;
  const flags: Flag[] = [];
  let command: Command;
  const key = `${noun} ${verb}`;
  switch (key) {
    case "workspace create": {
      const [name] = arity(rest, ["NAME"], what);
      command = { cmd: "create_workspace", name };
      break;
    }
    case "workspace delete": {
      const [id] = arity(rest, ["ID"], what);
      flags.push("force");
      command = { cmd: "delete_workspace", workspace_id: id, ...(force ? { force } : {}) };
      break;
    }
    case "workspace rename": {
      const [id, name] = arity(rest, ["ID", "NAME"], what);
      command = { cmd: "rename_workspace", workspace_id: id, name };
      break;
    }
    case "workspace meta": {
      const [id, raw] = arity(rest, ["ID", "PATCH"], what);
      command = { cmd: "update_workspace_meta", workspace_id: id, meta_patch: patch("PATCH", raw) };
      break;
    }
    case "tab create": {
      const [ws, name] = arity(rest, ["WS", "NAME"], what);
      command = { cmd: "create_tab", workspace_id: ws, name };
      break;
    }
    case "tab delete": {
      const [ws, tab] = arity(rest, ["WS", "TAB"], what);
      flags.push("force");
      command = { cmd: "delete_tab", workspace_id: ws, tab_id: tab, ...(force ? { force } : {}) };
      break;
    }
    case "tab rename": {
      const [tab, name] = arity(rest, ["TAB", "NAME"], what);
      command = { cmd: "rename_tab", tab_id: tab, name };
      break;
    }
    case "tab activate": {
      const [ws, tab] = arity(rest, ["WS", "TAB"], what);
      command = { cmd: "set_active_tab", workspace_id: ws, tab_id: tab };
      break;
    }
    case "tab reorder": {
      const [ws, tab, raw] = arity(rest, ["WS", "TAB", "INDEX"], what);
      command = {
        cmd: "reorder_tab",
        workspace_id: ws,
        tab_id: tab,
        new_index: index("INDEX", raw),
      };
      break;
    }
    case "tab order": {
      if (rest.length < 1) throw new UsageError(`${what} needs WS TAB...`);
      const [ws, ...tabs] = rest;
      command = { cmd: "reorder_tabs_bulk", workspace_id: ws, tab_ids: tabs };
      break;
    }
    case "tab move": {
      const [tab, src, dst, raw] = arity(rest, ["TAB", "SRC_WS", "DST_WS", "INDEX"], what);
      command = {
        cmd: "move_tab",
        tab_id: tab,
        src_workspace_id: src,
        dst_workspace_id: dst,
        dst_index: index("INDEX", raw),
      };
      break;
    }
    case "tab meta": {
      const [tab, raw] = arity(rest, ["TAB", "PATCH"], what);
      command = { cmd: "update_tab_meta", tab_id: tab, meta_patch: patch("PATCH", raw) };
      break;
    }
    case "block create": {
      const [tab] = arity(rest, ["TAB"], what);
      flags.push("meta");
      const meta = parsed.values.meta;
      command = {
        cmd: "create_block",
        tab_id: tab,
        meta: typeof meta === "string" ? json("--meta", meta) : null,
      };
      break;
    }
    case "block delete": {
      const [tab, block] = arity(rest, ["TAB", "BLOCK"], what);
      command = { cmd: "delete_block", tab_id: tab, block_id: block };
      break;
    }
    case "block move": {
      const [block, src, dst, raw] = arity(rest, ["BLOCK", "SRC_TAB", "DST_TAB", "INDEX"], what);
      command = {
        cmd: "move_block",
        block_id: block,
        src_tab_id: src,
        dst_tab_id: dst,
        dst_index: index("INDEX", raw),
      };
      break;
    }
    case "block meta": {
      const [block, raw] = arity(rest, ["BLOCK", "PATCH"], what);
      command = { cmd: "update_block_meta", block_id: block, meta_patch: patch("PATCH", raw) };
      break;
    }
    default:
      throw new UsageError(
        verb === undefined ? `srv ${noun} needs a verb` : `unknown verb "${verb}" for srv ${noun}`,
      );
  }
  allowOnly(parsed, what, flags);
  return command;
}

function fieldText(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === "bigint") return value.toString();
  return JSON.stringify(value);
}

/**
 * One event as a line for people: `v<version> <event> key=value …`, with
 * strings bare when they can be, JSON otherwise.
 *
 * @example
 * ```ts
 * import { formatEvent } from "./client_commands.ts";
 * formatEvent({ event: "workspace_created", workspace_id: "w1", name: "my ws", version: 4 });
 * // 'v4 workspace_created workspace_id=w1 name="my ws"'
 * ```
 */
export function formatEvent(event: Event): string {
  const { event: name, version, ...fields } = event as Event & Record<string, unknown>;
  const parts = Object.entries(fields).map(([k, v]) => `${k}=${fieldText(v)}`);
  return [`v${version}`, name, ...parts].join(" ");
}

class Printer {
  readonly json: boolean;
  constructor(json: boolean) {
    this.json = json;
  }
  event(event: Event): void {
    out(this.json ? encodeEvent(event) : formatEvent(event));
  }
}

function describeItem(item: StreamItem, printer: Printer): void {
  if (item.type === "event") {
    printer.event(item.event);
    return;
  }
  if (printer.json) {
    out(encodeEvent(item.snapshot));
    return;
  }
  const why = {
    requested: "as asked",
    truncated: "the events in between are no longer retained",
    diverged: "the server's history is not the one followed so far",
  }[item.reason];
  out(`-- resynced from a snapshot at v${item.snapshot.version} (${why}):`);
  out(formatTree(stateFromSnapshot(item.snapshot)));
}

async function follow(client: SrvClient, since: U64 | undefined, printer: Printer): Promise<void> {
  const stream = client.events(since === undefined ? {} : { since });
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  const stop = () => void client.close();
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  try {
    for await (const item of stream) describeItem(item, printer);
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
  }
}

function formatInfo(info: Extract<Event, { event: "server_info" }>, socket: string): string {
  const log = info.log.oldest === null
    ? "empty"
    : `v${info.log.oldest}..v${info.log.newest} (${info.log.retained} events)`;
  return [
    `server       srv ${info.server_version} (pid ${info.pid})`,
    `socket       ${socket}`,
    `instance     ${info.instance_id}`,
    `uptime       ${(info.uptime_ms / 1000).toFixed(1)} s`,
    `connections  ${info.connections}`,
    `version      v${info.event_version}`,
    `log          ${log}`,
    `store        ${info.store ?? "none (memory only)"}`,
  ].join("\n");
}

/** What one client subcommand does once connected and registered. */
type Action = (client: SrvClient, printer: Printer) => Promise<number>;

function plan(command: string, parsed: Parsed): { action: Action; reconnect: boolean } {
  const rest = parsed.positionals.slice(1);
  switch (command) {
    case "ping": {
      arity(rest, [], "srv ping");
      allowOnly(parsed, "srv ping", ["nonce"]);
      const raw = parsed.values.nonce;
      const nonce = typeof raw === "string" ? u64("--nonce", raw) : undefined;
      return {
        reconnect: false,
        action: async (client, printer) => {
          const started = performance.now();
          const pong = await client.ping(nonce);
          const ms = performance.now() - started;
          if (printer.json) printer.event(pong);
          else {
            out(
              `pong nonce=${pong.nonce} v${pong.version} from ${client.instanceId} in ${
                ms.toFixed(1)
              } ms`,
            );
          }
          return ExitCode.ok;
        },
      };
    }
    case "info":
      arity(rest, [], "srv info");
      allowOnly(parsed, "srv info", []);
      return {
        reconnect: false,
        action: async (client, printer) => {
          const info = await client.serverInfo();
          if (printer.json) printer.event(info);
          else out(formatInfo(info, client.socket));
          return ExitCode.ok;
        },
      };
    case "snapshot":
      arity(rest, [], "srv snapshot");
      allowOnly(parsed, "srv snapshot", []);
      return {
        reconnect: false,
        action: async (client, printer) => {
          const snapshot = await client.snapshot();
          if (printer.json) printer.event(snapshot);
          else {
            out(`snapshot at v${snapshot.version}, lifecycle ${snapshot.lifecycle}`);
            out(formatTree(stateFromSnapshot(snapshot)));
          }
          return ExitCode.ok;
        },
      };
    case "events": {
      arity(rest, [], "srv events");
      allowOnly(parsed, "srv events", ["since", "follow"]);
      const raw = parsed.values.since;
      const since = typeof raw === "string" ? u64("--since", raw) : undefined;
      if (parsed.values.follow === true) {
        return {
          reconnect: true,
          action: async (client, printer) => {
            await follow(client, since, printer);
            return ExitCode.ok;
          },
        };
      }
      return {
        reconnect: false,
        action: async (client, printer) => {
          const list = await client.getEvents(since ?? 0);
          for (const event of list.events) printer.event(event);
          if (!list.truncated) return ExitCode.ok;
          err(
            `srv: some events after v${
              since ?? 0
            } are no longer retained (history truncated); run "srv snapshot" for the current tree`,
          );
          return ExitCode.historyTruncated;
        },
      };
    }
    case "send": {
      const [raw] = arity(rest, ["'<json command>'"], "srv send");
      allowOnly(parsed, "srv send", []);
      const value = json("the command", raw);
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new UsageError("the command must be a JSON object");
      }
      return {
        reconnect: false,
        action: async (client, printer) => {
          const reply = await client.send(value as unknown as Command);
          for (const event of reply.events) printer.event(event);
          return reply.error === null ? ExitCode.ok : ExitCode.serverError;
        },
      };
    }
    default: {
      const domain = domainCommand(command, parsed);
      return {
        reconnect: false,
        action: async (client, printer) => {
          const reply = await client.send(domain);
          if (reply.error !== null) throw new SrvError(reply.error);
          for (const event of reply.events) printer.event(event);
          return ExitCode.ok;
        },
      };
    }
  }
}

/**
 * Runs one client subcommand (`args` starts with its name) and returns the
 * exit code: 0 done, 2 bad command line, 6 no server at the endpoint (or
 * it went away), 7 the server refused the command, 8 `srv events` history
 * truncated.
 *
 * @example
 * ```ts ignore
 * import { runClientCommand } from "./client_commands.ts";
 * Deno.exit(await runClientCommand(["workspace", "create", "main", "--json"]));
 * ```
 */
export async function runClientCommand(args: string[]): Promise<number> {
  const command = args[0];
  let parsed: Parsed;
  let planned: ReturnType<typeof plan>;
  try {
    parsed = parse(args);
    if (parsed.values.help === true) {
      out(`Usage:\n${CLIENT_USAGE}`);
      return ExitCode.ok;
    }
    planned = plan(command, parsed);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`srv ${command}: ${e.message}\n\nUsage:\n${CLIENT_USAGE}`);
    return ExitCode.usage;
  }
  const printer = new Printer(parsed.values.json === true);
  const socket = typeof parsed.values.socket === "string" ? parsed.values.socket : undefined;
  let client: SrvClient | undefined;
  try {
    client = await connect({
      socket,
      reconnect: planned.reconnect,
      onStatus: (status) => {
        if (status.state === "disconnected") {
          err(
            `srv: connection lost (${status.reason})${planned.reconnect ? "; reconnecting" : ""}`,
          );
        } else if (status.state === "reconnected") {
          err(`srv: reconnected to instance ${status.instanceId}`);
        }
      },
    });
    await client.register({ kind: "tool", pid: Deno.pid, version: `srv-cli ${SRV_VERSION}` });
    return await planned.action(client, printer);
  } catch (e) {
    if (e instanceof UnreachableError || e instanceof ConnectionLostError) {
      err(`srv: ${e.message}`);
      return ExitCode.unreachable;
    }
    // Whatever answered is not (this version of) srv: no usable server
    // there, said in one line, never an uncaught error with a stack trace.
    if (e instanceof ProtocolError) {
      err(`srv: not an srv answer: ${e.message}`);
      return ExitCode.unreachable;
    }
    if (e instanceof SrvError) {
      err(`srv: ${e.code}: ${e.message}`);
      return ExitCode.serverError;
    }
    throw e;
  } finally {
    await client?.close();
  }
}
