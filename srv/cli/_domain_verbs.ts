/**
 * The domain verbs (`srv workspace create NAME`, …): one per
 * {@linkcode COMMAND_REGISTRY} row with a `cli` spelling, so a new domain
 * command gets its verb, help and completion from its row alone. Ids are
 * addressed by id, unique prefix or name (see `_address.ts`).
 *
 * @module
 */

import { SrvError } from "../client/errors.ts";
import { type CliVerb, COMMAND_REGISTRY, type Rule } from "../core/command_schema.ts";
import type { Command } from "../core/protocol.ts";
import { stateFromSnapshot } from "../core/state.ts";
import { kindOfField, MIN_PREFIX, needsLookup, NoMatch, resolveCommand } from "./_address.ts";
import { withClient } from "./_client_run.ts";
import { ExitCode } from "./exit_code.ts";
import { err, out, UsageError } from "./_terminal.ts";
import { decoded, EXPECTED, readValue } from "./_values.ts";
import type { FlagSpec, Invocation, Verb } from "./_verb.ts";

/** One registry row the CLI spells: the command it sends and its fields' rules. */
interface Row {
  readonly cmd: string;
  readonly cli: CliVerb;
  readonly rules: Readonly<Record<string, Rule>>;
}

const ROWS: readonly Row[] = Object.entries(COMMAND_REGISTRY).flatMap(([cmd, row]) =>
  "cli" in row ? [{ cmd, cli: row.cli as CliVerb, rules: row.fields as Record<string, Rule> }] : []
);

/** What an operand is, for help: the ids say how they may be addressed. */
function operandHelp(field: string, rule: Rule, row: Row): string {
  const kind = kindOfField(field);
  const scoped = row.cli.args.some(([f]) => f === "workspace_id" || f === "src_workspace_id");
  switch (kind) {
    case "workspace":
      return `a workspace: its id, a unique id prefix (${MIN_PREFIX}+ characters) or its name`;
    case "tab":
      return `${
        rule === "strings" ? "tabs, each" : "a tab"
      }: its id, a unique id prefix or its name${
        scoped ? " (looked for in the workspace given)" : ""
      }`;
    case "block":
      return `a block: its id or a unique id prefix${
        row.cli.args.some(([f]) => f === "tab_id" || f === "src_tab_id")
          ? " (looked for in the tab given)"
          : ""
      }`;
    case undefined:
      return rule === "object"
        ? "a JSON object, merged into the meta (RFC 7386 merge patch)"
        : rule === "name"
        ? "the name (any text)"
        : EXPECTED[rule];
    default: {
      const unhandled: never = kind;
      throw new Error(`unknown kind ${unhandled}`);
    }
  }
}

function flagsOf(row: Row): Record<string, FlagSpec> {
  // Each row says what its flags do: `--force` means one thing for a tab
  // and nothing for a workspace (docs/PROTOCOL.md §6).
  const help = (row.cli.flagHelp ?? {}) as Readonly<Record<string, string | undefined>>;
  const flags: Record<string, FlagSpec> = Object.fromEntries(
    (row.cli.flags ?? []).map((f) => [
      f,
      row.rules[f] === "flag"
        ? { type: "boolean", help: help[f] ?? f }
        : { type: "string", value: "JSON", help: help[f] ?? EXPECTED[row.rules[f]] },
    ]),
  );
  if (row.cli.verb === "create") {
    flags.quiet = { type: "boolean", short: "q", help: "print only the new id" };
  }
  return flags;
}

/** The command a domain verb sends, checked by the server's decoder; ids still as typed. */
function commandOf(
  row: Row,
  invocation: Invocation,
): { command: Command; labels: Record<string, string> } {
  const { cmd, cli, rules } = row;
  const rest = invocation.operands;
  // A `strings` field last takes every remaining word, none included
  // (`srv tab order WS` on a workspace without tabs sends an empty list).
  const last = cli.args.at(-1);
  const variadic = last !== undefined && rules[last[0]] === "strings";
  const arityOk = variadic ? rest.length >= cli.args.length - 1 : rest.length === cli.args.length;
  if (!arityOk) throw new UsageError(`needs ${cli.args.map(([, m]) => m).join(" ")}`);
  const command: Record<string, unknown> = { cmd };
  const labels: Record<string, string> = {};
  cli.args.forEach(([field, metavar], i) => {
    labels[field] = metavar;
    command[field] = rules[field] === "strings"
      ? rest.slice(i)
      : readValue(rules[field], metavar, rest[i]);
  });
  for (const field of cli.flags ?? []) {
    const raw = invocation.values[field];
    labels[field] = `--${field}`;
    // An absent flag is not sent: the decoder's default applies.
    if (raw === undefined || raw === false) continue;
    command[field] = typeof raw === "boolean" ? raw : readValue(rules[field], `--${field}`, raw);
  }
  return { command: decoded(command, labels), labels };
}

function domainVerb(row: Row): Verb {
  const { cli, rules } = row;
  return {
    name: `${cli.noun} ${cli.verb}`,
    operands: cli.args.map(([field, metavar]) => [metavar, operandHelp(field, rules[field], row)]),
    summary: cli.summary,
    flags: flagsOf(row),
    client: true,
    example: cli.example,
    run: async (invocation) => {
      const { command, labels } = commandOf(row, invocation);
      const quiet = invocation.values.quiet === true;
      // Names and prefixes need the tree; full ids go as they are. The tree
      // is read by an observer, whose snapshot is private: a registered
      // client's `get_srv_snapshot` is broadcast to every connection.
      let sent = command;
      if (needsLookup(command as unknown as Record<string, unknown>)) {
        const looked = await withClient(invocation, async (client) => {
          try {
            sent = resolveCommand(
              stateFromSnapshot(await client.snapshot()),
              command as unknown as Record<string, unknown>,
              labels,
            ) as unknown as Command;
            return ExitCode.ok;
          } catch (e) {
            if (!(e instanceof NoMatch)) throw e;
            err(`srv: ${e.message}`);
            return ExitCode.serverError;
          }
        }, { observe: true });
        if (looked !== ExitCode.ok) return looked;
      }
      return withClient(invocation, async (client, printer) => {
        const reply = await client.send(sent);
        if (reply.error !== null) {
          // As `srv send --json` does: the error event on stdout for the
          // script, the line on stderr for the person.
          if (printer.json) { for (const event of reply.events) printer.event(event); }
          throw new SrvError(reply.error);
        }
        if (quiet) {
          const created = reply.events.find((e) => e.event === `${cli.noun}_created`) as
            | Record<string, unknown>
            | undefined;
          if (created !== undefined) out(String(created[`${cli.noun}_id`]));
        } else {
          for (const event of reply.events) printer.event(event);
        }
        return ExitCode.ok;
      });
    },
  };
}

/** Every domain verb, in registry order. */
export const DOMAIN_VERBS: readonly Verb[] = ROWS.map(domainVerb);
