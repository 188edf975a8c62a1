/**
 * The shape of one `srv` verb, the global flags every client verb takes,
 * and the strict parse of a verb's command line (node:util `parseArgs`).
 * Adding a verb is one {@linkcode Verb} in a table: help, usage errors and
 * shell completions are generated from it.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { UsageError } from "./_terminal.ts";

/** One flag: how node:util parses it and how help shows it. */
export interface FlagSpec {
  readonly type: "string" | "boolean";
  /** A one-letter alias (`-s`). */
  readonly short?: string;
  /**
   * The value's name in help (`PATH`); only for `string` flags. Completions
   * read it too: `a|b|c` lists the only values, and `PATH`, `DIR` and
   * `FILE` complete file names.
   */
  readonly value?: string;
  readonly help: string;
}

/** The parsed command line of one verb. */
export interface Invocation {
  /** The positionals after the verb's own words. */
  readonly operands: readonly string[];
  /** Flags by long name (globals included). */
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  /** The command line without the verb's words (for verbs that parse their own flags). */
  readonly args: readonly string[];
}

/** One verb of the command line: what help, completions and the dispatcher know of it. */
export interface Verb {
  /** One or two words (`ping`, `tab create`). */
  readonly name: string;
  /** Positionals in order: their name in usage (`WS`, `TAB...`) and what each is. */
  readonly operands: readonly (readonly [metavar: string, help: string])[];
  /** One line for the overview and the verb's page. */
  readonly summary: string;
  /** The verb's own flags (the globals are added for client verbs). */
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** A client verb talks to a server: it takes `--socket` and `--json`. */
  readonly client: boolean;
  /** One example command line, for the help page. */
  readonly example: string;
  /**
   * What the first operand completes to: fixed words, `"verbs"` (the verb
   * table's words, for `help`) or `"files"`. None: nothing is offered.
   */
  readonly operandWords?: readonly string[] | "verbs" | "files";
  /** The verb checks its own flags (`serve`): it gets them unparsed, in `args`. */
  readonly ownFlags?: boolean;
  /** Runs it; throws {@linkcode UsageError} for a bad command line. */
  readonly run: (invocation: Invocation) => Promise<number>;
}

/** The flags every client verb takes, anywhere on the line (`srv -s X ping`, `srv ping -s X`). */
export const GLOBAL_FLAGS: Readonly<Record<string, FlagSpec>> = {
  socket: {
    type: "string",
    short: "s",
    value: "PATH",
    help: "endpoint (default: $SRV_SOCKET, $AGENTMUX_SRV_PIPE_PATH, then the per-user default)",
  },
  json: { type: "boolean", short: "j", help: "one JSON value per line on stdout" },
  timeout: {
    type: "string",
    value: "DURATION",
    help: "how long to wait for each answer, e.g. 10s, 500ms (default 10s; 0: no limit; " +
      "events --follow waits for live events without one)",
  },
  help: { type: "boolean", short: "h", help: "show this verb's help" },
};

/** Every flag a verb accepts: its own, plus the globals it takes. */
export function flagsOf(verb: Verb): Record<string, FlagSpec> {
  return verb.client
    ? { ...GLOBAL_FLAGS, ...verb.flags }
    : { help: GLOBAL_FLAGS.help, ...verb.flags };
}

/** `-s, --socket PATH`: a flag as help and errors spell it. */
export function flagLabel(name: string, spec: FlagSpec): string {
  const long = `--${name}${spec.value !== undefined ? ` ${spec.value}` : ""}`;
  return spec.short !== undefined ? `-${spec.short}, ${long}` : `    ${long}`;
}

/** node:util's options for `flags` (its own keys, no help text). */
export function parseOptions(flags: Record<string, FlagSpec>): ParseArgsOptionsConfig {
  return Object.fromEntries(
    Object.entries(flags).map(([name, { type, short }]) => [
      name,
      short === undefined ? { type } : { type, short },
    ]),
  );
}

/**
 * node:util's errors, in the CLI's words: its own wording names
 * JavaScript-side remedies and leaves a quote unbalanced.
 */
export function reworded(e: unknown, args: readonly string[]): string {
  const { code, message } = e as { code?: string; message: string };
  const quoted = /'(-[^']*)'/.exec(message)?.[1] ?? "";
  const flag = quoted.split(" ")[0].replace(/,$/, "");
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown flag ${flag}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /argument missing/.test(message)
        ? `${flag} needs a value`
        : /does not take an argument/.test(message)
        ? `${flag} takes no value`
        : `${flag}: a value that starts with "-" must be given as ${flag}=VALUE`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument "${args.find((a) => !a.startsWith("-")) ?? ""}"`;
    default:
      return message;
  }
}

/** Parses a verb's command line strictly: unknown flags and missing values are usage errors. */
export function parseVerbArgs(verb: Verb, args: readonly string[]): Invocation {
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: parseOptions(flagsOf(verb)),
      strict: true,
      allowPositionals: true,
    });
    // No flag is declared `multiple`, so every value is one string or boolean.
    return { operands: positionals, values: values as Invocation["values"], args };
  } catch (e) {
    throw new UsageError(reworded(e, args));
  }
}

/** Exactly `count` operands, or a usage error naming them. */
export function exactly(verb: Verb, operands: readonly string[]): string[] {
  if (operands.length !== verb.operands.length) {
    throw new UsageError(
      verb.operands.length === 0
        ? `takes no arguments, got "${operands[0]}"`
        : `needs ${verb.operands.map(([m]) => m).join(" ")}`,
    );
  }
  return [...operands];
}
