/**
 * The command line's front door: finds the verb among the words (global
 * flags may come before it: `srv -s X ping`), parses its flags strictly,
 * shows help, and turns a bad command line into one line plus a pointer to
 * the verb's help (exit 2) and a closed stdout into a quiet exit 0.
 *
 * The verb table is {@linkcode VERBS}: adding a verb is one entry there (or
 * one registry row, for a domain command); help and completions follow.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { SRV_VERSION } from "../version.ts";
import { CLIENT_VERBS } from "./client_commands.ts";
import { completionScript, type Shell, SHELLS } from "./completions.ts";
import { ExitCode } from "./exit_code.ts";
import { nounHelp, overview, verbHelp } from "./help.ts";
import { serve } from "./serve.ts";
import { SERVE_FLAGS } from "./serve_args.ts";
import { err, out, StdoutClosed, StdoutFailed, UsageError } from "./_terminal.ts";
import { exactly, flagsOf, parseOptions, parseVerbArgs, type Verb } from "./_verb.ts";

const SERVE: Verb = {
  name: "serve",
  operands: [],
  summary: "run the server; prints one readiness line on stdout: " +
    "srv ready socket=<path> pid=<pid> version=<version> instance=<id>",
  flags: Object.fromEntries(Object.entries(SERVE_FLAGS).filter(([name]) => name !== "help")),
  client: false,
  example: "srv serve --memory --socket /tmp/srv-demo/srv.sock",
  // serve reads its own flags (parseServeArgs), which check their values.
  ownFlags: true,
  run: (invocation) => serve([...invocation.args]),
};

const HELP: Verb = {
  name: "help",
  operands: [["[VERB]", "a verb (`ping`, `tab create`) or a noun (`tab`); none: the overview"]],
  summary: "show the help of a verb, or the overview",
  flags: {},
  client: false,
  example: "srv help tab create",
  operandWords: "verbs",
  run: (invocation) => {
    out(helpFor(invocation.operands.join(" ")));
    return Promise.resolve(ExitCode.ok);
  },
};

const COMPLETIONS: Verb = {
  name: "completions",
  operands: [["SHELL", SHELLS.join(", ")]],
  summary: "print a shell completion script",
  flags: {},
  client: false,
  example: 'eval "$(srv completions bash)"',
  operandWords: SHELLS,
  run: (invocation) => {
    const [shell] = exactly(COMPLETIONS, invocation.operands);
    if (!(SHELLS as readonly string[]).includes(shell)) {
      throw new UsageError(`SHELL must be one of ${SHELLS.join(", ")}, got "${shell}"`);
    }
    out(completionScript(shell as Shell, VERBS));
    return Promise.resolve(ExitCode.ok);
  },
};

const VERSION: Verb = {
  name: "version",
  operands: [],
  summary: "print the version (also -V, --version)",
  flags: {},
  client: false,
  example: "srv version",
  run: (invocation) => {
    exactly(VERSION, invocation.operands);
    out(`srv ${SRV_VERSION}`);
    return Promise.resolve(ExitCode.ok);
  },
};

/** Every verb of the command line, in the order the overview lists them. */
export const VERBS: readonly Verb[] = [SERVE, ...CLIENT_VERBS, HELP, COMPLETIONS, VERSION];

const BY_NAME: ReadonlyMap<string, Verb> = new Map(VERBS.map((v) => [v.name, v]));
const NOUNS: ReadonlySet<string> = new Set(
  VERBS.filter((v) => v.name.includes(" ")).map((v) => v.name.split(" ")[0]),
);

function helpFor(words: string): string {
  if (words === "") return overview(VERBS);
  const verb = BY_NAME.get(words);
  if (verb !== undefined) return verbHelp(verb);
  if (NOUNS.has(words)) return nounHelp(words, VERBS);
  throw new UsageError(`no verb "${words}"`);
}

/** Every flag any verb has: enough to tell a flag's value from a verb's word. */
const ALL_FLAGS = parseOptions(
  Object.assign({}, ...VERBS.map(flagsOf), {
    version: { type: "boolean", short: "V", help: "" },
  }),
);

interface Located {
  /** The verb's words as typed (one or two). */
  readonly words: string[];
  /** The command line without them. */
  readonly rest: string[];
  readonly help: boolean;
  readonly version: boolean;
}

/** Finds the verb's words among `args`, skipping flags and their values wherever they are. */
function locate(args: string[]): Located {
  const { tokens, values } = parseArgs({
    args,
    options: ALL_FLAGS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const positional = tokens.filter((t) => t.kind === "positional");
  const words: number[] = [];
  const [first, second] = positional;
  // An unknown flag before the verb would take the verb for its value.
  const unknown = tokens.find((t) =>
    t.kind === "option" && !(t.name in ALL_FLAGS) && (first === undefined || t.index < first.index)
  );
  if (unknown?.kind === "option") throw new UsageError(`unknown flag ${unknown.rawName}`);
  if (first !== undefined) {
    words.push(first.index);
    if (NOUNS.has(first.value) && second !== undefined) words.push(second.index);
  }
  return {
    words: words.map((i) => args[i]),
    rest: args.filter((_, i) => !words.includes(i)),
    help: values.help === true,
    version: values.version === true,
  };
}

function usageError(name: string, message: string): number {
  // `srv help nope` points at the overview, not at help's own page.
  err(`srv ${name}: ${message}\nsee: srv help${name === HELP.name ? "" : ` ${name}`}`);
  return ExitCode.usage;
}

async function dispatch(args: string[]): Promise<number> {
  let located: Located;
  try {
    located = locate(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`srv: ${e.message}\nsee: srv help`);
    return ExitCode.usage;
  }
  const { words, rest, help } = located;
  const name = words.join(" ");
  if (words.length === 0) {
    if (located.version) return await VERSION.run({ operands: [], values: {}, args: [] });
    if (help) {
      out(overview(VERBS));
      return ExitCode.ok;
    }
    err(overview(VERBS));
    return ExitCode.usage;
  }
  const verb = BY_NAME.get(name);
  if (verb === undefined) {
    const [noun, second] = words;
    if (!NOUNS.has(noun)) {
      err(`srv: unknown verb "${noun}"\nsee: srv help`);
      return ExitCode.usage;
    }
    if (second === undefined && help) {
      out(nounHelp(noun, VERBS));
      return ExitCode.ok;
    }
    return usageError(
      noun,
      second === undefined ? "needs a verb" : `unknown verb "${second}"`,
    );
  }
  if (help) {
    out(verbHelp(verb));
    return ExitCode.ok;
  }
  try {
    return await verb.run(
      verb.ownFlags === true ? { operands: [], values: {}, args: rest } : parseVerbArgs(verb, rest),
    );
  } catch (e) {
    if (e instanceof UsageError) return usageError(name, e.message);
    throw e;
  }
}

/**
 * Runs the `srv` command line and returns the exit code. A reader that
 * closed stdout (`srv events | head -1`) ends the run quietly with 0: it
 * took what it wanted. Any other failed write to stdout (a full disk) is
 * one line on stderr and exit 1.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "./dispatch.ts";
 * Deno.exit(await runCli(["help", "tab", "create"]));
 * ```
 */
export async function runCli(args: string[]): Promise<number> {
  // `deno task srv -- ping` hands main.ts the `--` too; before any verb it
  // can only be that, so it goes (a `--` later on still ends the flags).
  const words = args[0] === "--" ? args.slice(1) : args;
  try {
    return await dispatch(words);
  } catch (e) {
    if (e instanceof StdoutClosed) return ExitCode.ok;
    if (e instanceof StdoutFailed) {
      err(`srv: cannot write output: ${e.message}`);
      return ExitCode.failure;
    }
    throw e;
  }
}
