/**
 * `srv completions bash|zsh|fish`: shell completion scripts generated from
 * the verb table, so a new verb or flag completes without touching them.
 *
 * @module
 */

import { flagsOf, type Verb } from "./_verb.ts";

/** The shells {@linkcode completionScript} writes for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;
/** One of {@linkcode SHELLS}. */
export type Shell = typeof SHELLS[number];

/** A word safe inside single quotes in all three shells (verbs and flags are plain words). */
function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The first words (`ping`, `tab`, …) and each noun's second words. */
function words(verbs: readonly Verb[]): { top: string[]; nouns: Map<string, string[]> } {
  const top: string[] = [];
  const nouns = new Map<string, string[]>();
  for (const { name } of verbs) {
    const [first, second] = name.split(" ");
    if (!top.includes(first)) top.push(first);
    if (second !== undefined) nouns.set(first, [...(nouns.get(first) ?? []), second]);
  }
  return { top, nouns };
}

function flagWords(verb: Verb): string[] {
  return Object.entries(flagsOf(verb)).flatMap(([name, spec]) => [
    `--${name}`,
    ...(spec.short !== undefined ? [`-${spec.short}`] : []),
  ]);
}

/** Flags that take a value: the word after one is not a verb. */
function valueFlags(verbs: readonly Verb[]): string[] {
  const found = new Set<string>();
  for (const verb of verbs) {
    for (const [name, spec] of Object.entries(flagsOf(verb))) {
      if (spec.type !== "string") continue;
      found.add(`--${name}`);
      if (spec.short !== undefined) found.add(`-${spec.short}`);
    }
  }
  return [...found];
}

function bash(verbs: readonly Verb[]): string {
  const { top, nouns } = words(verbs);
  const cases = [
    `    "") words=${quote(top.join(" "))} ;;`,
    ...[...nouns].map(([noun, list]) => `    ${quote(noun)}) words=${quote(list.join(" "))} ;;`),
    ...verbs.map((v) => `    ${quote(v.name)}) words=${quote(flagWords(v).join(" "))} ;;`),
    `    *) words="" ;;`,
  ];
  return [
    '# srv completion for bash: eval "$(srv completions bash)"',
    "_srv() {",
    '  local cur="${COMP_WORDS[COMP_CWORD]}" path="" skip="" i w words',
    "  for ((i = 1; i < COMP_CWORD; i++)); do",
    '    w="${COMP_WORDS[i]}"',
    '    if [[ -n "$skip" ]]; then skip=""; continue; fi',
    '    case "$w" in',
    `      ${valueFlags(verbs).join("|")}) skip=1; continue ;;`,
    "      -*) continue ;;",
    "    esac",
    '    case "$path" in',
    '      "") path="$w" ;;',
    `      ${[...nouns.keys()].join("|")}) path="$path $w" ;;`,
    "    esac",
    "  done",
    '  case "$path" in',
    ...cases.map((c) => `  ${c}`),
    "  esac",
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    "}",
    "complete -F _srv srv",
    "",
  ].join("\n");
}

function zsh(verbs: readonly Verb[]): string {
  // zsh runs bash completion functions through bashcompinit: one
  // generator, the same answers in both shells.
  return [
    "#compdef srv",
    '# srv completion for zsh: eval "$(srv completions zsh)"',
    "autoload -U +X bashcompinit && bashcompinit",
    ...bash(verbs).split("\n").slice(1),
  ].join("\n");
}

function fish(verbs: readonly Verb[]): string {
  const { top, nouns } = words(verbs);
  /** Fish's test that the words typed so far are `name`'s (`tab create`: both seen). */
  const seen = (name: string) =>
    name.split(" ").map((w) => `__fish_seen_subcommand_from ${w}`).join("; and ");
  const lines = [
    "# srv completion for fish: srv completions fish | source",
    "complete -c srv -f",
    ...top.map((w) => {
      const verb = verbs.find((v) => v.name === w);
      const desc = verb !== undefined ? verb.summary : `${w} verbs`;
      return `complete -c srv -n __fish_use_subcommand -a ${quote(w)} -d ${quote(desc)}`;
    }),
    ...[...nouns].flatMap(([noun, list]) =>
      list.map((second) => {
        const verb = verbs.find((v) => v.name === `${noun} ${second}`)!;
        const condition = `${seen(noun)}; and not __fish_seen_subcommand_from ${list.join(" ")}`;
        return `complete -c srv -n ${quote(condition)} -a ${quote(second)} -d ${
          quote(verb.summary)
        }`;
      })
    ),
  ];
  for (const verb of verbs) {
    for (const [name, spec] of Object.entries(flagsOf(verb))) {
      const short = spec.short !== undefined ? ` -s ${spec.short}` : "";
      const value = spec.type === "string" ? " -r" : "";
      lines.push(
        `complete -c srv -n ${quote(seen(verb.name))} -l ${name}${short}${value} -d ${
          quote(spec.help.split(";")[0])
        }`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

/** The completion script for `shell`, from `verbs`. */
export function completionScript(shell: Shell, verbs: readonly Verb[]): string {
  switch (shell) {
    case "bash":
      return bash(verbs);
    case "zsh":
      return zsh(verbs);
    case "fish":
      return fish(verbs);
    default: {
      const unhandled: never = shell;
      throw new Error(`unknown shell ${unhandled}`);
    }
  }
}
