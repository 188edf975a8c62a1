/**
 * Running one client verb: connect, register, act, say goodbye, and turn
 * every way that can fail into an exit code and one line on stderr; and
 * how events are printed for people.
 *
 * @module
 */

import type { SrvClient } from "../client/client.ts";
import { connect } from "../client/connect.ts";
import {
  ConnectionLostError,
  ProtocolError,
  SrvError,
  UnreachableError,
} from "../client/errors.ts";
import { escapeControls } from "../client/format_tree.ts";
import type { Event } from "../core/protocol.ts";
import { encodeEvent } from "../core/codec.ts";
import { COMMAND_REGISTRY } from "../core/command_schema.ts";
import { SRV_VERSION } from "../version.ts";
import { defaultClientSocket } from "../client/dial.ts";
import { ExitCode } from "./exit_code.ts";
import { duration } from "./serve_args.ts";
import { err, out, UsageError } from "./_terminal.ts";
import type { Invocation } from "./_verb.ts";

function fieldText(value: unknown): string {
  if (typeof value === "string") {
    const bare = /^[^\s"=\\]+$/.test(value) && escapeControls(value) === value;
    // JSON.stringify escapes C0 and lone surrogates; escapeControls the rest.
    return bare ? value : escapeControls(JSON.stringify(value), { keepBackslashes: true });
  }
  if (typeof value === "bigint") return value.toString();
  return escapeControls(JSON.stringify(value), { keepBackslashes: true });
}

/**
 * One event as a line for people: `v<version> <event> key=value …`, with
 * strings bare when they can be, JSON otherwise, and nothing a terminal
 * would act on left unescaped.
 *
 * @example
 * ```ts
 * import { formatEvent } from "./_client_run.ts";
 * formatEvent({ event: "workspace_created", workspace_id: "w1", name: "my ws", version: 4 });
 * // 'v4 workspace_created workspace_id=w1 name="my ws"'
 * ```
 */
export function formatEvent(event: Event): string {
  const { event: name, version, ...fields } = event as Event & Record<string, unknown>;
  const parts = Object.entries(fields).map(([k, v]) => `${k}=${fieldText(v)}`);
  return [`v${version}`, name, ...parts].join(" ");
}

/** Where a verb's events go: a line for people, or the JSON srv sent. */
export class Printer {
  readonly json: boolean;
  constructor(json: boolean) {
    this.json = json;
  }
  event(event: Event): void {
    out(this.json ? encodeEvent(event) : formatEvent(event));
  }
}

/** `--timeout`'s default: how long a verb waits for each answer. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** No answer within `--timeout`: said in one line, exit 6 (unreachable). */
class NoAnswer extends Error {}

/** `ms` as people read it: `10 s`, `500 ms`. */
function spoken(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** `promise`, or a {@linkcode NoAnswer} after `ms` (0: no limit). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  if (ms === 0) return await promise;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new NoAnswer()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `client` with every method that returns a promise (a request and its
 * answer) bounded by `ms`. `events()` returns a stream, not a promise: a
 * follower waits for live events as long as they take.
 */
function bounded(client: SrvClient, ms: number): SrvClient {
  if (ms === 0) return client;
  return new Proxy(client, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== "function") return value;
      // Called on the client itself: its private fields are not the proxy's.
      if (key === "close") return value.bind(target);
      return (...args: unknown[]) => {
        const result = value.apply(target, args);
        return result instanceof Promise ? within(result, ms) : result;
      };
    },
  });
}

/** What a client verb does once connected and registered; returns the exit code. */
export type Action = (client: SrvClient, printer: Printer) => Promise<number>;

/**
 * Connects to the endpoint the invocation names, registers, runs `action`
 * and says goodbye, turning the ways a server can fail to answer into exit
 * codes and one line on stderr. A {@linkcode UsageError} (an ambiguous name)
 * and a closed stdout go on to the dispatcher.
 */
export async function withClient(
  invocation: Invocation,
  action: Action,
  options: { readonly reconnect?: boolean; readonly observe?: boolean } = {},
): Promise<number> {
  const reconnect = options.reconnect === true;
  const printer = new Printer(invocation.values.json === true);
  const socket = invocation.values.socket as string | undefined;
  if (socket === "") throw new UsageError("--socket needs a path, got an empty one");
  const timeoutMs = duration(
    "timeout",
    invocation.values.timeout as string | undefined,
    DEFAULT_TIMEOUT_MS,
    0,
  );
  let client: SrvClient | undefined;
  // Until registered, a failure is the run's own: the catch below says it in
  // one line. Only a session that was up says it is reconnecting.
  let registered = false;
  try {
    client = await within(
      connect({
        socket,
        reconnect,
        onStatus: (status) => {
          // Without reconnecting, the request at hand fails and says why in
          // its own line: one line, not two (a refused `srv apply`, say).
          // The reason quotes the peer's bytes: escaped, like everything else.
          if (status.state === "disconnected" && reconnect && registered) {
            err(`srv: connection lost (${escapeControls(status.reason)}); reconnecting`);
          } else if (status.state === "reconnected" && registered) {
            err(`srv: reconnected to instance ${escapeControls(status.instanceId)}`);
          }
        },
      }),
      timeoutMs,
    );
    // A verb that only reads registers as an observer (docs/PROTOCOL.md
    // §11.1): it leaves no event, no process record and no lifecycle change.
    await within(
      client.register({
        kind: "tool",
        pid: Deno.pid,
        version: `srv-cli ${SRV_VERSION}`,
        observe: options.observe === true,
      }),
      timeoutMs,
    );
    registered = true;
    return await action(bounded(client, timeoutMs), printer);
  } catch (e) {
    if (e instanceof NoAnswer) {
      // A path is not JSON: its backslashes (a Windows pipe) stay single.
      const at = escapeControls(client?.socket ?? socket ?? defaultClientSocket(), {
        keepBackslashes: true,
      });
      const late = `srv: no answer from srv at ${at} within ${spoken(timeoutMs)}`;
      // Registered, a verb that writes has sent its command: srv may have
      // applied it, and a retry could apply it twice.
      if (registered && options.observe !== true) {
        err(`${late}; the command was sent and may have been applied (see "srv events")`);
        return ExitCode.unknownOutcome;
      }
      err(late);
      return ExitCode.unreachable;
    }
    if (e instanceof UnreachableError || e instanceof ConnectionLostError) {
      // Its reason may quote what the peer sent: escaped.
      err(`srv: ${escapeControls(e.message, { keepBackslashes: true })}`);
      return ExitCode.unreachable;
    }
    // Whatever answered is not (this version of) srv: no usable server
    // there, said in one line, never an uncaught error with a stack trace.
    if (e instanceof ProtocolError) {
      err(`srv: not an srv answer: ${escapeControls(e.message)}`);
      return ExitCode.unreachable;
    }
    if (e instanceof SrvError) {
      err(`srv: ${e.code}: ${cliTerms(escapeControls(e.message))}`);
      return ExitCode.serverError;
    }
    throw e;
  } finally {
    await client?.close();
  }
}

/**
 * Hints in server messages, as the CLI spells them (`use reorder_tab`).
 * Only a hint is rewritten: a command named as a fact (`Batch: command 0
 * (create_workspace) failed`) keeps the protocol's name, which is what
 * an NDJSON file given to `srv apply` says.
 */
const CLI_SPELLING: readonly [RegExp, string][] = [
  [/\bforce=true\b/g, "--force"],
  ...Object.entries(COMMAND_REGISTRY).flatMap(([cmd, row]) =>
    "cli" in row
      ? [[new RegExp(`\\buse ${cmd}\\b`, "g"), `use "srv ${row.cli.noun} ${row.cli.verb}"`]] as [
        RegExp,
        string,
      ][]
      : []
  ),
];

/**
 * A server's error message with its hints in the command line's terms:
 * `without force=true` becomes `without --force`, `use reorder_tab`
 * becomes `use "srv tab reorder"`.
 */
export function cliTerms(message: string): string {
  return CLI_SPELLING.reduce(
    (text, [pattern, spelling]) => text.replace(pattern, spelling),
    message,
  );
}
