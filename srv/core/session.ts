/**
 * The per-connection protocol handler: docs/PROTOCOL.md §5 as a pure state
 * machine. It turns each line into a {@linkcode SessionStep} for the server
 * to carry out and remembers who registered, so the server knows when to
 * send a synthetic `goodbye`.
 *
 * @module
 */

import {
  type ClientKind,
  type Command,
  type ErrorCode,
  type ErrorEvent,
  type Event,
  type GetSrvSnapshotCommand,
  type GoodbyeCommand,
  type PingCommand,
  PROTOCOL_EXTENSIONS_VERSION,
  type QueryCommand,
  type ReducerCommand,
  type RegisterCommand,
} from "./protocol.ts";
import { decodeCommand } from "./codec.ts";
import type { LauncherIdentity, ReducerEvent } from "./decide.ts";
import { snapshotOf, type State } from "./state.ts";

/** What the server must do with one line. */
export type SessionStep =
  /** A blank line, or a line after the session ended: nothing. */
  | { kind: "ignore" }
  /** Send `event` to this connection only; close it afterwards if `close`. */
  | { kind: "reply"; event: ErrorEvent; close: boolean }
  /** Run the reducer, then report back with {@linkcode Session.afterReduce}. */
  | { kind: "reduce"; command: ReducerCommand }
  /** Answer from the server's own data (`get_events`, `get_server_info`). */
  | { kind: "query"; command: QueryCommand }
  /**
   * An observer's command (protocol 2, §11.1): answer it privately with
   * {@linkcode observerAnswer}, no reducer; close after a `goodbye`.
   */
  | { kind: "observe"; command: ObserverCommand };

/** What an observer may send that the server answers without the reducer. */
export type ObserverCommand =
  | RegisterCommand
  | PingCommand
  | GetSrvSnapshotCommand
  | GoodbyeCommand;

/** The kind and pid a connection registered with. */
export interface SessionIdentity {
  /** The kind it registered as. */
  readonly kind: ClientKind;
  /** The pid it registered with. */
  readonly pid: number;
}

/** A private error: version 0, outside the ordered stream (docs/PROTOCOL.md §5). */
export function privateError(code: ErrorCode, message: string, fatal: boolean): ErrorEvent {
  return { event: "error", code, message, fatal, version: 0 };
}

const NOT_REGISTERED: Partial<Record<Command["cmd"], string>> = {
  ping: "Ping before Register",
  get_srv_snapshot: "GetSrvSnapshot before Register",
  get_events: "GetEvents before Register",
  goodbye: "Goodbye before Register",
};

/**
 * One connection's view of the protocol. No I/O: feed it lines, carry out
 * the steps it returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Session } from "@srv/srv/core";
 *
 * const s = new Session();
 * assert.deepEqual(s.receiveLine('{"cmd":"ping","nonce":1}'), {
 *   kind: "reply",
 *   event: {
 *     event: "error",
 *     code: "not_registered",
 *     message: "Ping before Register",
 *     fatal: false,
 *     version: 0,
 *   },
 *   close: false,
 * });
 * const step = s.receiveLine('{"cmd":"register","kind":"tool","pid":42,"version":"1"}');
 * assert.equal(step.kind, "reduce");
 * ```
 */
export class Session {
  #identity: SessionIdentity | null = null;
  #observer = false;
  #ended = false;
  // A BOM is kept, not skipped: it is not JSON, and lines decoded in one batch
  // (LineSplitter.pushText) must be judged exactly like lines decoded one by one.
  static readonly #utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

  /** Who registered on this connection, or null. */
  get identity(): SessionIdentity | null {
    return this.#identity;
  }

  /** Whether the connection registered as an observer (§11.1). */
  get observer(): boolean {
    return this.#observer;
  }

  /** True once the connection must close (goodbye, or a fatal error). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Handles one line, without its `\n` and `\r` (the splitter drops them).
   * Bytes are checked to be UTF-8 first; invalid UTF-8 is a soft private
   * error, so the connection stays usable.
   */
  receiveLine(line: string | Uint8Array): SessionStep {
    if (this.#ended) return { kind: "ignore" };
    let text: string;
    if (typeof line === "string") {
      text = line;
    } else {
      try {
        text = Session.#utf8.decode(line);
      } catch {
        return this.#reply("invalid_command", "parse failed: line is not valid UTF-8", false);
      }
    }
    if (text.trim() === "") return { kind: "ignore" };
    const decoded = decodeCommand(text);
    if (!decoded.ok) {
      return this.#reply("invalid_command", `parse failed: ${decoded.reason}`, false);
    }
    return this.receiveCommand(decoded.command);
  }

  /** Handles an already decoded command (§5 steps 2–5). */
  receiveCommand(command: Command): SessionStep {
    if (this.#ended) return { kind: "ignore" };
    if (this.#observer) return this.#fromObserver(command);
    if (this.#identity === null && command.cmd === "register" && command.observe === true) {
      this.#observer = true;
      return { kind: "observe", command };
    }
    if (this.#identity === null && command.cmd !== "register") {
      const message = NOT_REGISTERED[command.cmd] ?? "Command before Register";
      return this.#reply("not_registered", message, command.cmd === "goodbye");
    }
    if (this.#identity !== null && command.cmd === "register") {
      return this.#reply(
        "already_registered",
        "Register sent twice on the same connection",
        false,
      );
    }
    if (command.cmd === "get_events" || command.cmd === "get_server_info") {
      return { kind: "query", command };
    }
    return { kind: "reduce", command };
  }

  /** An observer's command (§11.1): read-only ones answered, the rest refused. */
  #fromObserver(command: Command): SessionStep {
    switch (command.cmd) {
      case "register":
        return this.#reply(
          "already_registered",
          "Register sent twice on the same connection",
          false,
        );
      case "get_events":
      case "get_server_info":
        return { kind: "query", command };
      case "goodbye":
        this.#ended = true;
        return { kind: "observe", command };
      case "ping":
      case "get_srv_snapshot":
        return { kind: "observe", command };
      default:
        return this.#reply("invalid_command", `observers are read-only: ${command.cmd}`, false);
    }
  }

  /** A line longer than the cap: a fatal private error (docs/PROTOCOL.md §1). */
  lineTooLong(maxLineBytes: number): SessionStep {
    if (this.#ended) return { kind: "ignore" };
    return this.#reply(
      "invalid_command",
      `line exceeds ${maxLineBytes} bytes; closing the connection`,
      true,
    );
  }

  /**
   * The connection did not register in time (docs/PROTOCOL.md §10): a fatal
   * private `not_registered`, or nothing if it registered or ended meanwhile.
   */
  registerTimedOut(timeoutMs: number): SessionStep {
    if (this.#ended || this.#identity !== null || this.#observer) return { kind: "ignore" };
    return this.#reply("not_registered", `register within ${timeoutMs / 1000} s`, true);
  }

  /**
   * Reports what the reducer emitted for a `reduce` step (§5 steps 6–7).
   * Returns whether the server must now close the connection.
   */
  afterReduce(command: ReducerCommand, events: readonly ReducerEvent[]): { close: boolean } {
    if (command.cmd === "register") {
      const refused = events.some((e) => e.event === "error" && e.code === "already_registered");
      if (!refused) this.#identity = { kind: command.kind, pid: command.pid };
    } else if (command.cmd === "goodbye") {
      // The pid has said goodbye: nothing synthetic is owed for it any more,
      // even if another connection registers the same pid later.
      this.#identity = null;
      this.#ended = true;
    }
    return { close: this.#ended };
  }

  /**
   * The connection dropped (EOF or read error). Returns the synthetic
   * `goodbye` to run for a registered pid, or null (§5, last paragraph).
   * The session is over afterwards.
   */
  disconnect(): GoodbyeCommand | null {
    const owed = this.#identity !== null;
    this.#ended = true;
    return owed ? { cmd: "goodbye" } : null;
  }

  #reply(code: ErrorCode, message: string, fatal: boolean): SessionStep {
    if (fatal) this.#ended = true;
    return { kind: "reply", event: privateError(code, message, fatal), close: fatal };
  }
}

/**
 * The private answer to an observer's command (docs/PROTOCOL.md §11.1), from
 * the state as it is, which it never changes: its `registered` (client id
 * 0, `observe: true`), a `pong` and a snapshot at version 0 and the
 * current version; nothing for `goodbye`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initialState, observerAnswer } from "@srv/srv/core";
 *
 * assert.deepEqual(observerAnswer(initialState(), { cmd: "ping", nonce: 5 }), {
 *   event: "pong",
 *   nonce: 5,
 *   version: 0,
 * });
 * ```
 */
export function observerAnswer(
  state: State,
  command: ObserverCommand,
  identity: LauncherIdentity = { pid: 0, version: "", instanceId: "" },
): Event | null {
  switch (command.cmd) {
    case "register":
      return {
        event: "registered",
        client_id: 0,
        launcher_pid: identity.pid,
        launcher_version: identity.version,
        instance_id: identity.instanceId,
        protocol: PROTOCOL_EXTENSIONS_VERSION,
        observe: true,
        version: 0,
      };
    case "ping":
      return { event: "pong", nonce: command.nonce, version: 0 };
    case "get_srv_snapshot":
      return { event: "srv_snapshot", ...snapshotOf(state), version: state.eventVersion };
    case "goodbye":
      return null;
    default: {
      const unhandled: never = command;
      throw new Error(`observerAnswer: ${(unhandled as ObserverCommand).cmd}`);
    }
  }
}
