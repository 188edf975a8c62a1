/**
 * The srv client for scripts and tools: {@linkcode connect}, register, send
 * commands and get back exactly the events each one caused, and follow the
 * event stream across dropped connections and server restarts.
 *
 * Two rules carry it (the README's "Scripting" section has the long form):
 *
 * - **Reply matching.** The server answers one connection's lines in order.
 *   A reducer command is sent with a `get_server_info` right behind it; the
 *   private answer ends the command's output and its `last_command` names
 *   the versions the command's events took. Other clients' broadcasts that
 *   arrive in between are never mistaken for ours.
 * - **Resync.** After a drop the client reconnects with backoff, registers
 *   again, holds back live events, asks `get_events` from the last logged
 *   version it delivered (one before it, to prove the history is the same
 *   one), delivers the replay, then the held events above the replay's
 *   version, and drops duplicates by version. When the history is truncated
 *   or is not the one it knew (a fresh `--memory` server), it takes a
 *   snapshot and says so with a `resync` item instead.
 *
 * @example
 * ```ts ignore
 * import { connect } from "./connect.ts";
 * await using client = await connect({ socket: "/tmp/srv-demo/srv.sock" });
 * await client.register({ kind: "tool" });
 * const [ws] = await client.command({ cmd: "create_workspace", name: "main" });
 * const [tab] = await client.command({ cmd: "create_tab", workspace_id: ws.workspace_id, name: "shell" });
 * console.log(ws.workspace_id, tab.event === "tab_created" ? tab.tab_id : "");
 * ```
 *
 * @module
 */

import type { CommandEventMap } from "../core/command_schema.ts";
import {
  type BatchCommand,
  type Command,
  type DomainCommand,
  type DomainEvent,
  type EventListEvent,
  type PongEvent,
  type RegisterCommand,
  type RegisteredEvent,
  type ServerInfoEvent,
  type SrvSnapshotEvent,
  type U64,
} from "../core/protocol.ts";
import type { Connection } from "../transport/transport.ts";
import { SRV_VERSION } from "../version.ts";
import { EventStream } from "./_event_stream.ts";
import { type EventsOptions, EventSubscription, type StreamItem } from "./_event_subscription.ts";
import { eventOf, Link, type Reply } from "./_link.ts";
import { dialEndpoint, dialOrExplain } from "./dial.ts";
import { batchErrorOf, ConnectionLostError, SrvError } from "./errors.ts";
import type {
  BatchOptions,
  ClientStatus,
  ConnectOptions,
  ReconnectOptions,
  RegisterOptions,
} from "./options.ts";

export type { Reply } from "./_link.ts";

/** How long `close()` waits for the server to acknowledge `goodbye`. */
const GOODBYE_TIMEOUT_MS = 2000;

/**
 * A connection to srv, as a script sees it. Get one from
 * {@linkcode connect}, then {@linkcode SrvClient.register}.
 *
 * Every command helper resolves with the events that command caused, in
 * order, after they have been offered to {@linkcode SrvClient.events}
 * streams; an `error` from the server rejects with {@linkcode SrvError}.
 * {@linkcode SrvClient.send} returns errors as values instead. A command
 * whose connection drops before the answer rejects with
 * {@linkcode ConnectionLostError}; commands sent while the client
 * reconnects wait for it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, SrvError } from "@srv/srv/client";
 * import { openEndpoint, Server } from "@srv/srv/server";
 *
 * // An in-process server, so the example runs.
 * // Its endpoint: a named pipe on Windows, a socket file elsewhere.
 * const socket = Deno.build.os === "windows"
 *   ? `\\\\.\\pipe\\srv-example-${crypto.randomUUID()}`
 *   : `${Deno.makeTempDirSync()}/srv.sock`;
 * const endpoint = await openEndpoint({
 *   path: socket,
 *   transport: "auto",
 *   os: Deno.build.os,
 *   uid: null,
 * });
 * const identity = { pid: Deno.pid, version: "0.1.0", instanceId: crypto.randomUUID() };
 * const server = new Server({ identity });
 * const served = server.serve(endpoint.listener);
 *
 * const client = await connect({ socket });
 * await client.register({ kind: "tool" });
 * const stream = client.events({ since: 0 }); // replay from the start, then live
 *
 * const [created] = await client.command({ cmd: "create_workspace", name: "main" });
 * assert.equal(created.event, "workspace_created");
 * await assert.rejects(
 *   client.command({ cmd: "rename_tab", tab_id: "no-such-tab", name: "x" }),
 *   SrvError,
 * );
 * const reply = await client.send({ cmd: "rename_tab", tab_id: "no-such-tab", name: "x" });
 * assert.equal(reply.error?.code, "invalid_command"); // errors as values
 *
 * const seen: string[] = [];
 * for await (const item of stream) {
 *   if (item.type === "event") seen.push(item.event.event);
 *   if (seen.includes("workspace_created")) break;
 * }
 * assert.deepEqual(seen.slice(0, 3), ["process_spawned", "lifecycle_phase_changed", "registered"]);
 * assert.equal((await client.snapshot()).workspaces[0][1], "main");
 *
 * await client.close();
 * await server.shutdown();
 * await served;
 * endpoint.release();
 * ```
 */
export class SrvClient implements AsyncDisposable {
  /** The endpoint this client talks to. */
  readonly socket: string;
  readonly #dial: (path: string) => Promise<Connection>;
  readonly #backoff: Required<ReconnectOptions> | null;
  readonly #onStatus: (status: ClientStatus) => void;
  #link: Link;
  #state: "open" | "reconnecting" | "closed" = "open";
  #registration: Required<Omit<RegisterOptions, "observe">> & { observe?: true } | null = null;
  #registered: RegisteredEvent | null = null;
  /** Requests wait on this while a register is in flight. */
  #registering: Promise<unknown> | null = null;
  /** Set while reconnecting; resolves when requests may flow again. */
  #ready: PromiseWithResolvers<void> | null = null;
  #reconnecting: Promise<void> | null = null;
  #cancelWait: (() => void) | null = null;
  #closing: Promise<Reply> | null = null;
  #failure: Error | null = null;
  readonly #stream = new EventStream();

  /** Use {@linkcode connect}. */
  constructor(socket: string, conn: Connection, options: ConnectOptions = {}) {
    this.socket = socket;
    this.#dial = options.dial ?? dialEndpoint;
    const reconnect = options.reconnect ?? true;
    this.#backoff = reconnect === false ? null : {
      initialDelayMs: (reconnect === true ? undefined : reconnect.initialDelayMs) ?? 50,
      maxDelayMs: (reconnect === true ? undefined : reconnect.maxDelayMs) ?? 2000,
    };
    this.#onStatus = options.onStatus ?? (() => {});
    this.#link = this.#attach(conn);
  }

  /** The latest `registered` event of this client (it changes on reconnect). */
  get registered(): RegisteredEvent | null {
    return this.#registered;
  }

  /** The server instance this client is registered with, or null. */
  get instanceId(): string | null {
    return this.#registered?.instance_id ?? null;
  }

  /** Version of the last logged event the stream delivered (0 before any). */
  get lastVersion(): number {
    return this.#stream.lastLogged;
  }

  /** True once {@linkcode SrvClient.close} ran or the connection is gone for good. */
  get closed(): boolean {
    return this.#state === "closed";
  }

  #attach(conn: Connection): Link {
    const link: Link = new Link(conn, {
      onBroadcast: (event) => {
        if (this.#link === link) this.#stream.onBroadcast(event);
      },
      onClose: (reason) => {
        if (this.#link === link) this.#onLinkClosed(reason);
      },
    });
    return link;
  }

  // -------------------------------------------------------------------------
  // Requests

  /**
   * Registers (docs/PROTOCOL.md §5). After a reconnect the client registers
   * again with the same values by itself.
   *
   * @example
   * ```ts ignore
   * const registered = await client.register({ kind: "tool", version: "my-script 1.0" });
   * console.log(registered.client_id, registered.instance_id);
   * ```
   */
  async register(options: RegisterOptions): Promise<RegisteredEvent> {
    return eventOf(
      await this.#register({
        cmd: "register",
        kind: options.kind,
        pid: options.pid ?? Deno.pid,
        version: options.version ?? SRV_VERSION,
        ...(options.observe === true ? { observe: true } : {}),
      }),
      "registered",
    );
  }

  async #register(command: RegisterCommand): Promise<Reply> {
    const attempt = this.#request(command);
    this.#registering = attempt.catch(() => {});
    let reply: Reply;
    try {
      reply = await attempt;
    } finally {
      this.#registering = null;
    }
    const registered = reply.events.find((e) => e.event === "registered");
    if (reply.error === null && registered !== undefined) {
      const { kind, pid, version } = command;
      const observe = command.observe === true ? { observe: true as const } : {};
      this.#registration = { kind, pid, version, ...observe };
      this.#registered = registered;
    }
    return reply;
  }

  /**
   * Sends any command and returns what it caused, errors as values: never
   * rejects because the server said no. `goodbye` closes the client.
   *
   * @example
   * ```ts ignore
   * const reply = await client.send({ cmd: "rename_tab", tab_id: "nope", name: "x" });
   * if (reply.error) console.log(reply.error.code, reply.error.message);
   * ```
   */
  async send(command: Command): Promise<Reply> {
    if (command.cmd === "goodbye") return await this.#close();
    if (command.cmd === "register") return await this.#register(command);
    return await this.#request(command);
  }

  async #request(command: Command): Promise<Reply> {
    while (true) {
      if (this.#state === "closed") {
        throw new ConnectionLostError(
          this.#failure ? `client closed: ${this.#failure.message}` : "client is closed",
        );
      }
      if (this.#state === "reconnecting") {
        await this.#ready!.promise;
        continue;
      }
      if (this.#registering !== null && command.cmd !== "register") {
        await this.#registering;
        continue;
      }
      return await this.#link.request(command);
    }
  }

  /**
   * Sends a domain command; resolves with its events (possibly none: a
   * delete of something unknown changes nothing), rejects with
   * {@linkcode SrvError} when the server refuses it. The one way a script
   * changes the tree: the command is an object literal whose fields are
   * named (two ids cannot be swapped unnoticed), and the result is typed by
   * the command registry's {@linkcode CommandEventMap}.
   *
   * @example
   * ```ts ignore
   * const events = await client.command({ cmd: "create_workspace", name: "main" });
   * console.log(events[0].workspace_id);
   * ```
   */
  async command<C extends DomainCommand>(command: C): Promise<CommandEventMap[C["cmd"]][]> {
    const reply = await this.#request(command);
    if (reply.error !== null) throw new SrvError(reply.error);
    return reply.events as CommandEventMap[C["cmd"]][];
  }

  /**
   * `batch` (protocol 2, docs/PROTOCOL.md §11.3): the commands applied all or
   * nothing, their events one contiguous run, each with `batch_end` (none
   * when nothing changed). With `ifUnchangedSince: V` it applies only if
   * nothing the commands name changed after version V, else it rejects
   * with {@linkcode BatchConflictError}; a command that would fail rejects
   * it with {@linkcode BatchFailedError}. A rejected batch applied nothing.
   * An empty `commands` has nothing to apply (and the protocol has no empty
   * batch): it resolves with `[]` at once and sends nothing, so neither the
   * condition nor the connection is checked.
   *
   * @example
   * ```ts ignore
   * const events = await client.batch(commands, { ifUnchangedSince: snapshot.version });
   * console.log(events.at(-1)?.batch_end); // the version of its last event
   * ```
   */
  async batch(commands: DomainCommand[], options: BatchOptions = {}): Promise<DomainEvent[]> {
    if (commands.length === 0) return [];
    const since = options.ifUnchangedSince;
    const command: BatchCommand = since === undefined
      ? { cmd: "batch", commands }
      : { cmd: "batch", commands, if_unchanged_since: since };
    const reply = await this.#request(command);
    if (reply.error !== null) throw batchErrorOf(reply.error);
    return reply.events as DomainEvent[];
  }

  /**
   * `ping`: resolves with the `pong` carrying `nonce` (random by default).
   *
   * @example
   * ```ts ignore
   * const pong = await client.ping(18446744073709551615n);
   * console.log(pong.nonce); // 18446744073709551615n, digit for digit
   * ```
   */
  async ping(nonce?: U64): Promise<PongEvent> {
    const n = nonce ?? crypto.getRandomValues(new Uint32Array(1))[0];
    return eventOf(await this.#request({ cmd: "ping", nonce: n }), "pong");
  }

  /**
   * `get_srv_snapshot`: the whole tree, at the snapshot's version.
   *
   * @example
   * ```ts ignore
   * const snap = await client.snapshot();
   * console.log(snap.workspaces, snap.version);
   * ```
   */
  async snapshot(): Promise<SrvSnapshotEvent> {
    return eventOf(await this.#request({ cmd: "get_srv_snapshot" }), "srv_snapshot");
  }

  /**
   * `get_events{since}`: the logged events after `since`; `truncated` says
   * some are gone (take a snapshot instead).
   *
   * @example
   * ```ts ignore
   * const list = await client.getEvents(0);
   * console.log(list.events.length, list.truncated, list.version);
   * ```
   */
  async getEvents(since: U64): Promise<EventListEvent> {
    return eventOf(await this.#request({ cmd: "get_events", since }), "event_list");
  }

  /**
   * `get_server_info` (extension): pid, version, instance, uptime, log and
   * store of the server.
   *
   * @example
   * ```ts ignore
   * const info = await client.serverInfo();
   * console.log(info.server_version, info.event_version, info.store);
   * ```
   */
  async serverInfo(): Promise<ServerInfoEvent> {
    return eventOf(await this.#request({ cmd: "get_server_info" }), "server_info");
  }

  // -------------------------------------------------------------------------
  // The event stream

  /**
   * The logged events, in version order, across reconnects: each one once,
   * none missed, or a `resync` item with a snapshot when that cannot be
   * promised. Unlogged broadcasts (other clients' errors and snapshots) are
   * not part of it. Each call is an independent consumer with its own
   * queue, which grows while the consumer lags (the connection itself is
   * always read, so srv never evicts it for that); `break` out of the loop
   * to stop it. It ends when the client
   * closes, and throws {@linkcode ConnectionLostError} when the connection
   * is gone for good (reconnect disabled).
   *
   * @example
   * ```ts ignore
   * let state = initialState();
   * for await (const item of client.events({ snapshot: true })) {
   *   if (item.type === "resync") state = stateFromSnapshot(item.snapshot);
   *   else state = evolve(state, item.event);
   * }
   * ```
   */
  events(options: EventsOptions = {}): AsyncIterableIterator<StreamItem> {
    const joining = options.since !== undefined || options.snapshot === true;
    const subscription: EventSubscription = new EventSubscription(
      joining,
      () => this.#stream.subscriptions.delete(subscription),
    );
    if (this.#state === "closed") {
      subscription.end(this.#failure);
      return subscription;
    }
    this.#stream.subscriptions.add(subscription);
    if (joining) this.#stream.join(subscription, options.since, this);
    return subscription;
  }

  // -------------------------------------------------------------------------
  // Reconnect and resync

  #onLinkClosed(reason: string): void {
    if (this.#state !== "open") return;
    this.#onStatus({ state: "disconnected", reason });
    if (this.#backoff === null || this.#registration === null) {
      this.#shutDown(new ConnectionLostError(`connection to srv lost: ${reason}`));
      return;
    }
    this.#state = "reconnecting";
    this.#ready = Promise.withResolvers<void>();
    this.#ready.promise.catch(() => {});
    this.#reconnecting = this.#reconnectLoop();
  }

  async #reconnectLoop(): Promise<void> {
    const backoff = this.#backoff!;
    let delay = backoff.initialDelayMs;
    for (let attempt = 1; this.#state === "reconnecting"; attempt++) {
      if (!(await this.#wait(delay))) return;
      delay = Math.min(delay * 2, backoff.maxDelayMs);
      let conn: Connection;
      try {
        conn = await dialOrExplain(this.#dial, this.socket);
      } catch (e) {
        this.#onStatus({ state: "retrying", attempt, error: (e as Error).message });
        continue;
      }
      if (this.#state !== "reconnecting") {
        conn.close();
        return;
      }
      const link = this.#attach(conn);
      this.#link = link;
      this.#stream.holding = [];
      try {
        const resynced = await this.#resync(link);
        if (this.#state !== "reconnecting") {
          // close() ran while we caught up: do not revive a closed client.
          link.close("client closed");
          return;
        }
        this.#state = "open";
        this.#ready!.resolve();
        this.#ready = null;
        this.#onStatus({ state: "reconnected", instanceId: this.instanceId ?? "", resynced });
        return;
      } catch (e) {
        this.#stream.holding = null;
        link.close(`resync failed: ${(e as Error).message}`);
        await link.done;
        if (this.#state === "reconnecting") {
          this.#onStatus({ state: "retrying", attempt, error: (e as Error).message });
        }
      }
    }
  }

  /** Sleeps `ms`, or returns false at once when the client closes. */
  #wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#cancelWait = null;
        resolve(true);
      }, ms);
      this.#cancelWait = () => {
        clearTimeout(timer);
        this.#cancelWait = null;
        resolve(false);
      };
    });
  }

  /**
   * Registers on a fresh connection and catches the stream up (the
   * module's "Resync" rule, {@linkcode EventStream.catchUp}). Returns true
   * when the stream resumed from a snapshot.
   */
  async #resync(link: Link): Promise<boolean> {
    const reply = await link.request({ cmd: "register", ...this.#registration! });
    this.#registered = eventOf(reply, "registered");
    return await this.#stream.catchUp(link);
  }

  // -------------------------------------------------------------------------
  // Closing

  /**
   * Says `goodbye` (when registered), waits for the server to close the
   * connection, stops reconnecting and ends every event stream.
   *
   * @example
   * ```ts ignore
   * await client.close();
   * ```
   */
  async close(): Promise<void> {
    await this.#close();
  }

  /** `await using client = await connect()` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #close(): Promise<Reply> {
    this.#closing ??= (async () => {
      const wasOpen = this.#state === "open";
      this.#state = "closed";
      this.#cancelWait?.();
      this.#ready?.reject(new ConnectionLostError("client closed while reconnecting"));
      let reply: Reply = { events: [], error: null };
      const link = this.#link;
      if (wasOpen && link.registeredPid !== null && !link.closed) {
        const timer = setTimeout(() => link.close("no answer to goodbye"), GOODBYE_TIMEOUT_MS);
        try {
          reply = await link.request({ cmd: "goodbye" });
        } catch {
          // Gone already: nothing to say goodbye to.
        } finally {
          clearTimeout(timer);
        }
      }
      link.close();
      await link.done;
      await this.#reconnecting;
      for (const subscription of this.#stream.subscriptions) subscription.end(null);
      this.#stream.subscriptions.clear();
      return reply;
    })();
    return this.#closing;
  }

  /** The connection is gone and will not come back. */
  #shutDown(error: Error): void {
    this.#state = "closed";
    this.#failure = error;
    for (const subscription of this.#stream.subscriptions) subscription.end(error);
    this.#stream.subscriptions.clear();
  }
}
