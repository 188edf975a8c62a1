/**
 * Help text, generated from the verb table: the overview (`srv help`), a
 * noun's verbs (`srv help tab`) and one verb's page (`srv help tab create`,
 * `srv tab create --help`). Everything fits 80 columns.
 *
 * @module
 */

import { SRV_VERSION } from "../version.ts";
import { flagLabel, flagsOf, GLOBAL_FLAGS, type Verb } from "./_verb.ts";

/** The width help is written for. */
export const HELP_WIDTH = 80;

/** `text` broken into lines of at most `width` columns at spaces (a longer word stands alone). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** Two columns: a label, then its text wrapped beside it (or below it when the label is long). */
function table(rows: readonly (readonly [string, string])[]): string[] {
  const labelWidth = Math.min(Math.max(0, ...rows.map(([l]) => l.length)), 28);
  const indent = 2 + labelWidth + 2;
  return rows.flatMap(([label, text]) => {
    const body = wrap(text, HELP_WIDTH - indent);
    const pad = " ".repeat(indent);
    if (label.length > labelWidth) return [`  ${label}`, ...body.map((b) => pad + b)];
    return body.map((b, i) => (i === 0 ? `  ${label.padEnd(labelWidth)}  ${b}` : pad + b));
  });
}

function synopsis(verb: Verb): string {
  return ["srv", verb.name, ...verb.operands.map(([m]) => m)].join(" ");
}

/** One verb's page: usage, what it does, arguments, flags, an example. */
export function verbHelp(verb: Verb): string {
  // The verb's own flags first, then the ones every client verb has.
  const flags = { ...verb.flags, ...flagsOf(verb) };
  return [
    ...wrap(
      `Usage: ${synopsis(verb)}${Object.keys(flags).length > 0 ? " [flags]" : ""}`,
      HELP_WIDTH,
    ),
    "",
    ...wrap(verb.summary, HELP_WIDTH - 2).map((l) => `  ${l}`),
    ...(verb.operands.length > 0 ? ["", "Arguments:", ...table(verb.operands)] : []),
    "",
    "Flags:",
    ...table(Object.entries(flags).map(([name, spec]) => [flagLabel(name, spec), spec.help])),
    "",
    "Example:",
    `  ${verb.example}`,
  ].join("\n");
}

/** The verbs of one noun (`srv help tab`). */
export function nounHelp(noun: string, verbs: readonly Verb[]): string {
  const mine = verbs.filter((v) => v.name.startsWith(`${noun} `));
  return [
    `Usage: srv ${noun} VERB ARGS [flags]`,
    "",
    ...table(mine.map((v) => [synopsis(v).slice(4), v.summary])),
    "",
    `Run "srv help ${noun} VERB" for a verb's arguments, flags and an example.`,
  ].join("\n");
}

/** Verbs grouped by their first word, each group where its first verb is (a stable order). */
function byNoun(verbs: readonly Verb[]): Verb[] {
  const nouns = [...new Set(verbs.map((v) => v.name.split(" ")[0]))];
  return nouns.flatMap((noun) => verbs.filter((v) => v.name.split(" ")[0] === noun));
}

/** `srv help`: every verb in one line each, the global flags and the exit codes. */
export function overview(verbs: readonly Verb[]): string {
  const rows = (pick: (v: Verb) => boolean) =>
    table(verbs.filter(pick).map((v) => [synopsis(v).slice(4), v.summary]));
  return [
    ...wrap(
      `srv ${SRV_VERSION}: a local IPC state server (newline-delimited JSON over a Unix socket or named pipe)`,
      HELP_WIDTH,
    ),
    "",
    "Usage: srv [flags] VERB [ARGS] [flags]",
    "",
    "Server:",
    ...rows((v) => v.name === "serve"),
    "",
    "Client verbs (each connects, does one thing, says goodbye; the read-only",
    "ones as observers, which leave no trace):",
    ...table(byNoun(verbs.filter((v) => v.client)).map((v) => [synopsis(v).slice(4), v.summary])),
    "",
    "Other:",
    ...rows((v) => !v.client && v.name !== "serve"),
    "",
    "Flags of every client verb, anywhere on the line:",
    ...table(
      Object.entries(GLOBAL_FLAGS).map(([name, spec]) => [flagLabel(name, spec), spec.help]),
    ),
    "",
    ...wrap(
      "Exit codes: 0 ok, 1 failure, 2 usage, 3 endpoint in use, 4 endpoint unsafe, 5 store, " +
        "6 no server at the endpoint (or it went away), 7 the server refused the command, " +
        "8 srv events: history truncated, 130 second signal.",
      HELP_WIDTH,
    ),
    "",
    `Run "srv help VERB" for a verb's arguments, flags and an example.`,
  ].join("\n");
}
