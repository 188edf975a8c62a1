// Shared pure-test helpers: a deterministic reducer context and a driver
// that folds commands through `update` like the server does.
import { initialState, type State } from "../srv/core/state.ts";
import { type ReducerCommand } from "../srv/core/protocol.ts";
import {
  type LauncherIdentity,
  type ReducerContext,
  type ReducerEvent,
} from "../srv/core/decide.ts";
import { update } from "../srv/core/reducer.ts";

/** Ids "id-1", "id-2", ... so expected events can be written down. */
export function counterIds(prefix = "id-"): () => string {
  let n = 0;
  return () => `${prefix}${++n}`;
}

/** Drives the reducer like the server: one state, one id source. */
export class Driver {
  state: State;
  readonly events: ReducerEvent[] = [];
  readonly newId: () => string;

  /** With `owned`, the driver hands its state over like the server does (in-place maps). */
  readonly owned: boolean;
  /** The server `registered` names; none (zeros) by default. */
  readonly identity: LauncherIdentity | undefined;

  constructor(
    state: State = initialState(),
    newId: () => string = counterIds(),
    options: { owned?: boolean; identity?: LauncherIdentity } = {},
  ) {
    this.state = state;
    this.newId = newId;
    this.owned = options.owned ?? false;
    this.identity = options.identity;
  }

  run(command: ReducerCommand, registeredPid: number | null = null): ReducerEvent[] {
    const ctx: ReducerContext = { registeredPid, identity: this.identity, newId: this.newId };
    const { state, events } = update(this.state, command, ctx, { owned: this.owned });
    this.state = state;
    this.events.push(...events);
    return events;
  }
}

/** The `srv_snapshot` fields that describe the tree (everything but lifecycle and version). */
export const TREE_KEYS = [
  "workspaces",
  "tabs",
  "active_tabs",
  "blocks",
  "tab_order",
  "block_order",
  "meta",
] as const;

/** The tree fields of a snapshot, for comparing snapshots taken at different versions. */
export function treeOf<T>(snapshot: Record<string, T>): Record<string, T> {
  return Object.fromEntries(TREE_KEYS.map((k) => [k, snapshot[k]]));
}
