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
 * import { connect } from "./client.ts";
 * await using client = await connect({ socket: "/tmp/srv-demo/srv.sock" });
 * await client.register({ kind: "tool" });
 * const [ws] = await client.createWorkspace("main");
 * const [tab] = await client.createTab(ws.workspace_id, "shell");
 * console.log(ws.workspace_id, tab.event === "tab_created" ? tab.tab_id : "");
 * ```
 *
 * @module
 */

import { Link, type Reply } from "./_link.ts";
import { ConnectionLostError, ProtocolError, SrvError, UnreachableError } from "./errors.ts";
import {
  defaultDataDir,
  isPipeName,
  readResolutionEnv,
  resolveEndpoint,
} from "../transport/endpoint.ts";
import {
  type ActiveTabChangedEvent,
  type BlockCreatedEvent,
  type BlockDeletedEvent,
  type BlockMetaUpdatedEvent,
  type BlockMovedEvent,
  type ClientKind,
  type Command,
  type DomainCommand,
  type Event,
  type EventListEvent,
  isLogged,
  type Json,
  type JsonObject,
  type LoggedEvent,
  type PongEvent,
  type RegisterCommand,
  type RegisteredEvent,
  type ServerInfoEvent,
  type SrvSnapshotEvent,
  type TabCreatedEvent,
  type TabDeletedEvent,
  type TabMetaUpdatedEvent,
  type TabMovedEvent,
  type TabRenamedEvent,
  type TabReorderedEvent,
  type TabsReorderedBulkEvent,
  type U64,
  type WorkspaceCreatedEvent,
  type WorkspaceDeletedEvent,
  type WorkspaceMetaUpdatedEvent,
  type WorkspaceRenamedEvent,
} from "../core/protocol.ts";
import { encodeEvent } from "../core/codec.ts";
import type { Connection } from "../transport/transport.ts";
import { connectNamedPipe } from "../transport/node_net.ts";
import { UnixConnection } from "../transport/unix.ts";
import { SRV_VERSION } from "../version.ts";

export type { Reply } from "./_link.ts";

/** How long `close()` waits for the server to acknowledge `goodbye`. */
const GOODBYE_TIMEOUT_MS = 2000;

/** Backoff between reconnect attempts. */
export interface ReconnectOptions {
  /** Wait before the first attempt, in ms (default 50). */
  readonly initialDelayMs?: number;
  /** The wait doubles per failed attempt up to this, in ms (default 2000). */
  readonly maxDelayMs?: number;
}

/** A change in the client's connection, for logs and progress output. */
export type ClientStatus =
  /** The connection dropped; a reconnect follows when enabled. */
  | { readonly state: "disconnected"; readonly reason: string }
  /** An attempt to reconnect failed; the next one comes after `delayMs`. */
  | { readonly state: "retrying"; readonly attempt: number; readonly error: string }
  /** Connected, registered and caught up again. */
  | {
    readonly state: "reconnected";
    readonly instanceId: string;
    /** True when the stream resumed from a snapshot (a `resync` item). */
    readonly resynced: boolean;
  };

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /**
   * The endpoint. Default: like `srv serve`, `$SRV_SOCKET`, then
   * `$AGENTMUX_SRV_PIPE_PATH`, then the per-user default.
   */
  readonly socket?: string;
  /**
   * Reconnect after a drop (default true, with the default backoff). Only a
   * registered client reconnects; it registers again with the same kind,
   * pid and version.
   */
  readonly reconnect?: boolean | ReconnectOptions;
  /** Opens a connection to `path`; {@linkcode dialEndpoint} by default. */
  readonly dial?: (path: string) => Promise<Connection>;
  /** Told about drops and reconnects. */
  readonly onStatus?: (status: ClientStatus) => void;
}

/** What {@linkcode SrvClient.register} sends. */
export interface RegisterOptions {
  readonly kind: ClientKind;
  /** Default: this process's pid. */
  readonly pid?: number;
  /** The client's version string. Default: srv's version. */
  readonly version?: string;
}

/**
 * One item of {@linkcode SrvClient.events}: a logged event, in version
 * order, none missed and none twice; or a snapshot to start (over) from:
 * asked for (`requested`), or because the events in between are no longer
 * retained (`truncated`), or because the server's history is not the one
 * the stream followed (`diverged`: a server without a store restarted).
 * Events after a `resync` item follow the snapshot's version.
 */
export type StreamItem =
  | { readonly type: "event"; readonly event: LoggedEvent }
  | {
    readonly type: "resync";
    readonly reason: "requested" | "truncated" | "diverged";
    readonly snapshot: SrvSnapshotEvent;
  };

/** Options of {@linkcode SrvClient.events}. Default: live events from now on. */
export interface EventsOptions {
  /** Replay the logged events after this version first, then follow live ones. */
  readonly since?: U64;
  /**
   * Start with a `resync` item carrying a fresh snapshot, then the events
   * after it: everything a mirror of the tree needs. Ignored with `since`.
   */
  readonly snapshot?: boolean;
}

/** The events each domain command can cause (an `error` rejects instead). */
export interface CommandEventMap {
  create_workspace: WorkspaceCreatedEvent;
  delete_workspace: WorkspaceDeletedEvent;
  rename_workspace: WorkspaceRenamedEvent;
  create_tab: TabCreatedEvent | ActiveTabChangedEvent;
  delete_tab: TabDeletedEvent | ActiveTabChangedEvent;
  rename_tab: TabRenamedEvent;
  set_active_tab: ActiveTabChangedEvent;
  reorder_tab: TabReorderedEvent;
  reorder_tabs_bulk: TabsReorderedBulkEvent;
  move_tab: TabMovedEvent;
  create_block: BlockCreatedEvent;
  delete_block: BlockDeletedEvent;
  move_block: BlockMovedEvent;
  update_workspace_meta: WorkspaceMetaUpdatedEvent;
  update_tab_meta: TabMetaUpdatedEvent;
  update_block_meta: BlockMetaUpdatedEvent;
}

/**
 * The endpoint a client uses when none is given: the same resolution as
 * `srv serve` (`$SRV_SOCKET`, `$AGENTMUX_SRV_PIPE_PATH`, then the default).
 *
 * @example
 * ```ts ignore
 * import { defaultClientSocket } from "./client.ts";
 * console.log(defaultClientSocket()); // e.g. /run/user/1000/srv/srv.sock
 * ```
 */
export function defaultClientSocket(): string {
  const env = readResolutionEnv();
  const os = Deno.build.os;
  let uid: number | null = null;
  // Only the <tmpdir>/srv-<uid> fallback needs the user id.
  if (os !== "windows" && !env.SRV_SOCKET && !env.AGENTMUX_SRV_PIPE_PATH && !env.XDG_RUNTIME_DIR) {
    try {
      uid = Deno.uid();
    } catch (e) {
      throw new UnreachableError(
        "",
        `the default socket path holds the user id, which needs --allow-sys to read (${
          (e as Error).message
        }); grant it, or pass a socket`,
      );
    }
  }
  const dataDir = defaultDataDir(env, os);
  const endpoint = resolveEndpoint({ env, os, uid, dataDir: dataDir ?? "" });
  if (os === "windows" && endpoint.source === "default" && dataDir === null) {
    throw new UnreachableError(
      "",
      "no data directory to derive srv's pipe name from (LOCALAPPDATA and USERPROFILE are unset); pass a socket",
    );
  }
  return endpoint.path;
}

/**
 * Opens a connection to srv's endpoint: a named pipe (through `node:net`)
 * for a `\\.\pipe\…` name, a Unix socket (`Deno.connect`) otherwise. The
 * default `dial` of {@linkcode connect}; wrap it to observe or gate
 * connections.
 *
 * @example
 * ```ts ignore
 * import { connect, dialEndpoint } from "./client.ts";
 * const client = await connect({
 *   dial: (path) => { console.error("dialing", path); return dialEndpoint(path); },
 * });
 * ```
 */
export async function dialEndpoint(path: string): Promise<Connection> {
  if (isPipeName(path)) return await connectNamedPipe(path);
  return new UnixConnection(await Deno.connect({ transport: "unix", path }));
}

/** Node's error codes (named pipes) mapped to what they mean for a client. */
function nodeErrorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" ? code : undefined;
}

async function dialOrExplain(
  dial: (path: string) => Promise<Connection>,
  path: string,
): Promise<Connection> {
  try {
    return await dial(path);
  } catch (e) {
    const code = nodeErrorCode(e);
    if (e instanceof Deno.errors.NotFound || code === "ENOENT") {
      const what = isPipeName(path) ? "no such pipe there" : "no socket there";
      throw new UnreachableError(path, `no srv at ${path} (${what})`, { cause: e });
    }
    if (e instanceof Deno.errors.ConnectionRefused || code === "ECONNREFUSED") {
      throw new UnreachableError(
        path,
        `no srv at ${path} (connection refused: the socket was left by a server that is gone)`,
        { cause: e },
      );
    }
    if (e instanceof Deno.errors.PermissionDenied || code === "EACCES" || code === "EPERM") {
      throw new UnreachableError(path, `cannot reach srv at ${path}: permission denied`, {
        cause: e,
      });
    }
    if (e instanceof Deno.errors.NotCapable) throw e;
    if (code === "EBUSY") {
      throw new UnreachableError(path, `srv at ${path} is busy: every pipe instance is in use`, {
        cause: e,
      });
    }
    throw new UnreachableError(path, `cannot reach srv at ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/**
 * Connects to srv. Rejects with {@linkcode UnreachableError} when nothing
 * listens there; the returned client is not registered yet.
 *
 * @example
 * ```ts ignore
 * import { connect } from "./client.ts";
 * const client = await connect({ socket: "/tmp/srv-demo/srv.sock" });
 * await client.register({ kind: "tool" });
 * console.log((await client.ping()).version);
 * await client.close();
 * ```
 */
export async function connect(options: ConnectOptions = {}): Promise<SrvClient> {
  const socket = options.socket ?? defaultClientSocket();
  const dial = options.dial ?? dialEndpoint;
  const conn = await dialOrExplain(dial, socket);
  return new SrvClient(socket, conn, options);
}

function eventOf<T extends Event["event"]>(
  reply: Reply,
  name: T,
): Extract<Event, { event: T }> {
  if (reply.error !== null) throw new SrvError(reply.error);
  const found = reply.events.find((e) => e.event === name);
  if (found === undefined) throw new ProtocolError(`expected ${name} in the answer`);
  return found as Extract<Event, { event: T }>;
}

/** A consumer of the event stream: its own queue and its place in it. */
class EventSubscription implements AsyncIterableIterator<StreamItem> {
  #items: StreamItem[] = [];
  #head = 0;
  /** Version of the last item handed over; later ones must be above it. */
  #cursor: number | null = null;
  /** Items held back while the replay that starts this stream is fetched. */
  #joining: StreamItem[] | null;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;
  readonly #detach: () => void;

  constructor(joining: boolean, detach: () => void) {
    this.#joining = joining ? [] : null;
    this.#detach = detach;
  }

  get joining(): boolean {
    return this.#joining !== null && !this.#ended;
  }

  /** A new item of the client's stream. */
  offer(item: StreamItem): void {
    if (this.#ended) return;
    if (this.#joining !== null) {
      if (item.type === "resync") {
        // A snapshot makes the pending replay moot: start from it.
        this.#joining = null;
        this.#push(item);
      } else {
        this.#joining.push(item);
      }
      return;
    }
    this.#push(item);
  }

  /** The replay arrived: hand it over, then what was held back, above `upTo`. */
  completeJoin(replay: StreamItem[], upTo: number): void {
    if (this.#joining === null || this.#ended) return;
    const held = this.#joining;
    this.#joining = null;
    for (const item of replay) this.#push(item);
    this.#cursor = Math.max(this.#cursor ?? 0, upTo);
    for (const item of held) this.#push(item);
  }

  #push(item: StreamItem): void {
    if (item.type === "event") {
      const v = Number(item.event.version);
      if (this.#cursor !== null && v <= this.#cursor) return;
      this.#cursor = v;
    } else {
      // Versions may restart after a snapshot (a fresh memory server).
      this.#cursor = Number(item.snapshot.version);
    }
    this.#items.push(item);
    this.#notify();
  }

  end(error: Error | null): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async next(): Promise<IteratorResult<StreamItem, undefined>> {
    while (true) {
      if (this.#head < this.#items.length) {
        const item = this.#items[this.#head++];
        if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
          this.#items = this.#items.slice(this.#head);
          this.#head = 0;
        }
        return { value: item, done: false };
      }
      if (this.#error !== null) {
        const error = this.#error;
        this.#error = null;
        throw error;
      }
      if (this.#ended) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  return(): Promise<IteratorResult<StreamItem, undefined>> {
    this.end(null);
    this.#items = [];
    this.#head = 0;
    this.#detach();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<StreamItem> {
    return this;
  }
}

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
 * ```ts ignore
 * import { connect } from "./client.ts";
 * const client = await connect();
 * await client.register({ kind: "tool" });
 * for await (const item of client.events({ since: 0 })) {
 *   if (item.type === "event") console.log(item.event.version, item.event.event);
 *   else console.log("resynced from a snapshot at", item.snapshot.version);
 * }
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
  #registration: Required<RegisterOptions> | null = null;
  #registered: RegisteredEvent | null = null;
  /** Requests wait on this while a register is in flight. */
  #registering: Promise<unknown> | null = null;
  /** Set while reconnecting; resolves when requests may flow again. */
  #ready: PromiseWithResolvers<void> | null = null;
  #reconnecting: Promise<void> | null = null;
  #cancelWait: (() => void) | null = null;
  #closing: Promise<Reply> | null = null;
  #failure: Error | null = null;
  // The stream: live broadcasts are held back while a resync runs.
  #holding: Event[] | null = null;
  #lastLogged = 0;
  #lastLoggedEvent: LoggedEvent | null = null;
  readonly #subscriptions = new Set<EventSubscription>();

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
    return this.#lastLogged;
  }

  /** True once {@linkcode SrvClient.close} ran or the connection is gone for good. */
  get closed(): boolean {
    return this.#state === "closed";
  }

  #attach(conn: Connection): Link {
    const link: Link = new Link(conn, {
      onBroadcast: (event) => {
        if (this.#link === link) this.#onBroadcast(event);
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
   * Registers (PROTOCOL.md §5). After a reconnect the client registers
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
      this.#registration = { kind, pid, version };
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
   * {@linkcode SrvError} when the server refuses it.
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

  /**
   * `create_workspace`.
   *
   * @example
   * ```ts ignore
   * const [ws] = await client.createWorkspace("main");
   * console.log(ws.workspace_id);
   * ```
   */
  createWorkspace(name: string): Promise<WorkspaceCreatedEvent[]> {
    return this.command({ cmd: "create_workspace", name });
  }

  /**
   * `delete_workspace`: cascades to its tabs and blocks (`block_ids`).
   *
   * @example
   * ```ts ignore
   * await client.deleteWorkspace(workspaceId);
   * ```
   */
  deleteWorkspace(
    workspaceId: string,
    options: { force?: boolean } = {},
  ): Promise<WorkspaceDeletedEvent[]> {
    return this.command({
      cmd: "delete_workspace",
      workspace_id: workspaceId,
      ...(options.force === undefined ? {} : { force: options.force }),
    });
  }

  /**
   * `rename_workspace`.
   *
   * @example
   * ```ts ignore
   * await client.renameWorkspace(workspaceId, "work");
   * ```
   */
  renameWorkspace(workspaceId: string, name: string): Promise<WorkspaceRenamedEvent[]> {
    return this.command({ cmd: "rename_workspace", workspace_id: workspaceId, name });
  }

  /**
   * `create_tab`: the first tab of a workspace also becomes active.
   *
   * @example
   * ```ts ignore
   * const [tab] = await client.createTab(workspaceId, "shell");
   * if (tab.event === "tab_created") console.log(tab.tab_id);
   * ```
   */
  createTab(
    workspaceId: string,
    name: string,
  ): Promise<(TabCreatedEvent | ActiveTabChangedEvent)[]> {
    return this.command({ cmd: "create_tab", workspace_id: workspaceId, name });
  }

  /**
   * `delete_tab`: the last tab of a workspace needs `force`.
   *
   * @example
   * ```ts ignore
   * await client.deleteTab(workspaceId, tabId, { force: true });
   * ```
   */
  deleteTab(
    workspaceId: string,
    tabId: string,
    options: { force?: boolean } = {},
  ): Promise<(TabDeletedEvent | ActiveTabChangedEvent)[]> {
    return this.command({
      cmd: "delete_tab",
      workspace_id: workspaceId,
      tab_id: tabId,
      ...(options.force === undefined ? {} : { force: options.force }),
    });
  }

  /**
   * `rename_tab`.
   *
   * @example
   * ```ts ignore
   * await client.renameTab(tabId, "logs");
   * ```
   */
  renameTab(tabId: string, name: string): Promise<TabRenamedEvent[]> {
    return this.command({ cmd: "rename_tab", tab_id: tabId, name });
  }

  /**
   * `set_active_tab`.
   *
   * @example
   * ```ts ignore
   * await client.setActiveTab(workspaceId, tabId);
   * ```
   */
  setActiveTab(workspaceId: string, tabId: string): Promise<ActiveTabChangedEvent[]> {
    return this.command({ cmd: "set_active_tab", workspace_id: workspaceId, tab_id: tabId });
  }

  /**
   * `reorder_tab`: `newIndex` is clamped to the last index.
   *
   * @example
   * ```ts ignore
   * await client.reorderTab(workspaceId, tabId, 0);
   * ```
   */
  reorderTab(workspaceId: string, tabId: string, newIndex: number): Promise<TabReorderedEvent[]> {
    return this.command({
      cmd: "reorder_tab",
      workspace_id: workspaceId,
      tab_id: tabId,
      new_index: newIndex,
    });
  }

  /**
   * `reorder_tabs_bulk`: `tabIds` must be a permutation of the workspace's tabs.
   *
   * @example
   * ```ts ignore
   * await client.reorderTabsBulk(workspaceId, [tabB, tabA]);
   * ```
   */
  reorderTabsBulk(workspaceId: string, tabIds: string[]): Promise<TabsReorderedBulkEvent[]> {
    return this.command({ cmd: "reorder_tabs_bulk", workspace_id: workspaceId, tab_ids: tabIds });
  }

  /**
   * `move_tab` to another workspace.
   *
   * @example
   * ```ts ignore
   * await client.moveTab(tabId, fromWorkspace, toWorkspace, 0);
   * ```
   */
  moveTab(
    tabId: string,
    srcWorkspaceId: string,
    dstWorkspaceId: string,
    dstIndex: number,
  ): Promise<TabMovedEvent[]> {
    return this.command({
      cmd: "move_tab",
      tab_id: tabId,
      src_workspace_id: srcWorkspaceId,
      dst_workspace_id: dstWorkspaceId,
      dst_index: dstIndex,
    });
  }

  /**
   * `create_block` with any JSON as its metadata (null by default).
   *
   * @example
   * ```ts ignore
   * const [block] = await client.createBlock(tabId, { kind: "term" });
   * console.log(block.block_id);
   * ```
   */
  createBlock(tabId: string, meta: Json = null): Promise<BlockCreatedEvent[]> {
    return this.command({ cmd: "create_block", tab_id: tabId, meta });
  }

  /**
   * `delete_block`.
   *
   * @example
   * ```ts ignore
   * await client.deleteBlock(tabId, blockId);
   * ```
   */
  deleteBlock(tabId: string, blockId: string): Promise<BlockDeletedEvent[]> {
    return this.command({ cmd: "delete_block", tab_id: tabId, block_id: blockId });
  }

  /**
   * `move_block` within a tab or to another one.
   *
   * @example
   * ```ts ignore
   * await client.moveBlock(blockId, fromTab, toTab, 0);
   * ```
   */
  moveBlock(
    blockId: string,
    srcTabId: string,
    dstTabId: string,
    dstIndex: number,
  ): Promise<BlockMovedEvent[]> {
    return this.command({
      cmd: "move_block",
      block_id: blockId,
      src_tab_id: srcTabId,
      dst_tab_id: dstTabId,
      dst_index: dstIndex,
    });
  }

  /**
   * `update_workspace_meta`: an RFC 7386 merge patch (null deletes a key).
   *
   * @example
   * ```ts ignore
   * await client.updateWorkspaceMeta(workspaceId, { color: "red" });
   * ```
   */
  updateWorkspaceMeta(
    workspaceId: string,
    metaPatch: JsonObject,
  ): Promise<WorkspaceMetaUpdatedEvent[]> {
    return this.command({
      cmd: "update_workspace_meta",
      workspace_id: workspaceId,
      meta_patch: metaPatch,
    });
  }

  /**
   * `update_tab_meta`: an RFC 7386 merge patch.
   *
   * @example
   * ```ts ignore
   * await client.updateTabMeta(tabId, { pinned: true });
   * ```
   */
  updateTabMeta(tabId: string, metaPatch: JsonObject): Promise<TabMetaUpdatedEvent[]> {
    return this.command({ cmd: "update_tab_meta", tab_id: tabId, meta_patch: metaPatch });
  }

  /**
   * `update_block_meta`: an RFC 7386 merge patch.
   *
   * @example
   * ```ts ignore
   * await client.updateBlockMeta(blockId, { title: "build" });
   * ```
   */
  updateBlockMeta(blockId: string, metaPatch: JsonObject): Promise<BlockMetaUpdatedEvent[]> {
    return this.command({ cmd: "update_block_meta", block_id: blockId, meta_patch: metaPatch });
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
      () => this.#subscriptions.delete(subscription),
    );
    if (this.#state === "closed") {
      subscription.end(this.#failure);
      return subscription;
    }
    this.#subscriptions.add(subscription);
    if (joining) this.#join(subscription, options.since);
    return subscription;
  }

  /** Starts a stream: a replay from `since`, or a snapshot when there is none. */
  async #join(subscription: EventSubscription, since: U64 | undefined): Promise<void> {
    while (subscription.joining) {
      try {
        if (since === undefined) {
          const snapshot = await this.snapshot();
          subscription.completeJoin(
            [{ type: "resync", reason: "requested", snapshot }],
            Number(snapshot.version),
          );
          return;
        }
        const list = await this.getEvents(since);
        if (!list.truncated) {
          const replay: StreamItem[] = list.events.filter(isLogged).map((event) => ({
            type: "event",
            event,
          }));
          // A `since` above the current version skips live events up to it too.
          subscription.completeJoin(replay, Math.max(Number(list.version), Number(since)));
        } else {
          const snapshot = await this.snapshot();
          subscription.completeJoin(
            [{ type: "resync", reason: "truncated", snapshot }],
            Number(snapshot.version),
          );
        }
        return;
      } catch (e) {
        if (e instanceof ConnectionLostError && this.#state !== "closed") continue;
        subscription.end(e as Error);
        this.#subscriptions.delete(subscription);
        return;
      }
    }
  }

  #onBroadcast(event: Event): void {
    if (this.#holding !== null) this.#holding.push(event);
    else this.#deliver(event);
  }

  #deliver(event: Event): void {
    if (!isLogged(event)) return;
    const version = Number(event.version);
    if (version <= this.#lastLogged) return; // already delivered
    this.#lastLogged = version;
    this.#lastLoggedEvent = event;
    this.#offer({ type: "event", event });
  }

  #offer(item: StreamItem): void {
    for (const subscription of this.#subscriptions) subscription.offer(item);
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
      this.#holding = [];
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
        this.#holding = null;
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
   * module's "Resync" rule). Live events are held back meanwhile; the last
   * step hands them over and turns holding off without yielding, so
   * nothing slips between replay and live. Returns true when the stream
   * resumed from a snapshot.
   */
  async #resync(link: Link): Promise<boolean> {
    const reply = await link.request({ cmd: "register", ...this.#registration! });
    this.#registered = eventOf(reply, "registered");
    const since = Math.max(0, this.#lastLogged - 1);
    const list = eventOf(await link.request({ cmd: "get_events", since }), "event_list");
    const reason = this.#discontinuity(list);
    if (reason === null) {
      const held = this.#holding!;
      this.#holding = null;
      for (const event of list.events) this.#deliver(event);
      const upTo = Number(list.version);
      for (const event of held) if (Number(event.version) > upTo) this.#deliver(event);
      return false;
    }
    const snapshot = eventOf(await link.request({ cmd: "get_srv_snapshot" }), "srv_snapshot");
    const held = this.#holding!;
    this.#holding = null;
    this.#lastLogged = Number(snapshot.version);
    this.#lastLoggedEvent = null;
    this.#offer({ type: "resync", reason, snapshot });
    for (const event of held) if (Number(event.version) > this.#lastLogged) this.#deliver(event);
    return true;
  }

  /**
   * Why a replay from `since = last - 1` cannot continue the stream: events
   * are gone (`truncated`), or the server's history is not the one the
   * stream came from (its version is below ours, or its event at our last
   * version differs, as after a restart without a store).
   */
  #discontinuity(list: EventListEvent): "truncated" | "diverged" | null {
    if (list.truncated) return "truncated";
    if (Number(list.version) < this.#lastLogged) return "diverged";
    const last = this.#lastLoggedEvent;
    if (last === null) return null;
    const first = list.events[0];
    if (first === undefined || Number(first.version) !== this.#lastLogged) return "diverged";
    return encodeEvent(first) === encodeEvent(last) ? null : "diverged";
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
      for (const subscription of this.#subscriptions) subscription.end(null);
      this.#subscriptions.clear();
      return reply;
    })();
    return this.#closing;
  }

  /** The connection is gone and will not come back. */
  #shutDown(error: Error): void {
    this.#state = "closed";
    this.#failure = error;
    for (const subscription of this.#subscriptions) subscription.end(error);
    this.#subscriptions.clear();
  }
}
