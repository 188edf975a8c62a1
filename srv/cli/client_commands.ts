/**
 * The client verbs of the `srv` command line: `ping`, `info`, `snapshot`,
 * `events`, `send`, `export`, `apply` and the domain verbs (`workspace`,
 * `tab`, `block`, one per {@linkcode COMMAND_REGISTRY} row). Each run
 * connects, registers as a `tool` with its own pid, does one thing and says
 * goodbye; the verbs that only read (`ping`, `info`, `snapshot`, `events`,
 * `export`) register as observers and leave no trace (docs/PROTOCOL.md
 * §11.1). Output is for
 * people by default (anything from the server escaped, see
 * {@linkcode escapeControls}) and one JSON value per line with `--json`;
 * exit codes are {@linkcode ExitCode}'s.
 *
 * @module
 */

import type { SrvClient } from "../client/client.ts";
import { type StreamItem } from "../client/_event_subscription.ts";
import { escapeControls, formatTree } from "../client/format_tree.ts";
import type { Command, Event, GetEventsCommand, PingCommand, U64 } from "../core/protocol.ts";
import { encodeEvent } from "../core/codec.ts";
import { isJsonObject } from "../core/command_schema.ts";
import { stateFromSnapshot } from "../core/state.ts";
import { ExitCode } from "./exit_code.ts";
import { err, out, UsageError } from "./_terminal.ts";
import { decoded, json, readValue } from "./_values.ts";
import { type Printer, withClient } from "./_client_run.ts";
import { exactly, type Verb } from "./_verb.ts";
import { snapshotTreeJson } from "./_snapshot_tree.ts";
import { DOMAIN_VERBS } from "./_domain_verbs.ts";
import { readLines } from "./_stdin.ts";
import { LAYOUT_VERBS } from "./layout_commands.ts";

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
    `server         srv ${info.server_version} (pid ${info.pid})`,
    `socket         ${socket}`,
    `instance       ${escapeControls(info.instance_id)}`,
    `uptime         ${(info.uptime_ms / 1000).toFixed(1)} s`,
    `connections    ${info.connections}`,
    `event version  v${info.event_version}`,
    `log            ${log}`,
    `store          ${
      // A path: its backslashes (Windows) are separators, not escapes.
      info.store === null
        ? "none (memory only)"
        : escapeControls(info.store, { keepBackslashes: true })}`,
  ].join("\n");
}

/** A u64 flag, checked by the server's own decoder (so the range is the server's). */
function u64Flag(
  cmd: "ping" | "get_events",
  field: "nonce" | "since",
  raw: unknown,
): U64 | undefined {
  if (typeof raw !== "string") return undefined;
  const command = decoded({ cmd, [field]: readValue("u64", `--${field}`, raw) }, {
    [field]: `--${field}`,
  });
  return (command as PingCommand & GetEventsCommand)[field];
}

const PING: Verb = {
  name: "ping",
  operands: [],
  summary: "round trip: ping as an observer (leaves no trace), print the pong",
  flags: { nonce: { type: "string", value: "N", help: "the nonce to send (u64; default random)" } },
  client: true,
  example: "srv ping",
  run: (inv) => {
    exactly(PING, inv.operands);
    const nonce = u64Flag("ping", "nonce", inv.values.nonce);
    return withClient(inv, async (client, printer) => {
      const started = performance.now();
      const pong = await client.ping(nonce);
      const ms = performance.now() - started;
      if (printer.json) printer.event(pong);
      else {
        out(
          `pong nonce=${pong.nonce} v${pong.version} from ${
            escapeControls(client.instanceId ?? "")
          } in ${ms.toFixed(1)} ms`,
        );
      }
      return ExitCode.ok;
    }, { observe: true });
  },
};

const INFO: Verb = {
  name: "info",
  operands: [],
  summary: "the server: pid, version, instance, log, store",
  flags: {},
  client: true,
  example: "srv info --json",
  run: (inv) => {
    exactly(INFO, inv.operands);
    return withClient(inv, async (client, printer) => {
      const info = await client.serverInfo();
      if (printer.json) printer.event(info);
      else out(formatInfo(info, client.socket));
      return ExitCode.ok;
    }, { observe: true });
  },
};

const SNAPSHOT: Verb = {
  name: "snapshot",
  operands: [],
  summary: "the workspace/tab/block tree (--json: named fields for jq)",
  flags: {
    wire: {
      type: "boolean",
      help: "print the srv_snapshot event as the server sent it (tuple lists), one JSON line",
    },
  },
  client: true,
  example: `srv snapshot --json | jq '.workspaces[] | select(.name=="main")'`,
  run: (inv) => {
    exactly(SNAPSHOT, inv.operands);
    return withClient(inv, async (client, printer) => {
      const snapshot = await client.snapshot();
      if (inv.values.wire === true) out(encodeEvent(snapshot));
      else if (printer.json) out(snapshotTreeJson(stateFromSnapshot(snapshot), snapshot.version));
      else {
        out(`snapshot at v${snapshot.version}, lifecycle ${snapshot.lifecycle}`);
        out(formatTree(stateFromSnapshot(snapshot)));
      }
      return ExitCode.ok;
    }, { observe: true });
  },
};

const EVENTS: Verb = {
  name: "events",
  operands: [],
  summary: "logged events after --since N (default 0); --follow: then live ones",
  flags: {
    since: {
      type: "string",
      value: "N",
      help: "only events after version N (default 0; with --follow, default now: live events only)",
    },
    follow: {
      type: "boolean",
      short: "f",
      help: "then print live events, across reconnects, until a signal " +
        "(without --since: from now)",
    },
  },
  client: true,
  example: "srv events --follow --since 0",
  run: (inv) => {
    exactly(EVENTS, inv.operands);
    const since = u64Flag("get_events", "since", inv.values.since);
    if (inv.values.follow === true) {
      return withClient(inv, async (client, printer) => {
        await follow(client, since, printer);
        return ExitCode.ok;
      }, { reconnect: true, observe: true });
    }
    return withClient(inv, async (client, printer) => {
      const list = await client.getEvents(since ?? 0);
      for (const event of list.events) printer.event(event);
      if (!list.truncated) return ExitCode.ok;
      err(
        `srv: some events after v${
          since ?? 0
        } are no longer retained (history truncated); run "srv snapshot" for the current tree`,
      );
      return ExitCode.historyTruncated;
    }, { observe: true });
  },
};

/** A command line's JSON command, or a usage error saying what is wrong with it. */
function jsonCommand(raw: string, what: string): Command {
  const value = json(what, raw);
  if (!isJsonObject(value)) throw new UsageError(`${what} must be a JSON object`);
  return value as unknown as Command;
}

const SEND: Verb = {
  name: "send",
  operands: [["COMMAND", "a JSON command; - reads one per line (NDJSON) from stdin until EOF"]],
  summary: "send any command, print every event it caused",
  flags: {},
  client: true,
  example: `echo '{"cmd":"create_workspace","name":"main"}' | srv send -`,
  run: (inv) => {
    const [raw] = exactly(SEND, inv.operands);
    if (raw !== "-") {
      const command = jsonCommand(raw, "the command");
      return withClient(inv, async (client, printer) => {
        const reply = await client.send(command);
        for (const event of reply.events) printer.event(event);
        return reply.error === null ? ExitCode.ok : ExitCode.serverError;
      });
    }
    // One command at a time: each reply is printed before the next line is
    // read, and a bad line stops the run (the ones before it were sent).
    return withClient(inv, async (client, printer) => {
      let code: number = ExitCode.ok;
      for await (const [line, number] of readLines(Deno.stdin.readable)) {
        if (line.trim() === "") continue;
        const reply = await client.send(jsonCommand(line, `line ${number}`));
        for (const event of reply.events) printer.event(event);
        if (reply.error !== null) code = ExitCode.serverError;
      }
      return code;
    });
  },
};

/** Every client verb, in the order help lists them. */
export const CLIENT_VERBS: readonly Verb[] = [
  PING,
  INFO,
  SNAPSHOT,
  EVENTS,
  SEND,
  ...LAYOUT_VERBS,
  ...DOMAIN_VERBS,
];
