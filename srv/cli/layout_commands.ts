/**
 * `srv export` and `srv apply`: the tree to a layout file and back
 * (protocol 2). Export reads as an observer and leaves no trace; apply
 * sends the whole file as one `batch` (docs/PROTOCOL.md §11.3), so other
 * clients see all of it or nothing. The layout logic is the library's
 * (`srv/client/layout.ts`); this file reads and writes files.
 *
 * @module
 */

import { readAll } from "./_stdin.ts";
import type { SrvClient } from "../client/client.ts";
import { SrvError } from "../client/errors.ts";
import { escapeControls } from "../client/format_tree.ts";
import { layoutCommands, LayoutError, layoutOf, parseLayout } from "../client/layout.ts";
import { DOMAIN_COMMAND_NAMES, isJsonObject } from "../core/command_schema.ts";
import {
  decodeCommand,
  encodeCommand,
  encodeEvent,
  MAX_JSON_DEPTH,
  nestsDeeperThan,
} from "../core/codec.ts";
import {
  type BatchCommand,
  type DomainCommand,
  MAX_BATCH_COMMANDS,
  type U64,
  U64_MAX,
} from "../core/protocol.ts";
import { ExitCode } from "./exit_code.ts";
import { err, out, UsageError } from "./_terminal.ts";
import { withClient } from "./_client_run.ts";
import { exactly, type Invocation, type Verb } from "./_verb.ts";
import { EXPECTED, readValue } from "./_values.ts";

/**
 * `srv export`: the snapshot as a layout, with the version it was taken
 * at (for `srv apply --if-unchanged-since`).
 */
async function exportLayout(client: SrvClient, json: boolean): Promise<number> {
  const snapshot = await client.snapshot();
  const layout = { version: Number(snapshot.version), ...layoutOf(snapshot) };
  out(json ? JSON.stringify(layout) : JSON.stringify(layout, null, 2));
  return ExitCode.ok;
}

/**
 * The commands of a file: a layout (a JSON object with `workspaces`), or
 * NDJSON with one domain command per line. Throws an `Error` whose message
 * names the line or the path in the layout.
 */
export function commandsOfFile(text: string): DomainCommand[] {
  // A layout nests a command's fields 4 levels deeper than a batch line
  // does; deeper than that cannot be sent, and would overflow the stack
  // of JSON.stringify long before srv refused it.
  if (nestsDeeperThan(text, MAX_JSON_DEPTH + 4)) {
    throw new Error(`JSON nested deeper than srv reads (${MAX_JSON_DEPTH} levels in a command)`);
  }
  let whole: unknown = undefined;
  try {
    whole = JSON.parse(text);
  } catch {
    // Not one JSON value: NDJSON, read below.
  }
  if (isJsonObject(whole) && "workspaces" in whole) return layoutCommands(parseLayout(whole));
  const commands: DomainCommand[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const decoded = decodeCommand(line);
    if (!decoded.ok) throw new Error(`line ${i + 1}: ${decoded.reason}`);
    if (!DOMAIN_COMMAND_NAMES.has(decoded.command.cmd)) {
      throw new Error(`line ${i + 1}: \`${decoded.command.cmd}\` cannot be in a batch`);
    }
    commands.push(decoded.command as DomainCommand);
  });
  if (commands.length === 0) throw new Error("no commands in the file");
  return commands;
}

/**
 * The file as the one `batch` line srv will read, checked with srv's own
 * decoder, so whatever srv would refuse as a parse error is refused here,
 * before anything is sent. Null for a layout with nothing in it. Throws an
 * `Error` whose message says what is wrong.
 */
export function batchOfFile(text: string, ifUnchangedSince?: U64): BatchCommand | null {
  const commands = commandsOfFile(text);
  if (commands.length === 0) return null;
  if (commands.length > MAX_BATCH_COMMANDS) {
    throw new Error(
      `${commands.length} commands, more than one batch holds (${MAX_BATCH_COMMANDS})`,
    );
  }
  const batch: BatchCommand = ifUnchangedSince === undefined
    ? { cmd: "batch", commands }
    : { cmd: "batch", commands, if_unchanged_since: ifUnchangedSince };
  const decoded = decodeCommand(encodeCommand(batch));
  if (!decoded.ok) throw new Error(`not a batch srv would take: ${decoded.reason}`);
  return batch;
}

async function readInput(file: string): Promise<string> {
  if (file === "-") return await readAll(Deno.stdin.readable, "the input");
  return await readAll((await Deno.open(file)).readable, "the file");
}

/**
 * Sends a checked file's batch; prints its events (`--json`) or one line
 * saying what it did. A batch longer than this server's line cap is the
 * file's fault: exit 2, like any other bad file.
 */
async function applyBatch(
  client: SrvClient,
  file: string,
  batch: BatchCommand,
  json: boolean,
): Promise<number> {
  const since = batch.if_unchanged_since ?? undefined;
  let events;
  try {
    events = await client.batch(
      batch.commands,
      since === undefined ? {} : { ifUnchangedSince: since },
    );
  } catch (e) {
    // Too long for this server's --max-line-bytes: the file's fault, said as such.
    if (e instanceof SrvError && e.code === "invalid_command" && /^line exceeds/.test(e.message)) {
      err(`srv apply: ${file}: too big for one batch: ${e.message.replace(/;.*/, "")}`);
      return ExitCode.usage;
    }
    throw e;
  }
  if (json) { for (const event of events) out(encodeEvent(event)); }
  else {
    const range = events.length === 0
      ? "nothing changed"
      : `${events.length} events, v${events[0].version}..v${events.at(-1)!.version}`;
    out(`applied ${batch.commands.length} commands as one batch: ${range}`);
  }
  return ExitCode.ok;
}

/**
 * `srv apply FILE|-`: the file's commands as one batch, ids kept. The file
 * is read and checked before connecting, so a bad one costs one line on
 * stderr, exit 2, and leaves no trace in srv. Prints the batch's events
 * (`--json`) or one line saying what it did.
 */
async function applyFile(inv: Invocation, file: string, since: U64 | undefined): Promise<number> {
  let batch: BatchCommand | null;
  try {
    batch = batchOfFile(await readInput(file), since);
  } catch (e) {
    const why = e instanceof LayoutError || e instanceof Error ? e.message : String(e);
    err(`srv apply: ${file}: ${escapeControls(why)}`);
    return ExitCode.usage;
  }
  if (batch === null) {
    if (inv.values.json !== true) out("applied 0 commands: the layout is empty");
    return ExitCode.ok;
  }
  const sent = batch;
  return await withClient(inv, (client, printer) => applyBatch(client, file, sent, printer.json));
}

const EXPORT: Verb = {
  name: "export",
  operands: [],
  summary: "the tree as a layout file (JSON), with the version it was read at",
  flags: {},
  client: true,
  example: "srv export > layout.json",
  run: (inv) => {
    exactly(EXPORT, inv.operands);
    // Reads only: an observer, so exporting leaves no trace (§11.1).
    return withClient(inv, (client, printer) => exportLayout(client, printer.json), {
      observe: true,
    });
  },
};

const APPLY: Verb = {
  name: "apply",
  operands: [["FILE", "a layout (from srv export) or NDJSON domain commands; - reads stdin"]],
  operandWords: "files",
  summary: "apply a layout or NDJSON commands as one atomic batch, ids kept",
  flags: {
    "if-unchanged-since": {
      type: "string",
      value: "V",
      help: "only if nothing the batch names changed after version V",
    },
  },
  client: true,
  example: "srv apply --if-unchanged-since 42 layout.json",
  run: (inv) => {
    const [file] = exactly(APPLY, inv.operands);
    const raw = inv.values["if-unchanged-since"];
    const since = typeof raw === "string"
      ? readValue("u64", "--if-unchanged-since", raw) as U64
      : undefined;
    // Digits beyond u64 are the flag's fault, not the file's.
    if (typeof since === "bigint" && since > U64_MAX) {
      throw new UsageError(`--if-unchanged-since must be ${EXPECTED.u64}`);
    }
    return applyFile(inv, file, since);
  },
};

/** `srv export` and `srv apply`, for the CLI's verb table. */
export const LAYOUT_VERBS: readonly Verb[] = [EXPORT, APPLY];
