/**
 * The imperative shell: accept → frame → session → reduce → log → hub. One
 * command is reduced, logged and queued before the next is looked at, so all
 * clients see one order (docs/PROTOCOL.md §7). Output is staged in the current
 * {@linkcode Turn}; `#endTurn` then commits the event history, delivers,
 * starts the writes and closes who asked to go, in that order, so nothing is
 * broadcast before it is durable and nothing is closed before its output.
 *
 * @module
 */

import { getLogger, type Logger } from "../../deps.ts";
import { encodeEvent } from "../core/codec.ts";
import type { ReducerEvent } from "../core/decide.ts";
import { DEFAULT_MAX_REPLY_BYTES, type EventHistory, EventLog } from "../core/event_log.ts";
import { DEFAULT_LIMITS, type Limits } from "../core/limits.ts";
import { DEFAULT_MAX_LINE_BYTES } from "../core/line_splitter.ts";
import { type Event, isLogged, type QueryCommand, type ReducerCommand } from "../core/protocol.ts";
import { update } from "../core/reducer.ts";
import { observerAnswer, privateError, type SessionStep } from "../core/session.ts";
import { initialState, type State } from "../core/state.ts";
import type { Connection, Listener } from "../transport/transport.ts";
import { Client, type Ending } from "./_client.ts";
import { Turn } from "./_turn.ts";
import { Hub } from "./hub.ts";
import { DEFAULT_OUTPUT_LIMITS } from "./peer.ts";
import { Replies } from "./_replies.ts";
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_REGISTER_TIMEOUT_MS,
  DRAIN_DEADLINE_MS,
  type ServerIdentity,
  type ServerOptions,
} from "./server_options.ts";

const encoder = new TextEncoder();

/** Most characters of broadcast lines joined into one unit (see #deliver). */
const RUN_CHARS = 32 * 1024;

/**
 * A running srv: give it a {@linkcode Listener} and it serves the protocol
 * on every connection until {@linkcode Server.shutdown}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openEndpoint, Server } from "@srv/srv/server";
 *
 * // A fresh endpoint: a named pipe on Windows, a socket file elsewhere.
 * const socket = Deno.build.os === "windows"
 *   ? `\\\\.\\pipe\\srv-example-${crypto.randomUUID()}`
 *   : `${Deno.makeTempDirSync()}/srv.sock`;
 * const endpoint = await openEndpoint({
 *   path: socket,
 *   transport: "auto",
 *   os: Deno.build.os,
 *   uid: null,
 * });
 * const server = new Server({
 *   identity: { pid: Deno.pid, version: "0.1.0", instanceId: crypto.randomUUID() },
 * });
 * const done = server.serve(endpoint.listener);
 * assert.equal(server.state.lifecycle, "starting"); // until the first client registers
 * // ... clients connect to `socket`; later:
 * await server.shutdown();
 * await done;
 * endpoint.release();
 * ```
 */
export class Server {
  /** Who this server is. */
  readonly identity: ServerIdentity;
  /** Where logged events go. */
  readonly history: EventHistory;
  /** The store's path, shown as `server_info.store`; null in memory. */
  readonly storePath: string | null;
  /** Longest line a connection may send. */
  readonly maxLineBytes: number;
  /** Most open connections; one more is refused. */
  readonly maxConnections: number;
  /** The tree's size caps. */
  readonly limits: Limits;
  /** Most bytes of one `event_list` reply. */
  readonly maxReplyBytes: number;
  /** How long a connection may stay unregistered, in ms. */
  readonly registerTimeoutMs: number;
  readonly #hub: Hub;
  readonly #clients = new Set<Client>();
  /**
   * Connections open until their output is written or dropped: a client
   * that said goodbye (or was read to its end) may still hold replies for
   * up to the drain deadline, and counts against --max-connections until
   * then, or reconnecting could hold any number of them.
   */
  #open = 0;
  readonly #newId: () => string;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #onFatal: (error: unknown) => void;
  readonly #log: Logger = getLogger(["srv", "server"]);
  #state: State;
  #listener: Listener | null = null;
  #nextConnectionId = 1;
  /** This turn's output, sent by `#endTurn` once the history has committed it. */
  readonly #turn = new Turn();
  #endScheduled = false;
  /** Catch-ups and observers' snapshots, within the budget of unread replies. */
  readonly #replies: Replies;
  #stopping = false;
  #failed = false;

  /** Builds a server; it accepts nothing until {@linkcode Server.serve}. */
  constructor(options: ServerOptions) {
    this.identity = options.identity;
    // The ring need not hold more bytes than one reply can carry.
    this.history = options.history ??
      new EventLog(undefined, options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES);
    this.storePath = options.storePath ?? null;
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
    this.registerTimeoutMs = options.registerTimeoutMs ?? DEFAULT_REGISTER_TIMEOUT_MS;
    this.#state = options.initialState ?? initialState();
    this.#newId = options.newId ?? (() => crypto.randomUUID());
    this.#now = options.now ?? (() => performance.now());
    this.#startedAt = this.#now();
    this.#onFatal = options.onFatal ?? (() => {});
    this.#hub = new Hub(options.outputLimits ?? DEFAULT_OUTPUT_LIMITS);
    this.#replies = new Replies({
      hub: this.#hub,
      turn: this.#turn,
      history: this.history,
      identity: this.identity,
      maxReplyBytes: this.maxReplyBytes,
      state: () => this.#state,
    });
  }

  /**
   * The current state. It is live: the server keeps updating its maps and
   * the child lists of its workspaces and tabs (`tabIds`, `blockIds`) in
   * place, so copy what you need to keep (e.g. `snapshotOf(server.state)`).
   */
  get state(): State {
    return this.#state;
  }

  /** Open client connections. */
  get connectionCount(): number {
    return this.#clients.size;
  }

  /**
   * Accepts and serves connections until the listener closes. Rejects, after
   * shutting down, if the listener fails for good.
   */
  async serve(listener: Listener): Promise<void> {
    this.#listener = listener;
    const served = new Set<Promise<void>>();
    try {
      for await (const conn of listener) {
        if (this.#stopping) {
          conn.close();
          break;
        }
        const done = this.#accept(conn);
        served.add(done);
        done.finally(() => served.delete(done));
      }
    } catch (error) {
      // Not a shortage the transport retries (out of descriptors) but the
      // listener itself failing: stop cleanly instead of serving on deaf.
      this.#log.error("cannot accept connections any more: {error}", { error });
      await this.shutdown();
      throw error;
    } finally {
      await Promise.allSettled(served);
    }
  }

  /**
   * Stops accepting, sends what is queued (up to `deadlineMs`), then closes
   * every connection. Registered clients get no synthetic goodbye: the
   * server, not the client, is going away.
   */
  async shutdown(deadlineMs: number = DRAIN_DEADLINE_MS): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#listener?.close();
    this.#endTurn();
    const outboxes = [...this.#clients].map((client) => client.outbox);
    for (const outbox of outboxes) outbox.closeWhenDrained(deadlineMs);
    await Promise.all(outboxes.map((p) => p.closed));
  }

  #accept(conn: Connection): Promise<void> {
    const client = new Client(this.#nextConnectionId++, conn, this.maxLineBytes);
    if (this.#open >= this.maxConnections) {
      this.#log.warn("refused connection {conn}: {max} connections already open", {
        conn: client.id,
        max: this.maxConnections,
      });
      const refusal = privateError(
        "invalid_command",
        `too many connections (limit ${this.maxConnections}); try again later`,
        true,
      );
      // Never served, never judged by the hub: its one line, then close.
      this.#stage(client, encodeEvent(refusal));
      this.#closeAfterTurn(client);
      this.#endTurn();
      return client.outbox.closed;
    }
    client.registerTimer = setTimeout(() => {
      client.registerTimer = undefined;
      this.#apply(client, client.session.registerTimedOut(this.registerTimeoutMs));
    }, this.registerTimeoutMs);
    this.#clients.add(client);
    this.#open++;
    client.outbox.closed.then(() => this.#open--);
    this.#hub.add(client.outbox, () => client.evicted());
    this.#log.debug("connection {conn} opened", { conn: client.id });
    return this.#readLoop(client);
  }

  async #readLoop(client: Client): Promise<void> {
    const { outbox, session, splitter } = client;
    const onLine = (line: string | Uint8Array) => this.#handleLine(client, line);
    const soft = this.#hub.limits.softBytes;
    try {
      // Once shutdown starts, nothing new is reduced: only queued output drains.
      while (!session.ended && !outbox.isClosed && !this.#stopping) {
        if (splitter.holding || this.#isBehind(client)) {
          // Backpressure (docs/PROTOCOL.md §10): the client has more unread
          // output than its soft limit, its own replies included. Read
          // none of its commands (not even the rest of the chunk at hand)
          // until it catches up; if it never does, the hub evicts it.
          this.#endTurn();
          await outbox.whenBelow(soft);
          if (outbox.isClosed || this.#stopping || this.#failed) break;
          if (splitter.holding) {
            if (!splitter.resume(onLine)) {
              this.#apply(client, session.lineTooLong(this.maxLineBytes));
            }
            continue;
          }
        }
        let chunk: Uint8Array | null;
        try {
          chunk = await client.read();
        } catch (e) {
          // A client that crashes resets its socket: expected, not srv's fault.
          client.endWith("debug", `read error: ${(e as Error).message}`);
          break;
        }
        if (outbox.isClosed || this.#stopping) break; // evicted, write failed, or shutting down
        if (chunk === null) {
          const unfinished = splitter.pendingBytes;
          splitter.finish(onLine);
          client.endWith(
            "debug",
            unfinished > 0 ? `end of stream after an unfinished line` : "end of stream",
          );
          break;
        }
        if (!splitter.pushText(chunk, onLine)) {
          this.#apply(client, session.lineTooLong(this.maxLineBytes));
        }
      }
    } catch (e) {
      // A bug in srv, not anything the client did: drop this connection and
      // keep serving the others.
      client.endWith("error", "internal error while handling its input", e);
    }
    if (outbox.isClosed) {
      // Closed by the hub with output still unsent (drain deadline): the
      // client lost events, which the operator should hear about.
      const level = outbox.unsentAtClose > 0 ? "warn" : "debug";
      client.endWith(level, outbox.closeReason ?? "closed");
    }
    if (this.#stopping) client.endWith("debug", "server shutting down");
    this.#disconnect(client);
  }

  /**
   * Whether the client has more output unread than its soft limit, counting
   * what this turn staged for it: it must not be read until it catches up.
   */
  #isBehind(client: Client): boolean {
    return client.outbox.pendingBytes + this.#turn.bytesFor(client) > this.#hub.limits.softBytes;
  }

  #handleLine(client: Client, line: string | Uint8Array): boolean {
    this.#apply(client, client.session.receiveLine(line));
    // Stop splitting the chunk once the session is over (goodbye, fatal),
    // or once the client is too far behind to be read on (see #readLoop).
    return !client.session.ended && !this.#failed && !this.#isBehind(client);
  }

  #apply(client: Client, step: SessionStep): void {
    switch (step.kind) {
      case "ignore":
        return;
      case "reply":
        this.#stage(client, encodeEvent(step.event));
        if (step.close) {
          client.endWith("warn", `fatal ${step.event.code}: ${step.event.message}`);
          this.#closeAfterTurn(client);
        } else {
          // Expected client mistakes: debug only, so a client sending garbage
          // cannot flood the log.
          this.#log.debug("connection {conn} (kind={kind}, pid={pid}): {code}: {message}", {
            conn: client.id,
            ...client.who(),
            code: step.event.code,
            message: step.event.message,
          });
        }
        return;
      case "query":
        this.#stage(client, this.#answer(client, step.command));
        return;
      case "observe": {
        if (step.command.cmd === "get_srv_snapshot") {
          const shared = this.#replies.observerSnapshot(client);
          if (typeof shared === "string") {
            this.#log.debug("connection {conn}: {message}", { conn: client.id, message: shared });
            this.#stage(client, encodeEvent(privateError("invalid_command", shared, false)));
          } else {
            this.#turn.stageShared(client, shared.line, shared.charge);
            this.#scheduleEndTurn();
          }
          return;
        }
        // An observer (§11.1) changes nothing: answered from the state, privately.
        const answer = observerAnswer(this.#state, step.command, this.identity);
        if (answer !== null) this.#stage(client, encodeEvent(answer));
        if (step.command.cmd === "register") client.stopRegisterTimer();
        if (step.command.cmd === "goodbye") {
          client.endWith("debug", "goodbye");
          this.#closeAfterTurn(client);
        }
        return;
      }
      case "reduce": {
        const pid = client.session.identity?.pid ?? null;
        const events = this.#reduce(step.command, pid, client);
        // A failed batch's private error (version 0) used no version.
        const versions = events.filter((e) => e.version !== 0);
        client.lastCommand = {
          cmd: step.command.cmd,
          first: versions[0]?.version ?? null,
          last: versions.at(-1)?.version ?? null,
        };
        const { close } = client.afterReduce(step.command, events);
        if (close) {
          client.endWith("debug", "goodbye");
          this.#closeAfterTurn(client);
        }
        return;
      }
      default: {
        const unhandled: never = step;
        throw new Error(`unknown session step ${(unhandled as SessionStep).kind}`);
      }
    }
  }

  /**
   * Runs the reducer and stages its events as they are: log, broadcast. The
   * server's identity reaches `registered` through the context, so the
   * event logged, broadcast and replayed is the one `decide` returned.
   */
  #reduce(
    command: ReducerCommand,
    registeredPid: number | null,
    sender: Client | null,
  ): ReducerEvent[] {
    // The server owns its state outright, so the reducer may update it in place.
    const { state, events, lines } = update(this.#state, command, {
      registeredPid,
      identity: this.identity,
      newId: this.#newId,
      limits: this.limits,
      // A batch is queued to everyone in one turn: half the hard limit, as
      // for a catch-up, so its events alone never evict a connection.
      maxBatchBytes: this.#hub.limits.hardBytes / 2,
    }, { owned: true });
    this.#state = state;
    // The state may have changed in place: an observer's next snapshot is encoded afresh.
    this.#replies.forgetSnapshot();
    for (let i = 0; i < events.length; i++) {
      const event = events[i];
      // A batch's events come encoded: decideBatch measured them that way.
      const json = lines?.[i] ?? encodeEvent(event);
      if (isLogged(event)) {
        this.history.append({ version: event.version, json, event });
        this.#turn.stageLogged(json);
        this.#scheduleEndTurn();
      } else {
        // Version 0 is out of the stream: a failed batch's error, for its
        // sender only (docs/PROTOCOL.md §11.3).
        this.#stage(event.version === 0 ? sender : null, json);
      }
    }
    return events;
  }

  #answer(client: Client, command: QueryCommand): string | Uint8Array {
    if (command.cmd === "get_events") return this.#replies.catchUp(client, command.since);
    const info: Event = {
      event: "server_info",
      pid: this.identity.pid,
      server_version: this.identity.version,
      instance_id: this.identity.instanceId,
      uptime_ms: Math.round(this.#now() - this.#startedAt),
      connections: this.#clients.size,
      event_version: this.#state.eventVersion,
      log: this.history.stats(),
      store: this.storePath,
      last_command: client.lastCommand,
      version: 0,
    };
    return encodeEvent(info);
  }

  /** Stages a line: JSON without its `\n`, or (private only) a whole encoded line. */
  #stage(target: Client | null, json: string | Uint8Array): void {
    this.#turn.stage(target, json);
    this.#scheduleEndTurn();
  }

  /** Closes a connection at the end of this turn, once its output (goodbye, fatal error) is queued. */
  #closeAfterTurn(client: Client): void {
    this.#turn.closing.push(client);
    this.#scheduleEndTurn();
  }

  /** The turn ends once the input at hand is handled: after the current task. */
  #scheduleEndTurn(): void {
    if (this.#endScheduled) return;
    this.#endScheduled = true;
    queueMicrotask(() => this.#endTurn());
  }

  /**
   * Ends the turn, in this order: the history commits the turn's events
   * (durable before broadcast), every staged line goes to the hub, the hub
   * starts one write per connection, and only then are the connections
   * that asked to go closed (they drain their output first). Called at the
   * scheduled end, and early wherever the server must see this turn out
   * before it waits (backpressure, a refused connection, shutdown).
   */
  #endTurn(): void {
    this.#endScheduled = false;
    const turn = this.#turn;
    if (turn.isEmpty) return;
    if (this.#failed) {
      // #fail closed every connection; nothing more goes out.
      turn.clear();
      return;
    }
    if (turn.lines.length > 0) {
      try {
        this.history.commit(this.#state);
      } catch (error) {
        this.#fail(error);
        return;
      }
      this.#deliver(turn);
      this.#hub.flush();
    }
    for (const client of turn.closing) {
      this.#hub.remove(client.outbox);
      client.outbox.closeWhenDrained(DRAIN_DEADLINE_MS);
    }
    // The hub never stages anything, so nothing was added while we walked.
    turn.clear();
  }

  /** Hands every line of the turn to the hub, in order. */
  #deliver(turn: Turn): void {
    // Consecutive broadcasts become one unit, encoded once for everyone:
    // one allocation per turn instead of one per event. A private line
    // between them keeps its place in its connection's stream. Units stay
    // small (RUN_CHARS): joining big events gains nothing and only makes
    // large short-lived strings that inflate the heap; a big event is a
    // unit of its own, which the hub writes to every peer without a copy.
    const { to, lines } = turn;
    // The common busy turn (commands whose events are all logged and for
    // everyone): the history already holds their lines in UTF-8, one after
    // another, so everyone gets that view, not a second encoding of them.
    const logged = turn.onlyLogged ? this.history.newestLines?.(lines.length) : null;
    if (logged) {
      this.#hub.broadcast({ bytes: logged, events: lines.length });
      return;
    }
    let run = "";
    let events = 0;
    for (let i = 0; i < lines.length; i++) {
      const json = lines[i];
      const target = to[i];
      if (target === null) {
        if (events > 0 && run.length + json.length > RUN_CHARS) {
          this.#hub.broadcast({ bytes: encoder.encode(run), events });
          run = "";
          events = 0;
        }
        run += json + "\n";
        events++;
        continue;
      }
      if (events > 0) {
        this.#hub.broadcast({ bytes: encoder.encode(run), events });
        run = "";
        events = 0;
      }
      if (typeof json === "string") {
        this.#hub.send(target.outbox, {
          bytes: encoder.encode(json + "\n"),
          events: 1,
          private: true,
        });
      } else {
        const shared = turn.sharedCharge(json);
        this.#hub.send(target.outbox, { bytes: json, events: 1, private: true, shared });
      }
    }
    if (events > 0) this.#hub.broadcast({ bytes: encoder.encode(run), events });
  }

  /** The history could not commit: send nothing more, close everything. */
  #fail(error: unknown): void {
    this.#failed = true;
    this.#stopping = true;
    this.#turn.clear();
    this.#listener?.close();
    for (const client of this.#clients) client.outbox.close();
    this.#onFatal(error);
  }

  /**
   * The one place a connection's end is logged, once, with its cause. Then
   * the synthetic goodbye for a registered pid (docs/PROTOCOL.md §5).
   */
  #disconnect(client: Client): void {
    const who = client.who();
    const ending: Ending = client.ending ?? { level: "debug", reason: "closed" };
    const props = { conn: client.id, ...who, reason: ending.reason };
    if (ending.level === "error") {
      this.#log.error("connection {conn} (kind={kind}, pid={pid}) dropped: {reason}: {error}", {
        ...props,
        error: ending.error,
      });
    } else {
      this.#log[ending.level]("connection {conn} (kind={kind}, pid={pid}) closed: {reason}", props);
    }
    const goodbye = client.session.disconnect();
    client.stopRegisterTimer();
    this.#clients.delete(client);
    try {
      if (goodbye !== null && !this.#stopping) this.#reduce(goodbye, who.pid, null);
    } catch (e) {
      // A bug in srv: say so, but never let it take the process down.
      this.#log.error("synthetic goodbye for connection {conn} failed: {error}", {
        conn: client.id,
        error: e,
      });
    }
    this.#closeAfterTurn(client);
  }
}
