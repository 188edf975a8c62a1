/**
 * One client connection: line framing both ways, and the rule that matches
 * every answer to the request that caused it (see {@linkcode Link}). The
 * public client ({@linkcode ./client.ts}) adds registration, reconnects and
 * the event stream on top.
 *
 * @module
 */

import { ConnectionLostError, ProtocolError, SrvError } from "./errors.ts";
import { LineSplitter } from "../core/line_splitter.ts";
import {
  type Command,
  type ErrorEvent,
  type Event,
  type ServerInfoEvent,
} from "../core/protocol.ts";
import { decodeCommand, decodeEvent, encodeCommand } from "../core/codec.ts";
import type { Connection } from "../transport/transport.ts";

/**
 * Longest line the client accepts. Answers can be big (an `event_list`
 * replaying a whole durable history), so the cap is a guard against a
 * runaway peer, not a protocol limit.
 */
export const CLIENT_MAX_LINE_BYTES: number = 1024 * 1024 * 1024;

/** What one request got back. */
export interface Reply {
  /**
   * Everything the request caused, in order: the broadcast events of a
   * reducer command (its own, never another connection's), or the one
   * private answer (`event_list`, `server_info`, a private `error`).
   */
  readonly events: Event[];
  /** The error among `events`, if the server refused the request. */
  readonly error: ErrorEvent | null;
}

/**
 * How a request is answered, decided before it is sent (the client decodes
 * each command with the server's own decoder, so it knows what the server
 * will do with it):
 * - `query`: exactly one private line answers it (`get_events`,
 *   `get_server_info`, and anything the server refuses before the reducer).
 * - `command`: a reducer command, sent together with a `get_server_info`
 *   marker; the marker's `last_command` names the versions it took.
 * - `register`: like `command`, but a refused register leaves the
 *   connection unregistered, so the marker gets `not_registered` instead.
 * - `goodbye`: answered by the server closing the connection.
 */
type RequestKind = "query" | "command" | "register" | "goodbye" | "snapshot";

interface Pending {
  readonly kind: RequestKind;
  readonly command: Command;
  /** A private error the command itself got before its marker's answer. */
  ownError: ErrorEvent | null;
  /** An observer's private `registered` (§11.1), before its marker's answer. */
  observed?: Event;
  resolve(reply: Reply): void;
  reject(error: Error): void;
}

const MARKER = encodeCommand({ cmd: "get_server_info" });
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a {@linkcode Link} tells its owner. */
export interface LinkHooks {
  /** A broadcast event (version > 0) arrived; called in stream order. */
  onBroadcast(event: Event): void;
  /** The connection is gone; every pending request has been settled. */
  onClose(reason: string): void;
}

/**
 * One connection to srv and the reply-matching rule.
 *
 * The server handles one connection's lines in order, and every line gets
 * exactly one of: a private answer (version 0, `event_list`, `server_info`)
 * or a run of broadcast events with consecutive versions (zero or more,
 * interleaved on the wire with other connections' broadcasts). Private
 * answers therefore match the FIFO of requests. A reducer command is sent
 * with a `get_server_info` right behind it; its private answer ends the
 * command's output and names, in `last_command`, the first and last version
 * the command took. The command's events are the broadcasts with those
 * versions, which arrived before the marker's answer. No timing, no
 * guessing from event kinds: two clients sending the same command at the
 * same moment each get their own events.
 */
export class Link {
  readonly #conn: Connection;
  readonly #hooks: LinkHooks;
  readonly #pending: Pending[] = [];
  /** Broadcasts received while requests are pending, oldest first. */
  #recent: Event[] = [];
  #writes: Promise<void> = Promise.resolve();
  #registeredPid: number | null = null;
  /** Registered as an observer (§11.1): every answer is private, nothing is logged. */
  #observer = false;
  #registering = false;
  #closed = false;
  #closeRequested = false;
  #closeReason = "connection closed";
  #protocolError: ProtocolError | null = null;
  /** A fatal private error nobody asked for (e.g. too many connections). */
  #fatal: ErrorEvent | null = null;
  /** Resolves once the read loop has ended and everything is settled. */
  readonly done: Promise<void>;

  constructor(conn: Connection, hooks: LinkHooks) {
    this.#conn = conn;
    this.#hooks = hooks;
    this.done = this.#readLoop();
  }

  /** Whether this connection registered as an observer (§11.1). */
  get observer(): boolean {
    return this.#observer;
  }

  /** The pid this connection registered with, or null (an observer's too). */
  get registeredPid(): number | null {
    return this.#registeredPid;
  }

  /** True once the connection is gone. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends a command; resolves with what it caused (errors included, as
   * values). Rejects with {@linkcode ConnectionLostError} when the
   * connection closes first, with {@linkcode SrvError} when the command
   * would not even parse (the server would refuse it the same way).
   */
  request(command: Command): Promise<Reply> {
    if (this.#closed || this.#closeRequested) {
      return Promise.reject(new ConnectionLostError(`not connected: ${this.#closeReason}`));
    }
    if (this.#registering) {
      return Promise.reject(new Error("wait for register() to finish before sending more"));
    }
    const line = encodeCommand(command);
    const decoded = decodeCommand(line);
    if (!decoded.ok) {
      const error: ErrorEvent = {
        event: "error",
        code: "invalid_command",
        message: `parse failed: ${decoded.reason}`,
        fatal: false,
        version: 0,
      };
      return Promise.resolve({ events: [error], error });
    }
    const kind = this.#kindOf(command);
    const { promise, resolve, reject } = Promise.withResolvers<Reply>();
    this.#pending.push({ kind, command, ownError: null, resolve, reject });
    if (kind === "register") this.#registering = true;
    const withMarker = kind === "command" || kind === "register";
    this.#write(encoder.encode(withMarker ? `${line}\n${MARKER}\n` : `${line}\n`));
    return promise;
  }

  #kindOf(command: Command): RequestKind {
    if (this.#observer) {
      // An observer's snapshot is private but carries the current version,
      // so it is told apart by being awaited; goodbye closes silently.
      if (command.cmd === "get_srv_snapshot") return "snapshot";
      return command.cmd === "goodbye" ? "goodbye" : "query";
    }
    const registered = this.#registeredPid !== null;
    switch (command.cmd) {
      case "get_events":
      case "get_server_info":
        return "query";
      case "register":
        return registered ? "query" : "register";
      case "goodbye":
        return registered ? "goodbye" : "query";
      default:
        return registered ? "command" : "query";
    }
  }

  /** Closes the connection; pending requests reject. Safe to call twice. */
  close(reason = "closed by the client"): void {
    if (this.#closed || this.#closeRequested) return;
    this.#closeRequested = true;
    this.#closeReason = reason;
    this.#conn.close();
  }

  #write(bytes: Uint8Array): void {
    this.#writes = this.#writes.then(async () => {
      if (this.#closed) return;
      try {
        await this.#conn.write(bytes);
      } catch (e) {
        this.close(`write failed: ${(e as Error).message}`);
      }
    });
  }

  async #readLoop(): Promise<void> {
    const split = new LineSplitter(CLIENT_MAX_LINE_BYTES);
    let reason = "the server closed the connection";
    try {
      while (!this.#closed) {
        const chunk = await this.#conn.read();
        if (chunk === null) break;
        const fits = split.push(chunk, (line) => this.#onLine(decoder.decode(line)));
        if (!fits) throw new ProtocolError("a line from the server exceeds the client's cap");
      }
    } catch (e) {
      if (e instanceof ProtocolError) this.#protocolError = e;
      reason = (e as Error).message;
    }
    this.#finish(this.#closeRequested ? this.#closeReason : reason);
  }

  #onLine(text: string): boolean {
    if (text.trim() === "") return true;
    const decoded = decodeEvent(text);
    if (!decoded.ok) throw new ProtocolError(`undecodable line from srv: ${decoded.reason}`);
    const event = decoded.event;
    if (event.event === "srv_snapshot" && this.#pending[0]?.kind === "snapshot") {
      // Whichever snapshot comes first (its own, or one another client
      // asked for) describes the tree at its version: either answers.
      this.#settle({ events: [event], error: null });
      return true;
    }
    const isPrivate = event.version === 0 || event.event === "event_list" ||
      event.event === "server_info";
    if (isPrivate) {
      this.#onPrivate(event);
    } else {
      if (this.#pending.length > 0) this.#recent.push(event);
      this.#hooks.onBroadcast(event);
    }
    return true;
  }

  #onPrivate(event: Event): void {
    const head = this.#pending[0];
    if (head === undefined) {
      if (event.event === "error" && event.fatal) {
        this.#fatal = event;
        return;
      }
      throw new ProtocolError(`unrequested private answer from srv: ${event.event}`);
    }
    switch (head.kind) {
      case "query":
      case "goodbye":
      case "snapshot":
        this.#settle({ events: [event], error: event.event === "error" ? event : null });
        return;
      case "command":
        if (event.event === "error") {
          // The command's own refusal, or (defensively) a refused marker.
          if (head.ownError === null) head.ownError = event;
          else this.#settle({ events: [head.ownError], error: head.ownError });
          return;
        }
        if (event.event !== "server_info") {
          throw new ProtocolError(`expected server_info after ${head.command.cmd}`);
        }
        if (head.ownError !== null) {
          this.#settle({ events: [head.ownError], error: head.ownError });
        } else {
          this.#settle(this.#ownEvents(head, event));
        }
        this.#prune(event);
        return;
      case "register":
        return this.#onRegisterAnswer(head, event);
    }
  }

  #onRegisterAnswer(head: Pending, event: Event): void {
    if (event.event === "registered") {
      // An observer's private `registered`; its marker's answer follows.
      head.observed = event;
      return;
    }
    if (event.event === "server_info" && head.observed !== undefined) {
      this.#observer = true;
      this.#registering = false;
      this.#settle({ events: [head.observed], error: null });
      return;
    }
    if (event.event === "server_info") {
      const reply = this.#ownEvents(head, event);
      this.#prune(event);
      if (reply.error === null && head.command.cmd === "register") {
        this.#registeredPid = head.command.pid;
      }
      this.#registering = false;
      this.#settle(reply);
      return;
    }
    if (event.event !== "error") {
      throw new ProtocolError(`expected server_info after register, got ${event.event}`);
    }
    if (event.code !== "not_registered") {
      // The register line itself was refused; the marker's refusal follows.
      head.ownError ??= event;
      return;
    }
    // The marker was refused, so the register was: by the line itself
    // (its private error came first), or else by the reducer, whose
    // broadcast `already_registered` reached us before the marker's answer.
    // Taken as the server sent it (code, message, version), never rebuilt
    // from its text: the latest such broadcast, since the register and its
    // marker go out in one write, so another connection's refusal rarely
    // lands between them (and would differ only in the pid it names).
    this.#registering = false;
    const error = head.ownError ??
      this.#recent.findLast((e): e is ErrorEvent =>
        e.event === "error" && e.code === "already_registered"
      );
    if (error === undefined) {
      throw new ProtocolError("register refused without an already_registered error from srv");
    }
    this.#settle({ events: [error], error });
  }

  /** The broadcasts a command caused, from the range its marker reports. */
  #ownEvents(head: Pending, info: ServerInfoEvent): Reply {
    const last = info.last_command;
    if (last === undefined) {
      throw new ProtocolError("srv does not report server_info.last_command (too old?)");
    }
    if (last === null || last.cmd !== head.command.cmd) {
      throw new ProtocolError(
        `server_info.last_command is ${last?.cmd ?? "null"}, expected ${head.command.cmd}`,
      );
    }
    const { first, last: lastVersion } = last;
    if (first === null || lastVersion === null) return { events: [], error: null };
    // Versions are numbers or, above 2^53 - 1, bigints (see decodeEvent):
    // comparisons are exact across both, the count is taken in bigint.
    const events = this.#recent.filter((e) => e.version >= first && e.version <= lastVersion);
    if (BigInt(events.length) !== BigInt(lastVersion) - BigInt(first) + 1n) {
      throw new ProtocolError(
        `missing events of ${head.command.cmd}: expected v${last.first}..v${last.last}`,
      );
    }
    const error = events.find((e): e is ErrorEvent => e.event === "error") ?? null;
    return { events, error };
  }

  /** Events up to `info.event_version` cannot belong to a later request. */
  #prune(info: ServerInfoEvent): void {
    this.#recent = this.#recent.filter((e) => e.version > info.event_version);
  }

  #settle(reply: Reply): void {
    this.#pending.shift()!.resolve(reply);
    if (this.#pending.length === 0) this.#recent = [];
  }

  #finish(reason: string): void {
    const wasClosed = this.#closed;
    this.#closed = true;
    if (!wasClosed) this.#conn.close();
    const fatal = this.#fatal;
    const lost = fatal !== null ? `srv closed the connection: ${fatal.message}` : reason;
    this.#closeReason = lost;
    for (const pending of this.#pending.splice(0)) {
      if (pending.kind === "goodbye") {
        // Answered by the close: its event is our pid's process_exited.
        const pid = this.#registeredPid;
        const events = this.#recent.filter((e) => e.event === "process_exited" && e.pid === pid);
        pending.resolve({ events, error: null });
      } else if (pending.ownError?.fatal) {
        pending.reject(new SrvError(pending.ownError));
      } else if (this.#protocolError !== null) {
        pending.reject(this.#protocolError);
      } else {
        pending.reject(new ConnectionLostError(`connection to srv lost: ${lost}`));
      }
    }
    this.#recent = [];
    this.#registeredPid = null;
    this.#hooks.onClose(lost);
  }
}

/** The `name` event of a reply; its `error` as a {@linkcode SrvError}. */
export function eventOf<T extends Event["event"]>(
  reply: Reply,
  name: T,
): Extract<Event, { event: T }> {
  if (reply.error !== null) throw new SrvError(reply.error);
  const found = reply.events.find((e) => e.event === name);
  if (found === undefined) throw new ProtocolError(`expected ${name} in the answer`);
  return found as Extract<Event, { event: T }>;
}
