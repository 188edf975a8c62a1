/**
 * `srv completions bash|zsh|fish`: shell completion scripts generated from
 * the verb table, so a new verb or flag completes without touching them.
 *
 * @module
 */

import { flagsOf, type FlagSpec, type Verb } from "./_verb.ts";

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

/** What a flag's value completes to: its only values, file names, or nothing. */
type ValueKind = { readonly words: readonly string[] } | "files" | "none";

/** `a|b|c`: those values; `PATH`, `DIR`, `FILE`: file names; other values: nothing. */
function valueKind(spec: FlagSpec): ValueKind {
  const value = spec.value ?? "";
  if (value.includes("|")) return { words: value.split("|") };
  return ["PATH", "DIR", "FILE"].includes(value) ? "files" : "none";
}

/**
 * Every flag word that takes a value (`--socket`, `-s`), with what its value
 * completes to: the word after one is its value, not a verb. A word means
 * the same flag in every verb (`-s` is always the endpoint).
 */
function valueFlags(verbs: readonly Verb[]): Map<string, ValueKind> {
  const found = new Map<string, ValueKind>();
  for (const verb of verbs) {
    for (const [name, spec] of Object.entries(flagsOf(verb))) {
      if (spec.type !== "string") continue;
      for (const word of [`--${name}`, ...(spec.short !== undefined ? [`-${spec.short}`] : [])]) {
        if (!found.has(word)) found.set(word, valueKind(spec));
      }
    }
  }
  return found;
}

/** A verb's first operand: fixed words, or file names (`"files"`). */
function operandWords(verb: Verb, top: readonly string[]): string[] | "files" {
  const words = verb.operandWords;
  if (words === undefined) return [];
  if (words === "files") return "files";
  return words === "verbs" ? [...top] : [...words];
}

function bash(verbs: readonly Verb[]): string {
  const { top, nouns } = words(verbs);
  const flags = valueFlags(verbs);
  const byKind = (pick: (kind: ValueKind) => boolean) =>
    [...flags].filter(([, kind]) => pick(kind)).map(([word]) => word);
  const files = byKind((k) => k === "files");
  const plain = byKind((k) => k === "none");
  const fixed = [...flags].flatMap(([word, kind]) =>
    typeof kind === "object" ? [`      ${word}) words=${quote(kind.words.join(" "))} ;;`] : []
  );
  const verbCases = verbs.map((v) => {
    const operands = operandWords(v, top);
    const own = flagWords(v).join(" ");
    return operands === "files"
      ? `    ${quote(v.name)}) words=${quote(own)}; [[ "$cur" == -* ]] || files=1 ;;`
      : `    ${quote(v.name)}) words=${quote([own, ...operands].join(" ").trim())} ;;`;
  });
  const cases = [
    `    "") words=${quote(top.join(" "))} ;;`,
    ...[...nouns].map(([noun, list]) => `    ${quote(noun)}) words=${quote(list.join(" "))} ;;`),
    ...[...nouns].map(([noun, list]) =>
      `    ${quote(`help ${noun}`)}) words=${quote(list.join(" "))} ;;`
    ),
    `    "help "*) words="" ;;`,
    ...verbCases,
    `    *) words="" ;;`,
  ];
  return [
    '# srv completion for bash: eval "$(srv completions bash)"',
    "_srv() {",
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="" path="" skip="" files="" i w words',
    "  for ((i = 1; i < COMP_CWORD; i++)); do",
    '    w="${COMP_WORDS[i]}"',
    '    prev="$w"',
    '    if [[ -n "$skip" ]]; then skip=""; continue; fi',
    '    case "$w" in',
    `      ${[...flags.keys()].join("|")}) skip=1; continue ;;`,
    "      -*) continue ;;",
    "    esac",
    '    case "$path" in',
    '      "") path="$w" ;;',
    `      ${[...nouns.keys(), "help"].join("|")}) path="$path $w" ;;`,
    "    esac",
    "  done",
    "  # The word after a flag that takes a value is its value.",
    '  if [[ -n "$skip" ]]; then',
    '    case "$prev" in',
    ...fixed,
    ...(files.length > 0 ? [`      ${files.join("|")}) files=1 ;;`] : []),
    ...(plain.length > 0 ? [`      ${plain.join("|")}) COMPREPLY=(); return ;;`] : []),
    "    esac",
    "  else",
    '    case "$path" in',
    ...cases.map((c) => `  ${c}`),
    "    esac",
    "  fi",
    '  if [[ -n "$files" ]]; then',
    "    compopt -o filenames 2>/dev/null",
    "    # One name per line: a name with spaces or glob characters stays whole.",
    "    local IFS=$'\\n'",
    '    COMPREPLY=($(compgen -f -- "$cur"))',
    "  else",
    '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    "  fi",
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
    const operands = operandWords(verb, top);
    if (operands === "files") {
      lines.push(`complete -c srv -n ${quote(seen(verb.name))} -F`);
    } else if (operands.length > 0) {
      lines.push(
        `complete -c srv -n ${quote(seen(verb.name))} -a ${quote(operands.join(" "))}`,
      );
    }
    for (const [name, spec] of Object.entries(flagsOf(verb))) {
      const short = spec.short !== undefined ? ` -s ${spec.short}` : "";
      // A value: its only values, file names (-r -F), or anything (-x: no files offered).
      const kind = valueKind(spec);
      const value = spec.type !== "string"
        ? ""
        : typeof kind === "object"
        ? ` -x -a ${quote(kind.words.join(" "))}`
        : kind === "files"
        ? " -r -F"
        : " -x";
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
