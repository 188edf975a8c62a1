/**
 * The client half of the `srv` command line: `ping`, `info`, `snapshot`,
 * `events`, `send` and the domain verbs (`workspace`, `tab`, `block`). Each
 * run connects, registers as a `tool` with its own pid, does one thing and
 * says goodbye; the ones that only read (`ping`, `info`, `snapshot`,
 * `events`, `export`) register as observers and leave no trace (protocol
 * 2). Output is for people by default and one JSON value per line
 * with `--json`; exit codes are {@linkcode ExitCode}'s.
 *
 * @module
 */

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
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import {
  CLIENT_KINDS,
  type Command,
  type Event,
  type GetEventsCommand,
  type Json,
  type PingCommand,
  type U64,
} from "../core/protocol.ts";
import {
  decodeCommand,
  encodeCommand,
  encodeEvent,
  parseJson,
  parseMetaJson,
} from "../core/codec.ts";
import { type CliVerb, COMMAND_REGISTRY, isJsonObject, type Rule } from "../core/command_schema.ts";
import { stateFromSnapshot } from "../core/state.ts";
import { SRV_VERSION } from "../version.ts";
import { err, out, UsageError } from "./_terminal.ts";
import { applyFile, exportLayout, LAYOUT_USAGE } from "./layout_commands.ts";

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
  "export",
  "apply",
]);

/** One domain verb: the command it sends, its CLI spelling and the rules of the command's fields. */
interface DomainVerb {
  readonly cmd: string;
  readonly cli: CliVerb;
  readonly rules: Readonly<Record<string, Rule>>;
}

/** Every domain verb by `"<noun> <verb>"`, in registry order. */
const DOMAIN_VERBS: ReadonlyMap<string, DomainVerb> = new Map(
  Object.entries(COMMAND_REGISTRY).flatMap(([cmd, row]) =>
    "cli" in row
      ? [[`${row.cli.noun} ${row.cli.verb}`, {
        cmd,
        cli: row.cli as CliVerb,
        rules: row.fields as Record<string, Rule>,
      }]]
      : []
  ),
);

/** `srv <noun> <verb> ARGS [--flags]`, from the verb's registry row. */
function verbSynopsis({ cli, rules }: DomainVerb): string {
  const flags = (cli.flags ?? []).map((f) => rules[f] === "flag" ? `[--${f}]` : `[--${f} JSON]`);
  const args = cli.args.map(([, metavar]) => metavar);
  return ["srv", cli.noun, cli.verb, ...args, ...flags].join(" ");
}

/** Usage text of the client subcommands, for `srv --help`; the domain verbs come from the registry. */
export const CLIENT_USAGE: string = [
  "  srv ping [--nonce N]                       round trip: register, ping, print the pong",
  "  srv info                                   server_info: pid, version, instance, log, store",
  "  srv snapshot                               the workspace/tab/block tree",
  "  srv events [--since N] [--follow]          logged events after N (default 0); --follow prints",
  "                                             live ones (after N when given), across reconnects,",
  "                                             until a signal",
  "  srv send '<json command>'                  send one command, print every event it caused",
  ...LAYOUT_USAGE,
  // Grouped by noun, in registry order within each.
  ...(["workspace", "tab", "block"] as const).flatMap((noun) =>
    [...DOMAIN_VERBS.values()].filter((v) => v.cli.noun === noun).map((v) =>
      `  ${verbSynopsis(v).padEnd(42)} ${v.cli.summary}`
    )
  ),
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
  "if-unchanged-since": { type: "string" },
  // The domain verbs' flags: a `flag` field is a switch, any other takes a value.
  ...Object.fromEntries(
    [...DOMAIN_VERBS.values()].flatMap(({ cli, rules }) =>
      (cli.flags ?? []).map((f) => [f, { type: rules[f] === "flag" ? "boolean" : "string" }])
    ),
  ),
} as const satisfies ParseArgsOptionsConfig;

type Flag = string;
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

/** What each rule asks of a command-line value, for the usage error when it is refused. */
const EXPECTED: Record<Rule, string> = {
  string: "text",
  name: "well-formed text (no lone surrogate)",
  u32: "an integer from 0 to 4294967295",
  u64: "an integer from 0 to 2^64 - 1",
  kind: `one of ${CLIENT_KINDS.join(", ")}`,
  flag: "a switch",
  strings: "a list of words",
  object: "a JSON object",
  anyJson: "JSON",
  id: "a lowercase UUID",
  optU64: "an integer from 0 to 2^64 - 1",
  commands: "a list of commands",
};

/**
 * Reads one command-line value by its field's rule: numbers as digits,
 * objects and JSON as JSON text, the rest as given. Only the syntax is
 * checked here; whether the value fits (range, object, ...) is the decoder's
 * call, in {@linkcode decoded}.
 */
function readValue(rule: Rule, label: string, raw: string): unknown {
  switch (rule) {
    case "u32":
    case "u64":
    case "optU64": {
      if (!/^[0-9]+$/.test(raw)) throw new UsageError(`${label} must be ${EXPECTED[rule]}`);
      const big = BigInt(raw);
      return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    case "object":
    case "anyJson":
      // A meta or patch on its own: its numbers are doubles, as inside a command.
      try {
        return parseMetaJson(raw);
      } catch (e) {
        throw new UsageError(`${label} is not JSON: ${(e as Error).message}`);
      }
    case "string":
    case "name":
    case "kind":
    case "id":
      return raw;
    case "flag":
    case "strings":
    case "commands":
      throw new Error(`a ${rule} field is not read from one value`);
    default: {
      const unhandled: never = rule;
      throw new Error(`unknown rule ${unhandled}`);
    }
  }
}

function json(name: string, raw: string): Json {
  try {
    return parseJson(raw) as Json;
  } catch (e) {
    throw new UsageError(`${name} is not JSON: ${(e as Error).message}`);
  }
}

/**
 * The command as the server would decode it: the same decoder, so the CLI
 * refuses exactly what srv refuses, naming the argument (`labels` maps a
 * field to it) and what its rule asks for.
 */
function decoded(command: Record<string, unknown>, labels: Record<string, string>): Command {
  const result = decodeCommand(encodeCommand(command as unknown as Command));
  if (result.ok) return result.command;
  const rules = COMMAND_REGISTRY[command.cmd as keyof typeof COMMAND_REGISTRY]
    ?.fields as Record<string, Rule> | undefined;
  const rule = result.field === undefined ? undefined : rules?.[result.field];
  if (rule === undefined || result.field === undefined) throw new UsageError(result.reason);
  const label = labels[result.field] ?? result.field;
  // The rule says what was wanted; the validator's own wording adds only noise.
  throw new UsageError(`${label} must be ${EXPECTED[rule]}`);
}

/** A domain verb, turned into the command it sends by its registry row. */
function domainCommand(noun: string, parsed: Parsed): Command {
  const [verb, ...rest] = parsed.positionals.slice(1);
  const what = `srv ${noun} ${verb ?? ""}`.trim();
  const found = DOMAIN_VERBS.get(`${noun} ${verb}`);
  if (found === undefined) {
    throw new UsageError(
      verb === undefined ? `srv ${noun} needs a verb` : `unknown verb "${verb}" for srv ${noun}`,
    );
  }
  const { cmd, cli, rules } = found;
  const metavars = cli.args.map(([, metavar]) => metavar);
  // A `strings` field last takes every remaining word, none included
  // (`srv tab order WS` on a workspace without tabs sends an empty list).
  const last = cli.args.at(-1);
  const variadic = last !== undefined && rules[last[0]] === "strings";
  const arityOk = variadic ? rest.length >= cli.args.length - 1 : rest.length === cli.args.length;
  if (!arityOk) throw new UsageError(`${what} needs ${metavars.join(" ")}`);
  const command: Record<string, unknown> = { cmd };
  const labels: Record<string, string> = {};
  cli.args.forEach(([field, metavar], i) => {
    labels[field] = metavar;
    command[field] = rules[field] === "strings"
      ? rest.slice(i)
      : readValue(rules[field], metavar, rest[i]);
  });
  for (const field of cli.flags ?? []) {
    const raw = parsed.values[field];
    labels[field] = `--${field}`;
    // An absent flag is not sent: the decoder's default applies.
    if (raw === undefined || raw === false) continue;
    command[field] = typeof raw === "boolean" ? raw : readValue(rules[field], `--${field}`, raw);
  }
  allowOnly(parsed, what, cli.flags ?? []);
  return decoded(command, labels);
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

/** How a subcommand runs; `observe`: it only reads, as an observer that leaves no trace (§11.1). */
type Plan = { action: Action; reconnect: boolean; observe?: boolean };

function plan(command: string, parsed: Parsed): Plan {
  const rest = parsed.positionals.slice(1);
  switch (command) {
    case "ping": {
      arity(rest, [], "srv ping");
      allowOnly(parsed, "srv ping", ["nonce"]);
      const raw = parsed.values.nonce;
      const nonce = typeof raw === "string"
        ? (decoded({ cmd: "ping", nonce: readValue("u64", "--nonce", raw) }, {
          nonce: "--nonce",
        }) as PingCommand).nonce
        : undefined;
      return {
        reconnect: false,
        observe: true,
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
        observe: true,
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
        observe: true,
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
      const since = typeof raw === "string"
        ? (decoded({ cmd: "get_events", since: readValue("u64", "--since", raw) }, {
          since: "--since",
        }) as GetEventsCommand).since
        : undefined;
      if (parsed.values.follow === true) {
        return {
          reconnect: true,
          observe: true,
          action: async (client, printer) => {
            await follow(client, since, printer);
            return ExitCode.ok;
          },
        };
      }
      return {
        reconnect: false,
        observe: true,
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
      if (!isJsonObject(value)) throw new UsageError("the command must be a JSON object");
      return {
        reconnect: false,
        action: async (client, printer) => {
          const reply = await client.send(value as unknown as Command);
          for (const event of reply.events) printer.event(event);
          return reply.error === null ? ExitCode.ok : ExitCode.serverError;
        },
      };
    }
    case "export":
      arity(rest, [], "srv export");
      allowOnly(parsed, "srv export", []);
      return {
        reconnect: false,
        observe: true,
        action: (client, printer) => exportLayout(client, printer.json),
      };
    case "apply": {
      const [file] = arity(rest, ["FILE|-"], "srv apply");
      allowOnly(parsed, "srv apply", ["if-unchanged-since"]);
      const raw = parsed.values["if-unchanged-since"];
      const since = typeof raw === "string"
        ? readValue("u64", "--if-unchanged-since", raw) as U64
        : undefined;
      return {
        reconnect: false,
        action: (client, printer) => applyFile(client, file, since, printer.json),
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
      // `srv <noun> <verb> --help`: that verb alone, with its example.
      const verb = DOMAIN_VERBS.get(parsed.positionals.slice(0, 2).join(" "));
      out(
        verb === undefined
          ? `Usage:\n${CLIENT_USAGE}`
          : `Usage: ${
            verbSynopsis(verb)
          }\n  ${verb.cli.summary}\n\nExample:\n  ${verb.cli.example}`,
      );
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
    await client.register({
      kind: "tool",
      pid: Deno.pid,
      version: `srv-cli ${SRV_VERSION}`,
      observe: planned.observe === true,
    });
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
