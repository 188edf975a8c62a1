#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-env --allow-sys
/**
 * Follows srv and prints the workspace → tab → block tree whenever it
 * changes: a snapshot to start from, then `evolve` with every event. After
 * a reconnect the client replays what it missed; when it cannot (history
 * truncated, server restarted without a store) it hands over a new
 * snapshot, and the tree starts over from that.
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-write --allow-env --allow-sys \
 *   examples/live_tree.ts [--socket PATH]
 * ```
 *
 * Stops on SIGINT/SIGTERM (saying goodbye to srv).
 *
 * @module
 */

// An example script's job is to print; console is its output.
// deno-lint-ignore-file no-console

import { parseArgs } from "node:util";
import {
  connect,
  DOMAIN_EVENT_NAMES,
  evolve,
  formatTree,
  type State,
  stateFromSnapshot,
} from "@srv/srv";

const TREE_EVENTS: ReadonlySet<string> = new Set(DOMAIN_EVENT_NAMES);

const { values } = parseArgs({ options: { socket: { type: "string" } } });
const client = await connect({
  socket: values.socket,
  onStatus: (status) => {
    if (status.state === "disconnected") console.error(`lost srv (${status.reason}); reconnecting`);
    if (status.state === "reconnected") console.error(`back, instance ${status.instanceId}`);
  },
});
await client.register({ kind: "tool", version: "live_tree example" });

const stop = () => void client.close();
Deno.addSignalListener("SIGINT", stop);
if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", stop);

let state: State | null = null;
for await (const item of client.events({ snapshot: true })) {
  if (item.type === "resync") {
    state = stateFromSnapshot(item.snapshot);
    console.log(`== v${item.snapshot.version} snapshot (${item.reason})`);
  } else {
    state = evolve(state!, item.event);
    if (!TREE_EVENTS.has(item.event.event)) continue;
    console.log(`== v${item.event.version} ${item.event.event}`);
  }
  console.log(formatTree(state));
}
