/**
 * Reading command-line values by their field's rule, and checking a
 * command with the server's own decoder so the CLI refuses what srv would.
 *
 * @module
 */

import { CLIENT_KINDS, type Command, type Json } from "../core/protocol.ts";
import { decodeCommand, encodeCommand, parseJson, parseMetaJson } from "../core/codec.ts";
import { COMMAND_REGISTRY, type Rule } from "../core/command_schema.ts";
import { UsageError } from "./_terminal.ts";

/** What each rule asks of a command-line value, for the usage error when it is refused. */
export const EXPECTED: Record<Rule, string> = {
  string: "text",
  name: "well-formed text (no lone surrogate)",
  u32: "an integer from 0 to 4294967295",
  u64: "an integer from 0 to 2^64 - 1",
  kind: `one of ${CLIENT_KINDS.join(", ")}`,
  flag: "a switch",
  strings: "a list of words",
  object: "a JSON object",
  anyJson: "JSON",
  id: "a lowercase UUID",
  optU64: "an integer from 0 to 2^64 - 1",
  commands: "a list of commands",
};

/**
 * Reads one command-line value by its field's rule: numbers as digits,
 * objects and JSON as JSON text, the rest as given. Only the syntax is
 * checked here; whether the value fits (range, object, ...) is the decoder's
 * call, in {@linkcode decoded}.
 */
export function readValue(rule: Rule, label: string, raw: string): unknown {
  switch (rule) {
    case "u32":
    case "u64":
    case "optU64": {
      if (!/^[0-9]+$/.test(raw)) throw new UsageError(`${label} must be ${EXPECTED[rule]}`);
      const big = BigInt(raw);
      return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    case "object":
    case "anyJson":
      // A meta or patch on its own: its numbers are doubles, as inside a command.
      try {
        return parseMetaJson(raw);
      } catch (e) {
        throw new UsageError(`${label} is not JSON: ${(e as Error).message}`);
      }
    case "string":
    case "name":
    case "kind":
    case "id":
      return raw;
    case "flag":
    case "strings":
    case "commands":
      throw new Error(`a ${rule} field is not read from one value`);
    default: {
      const unhandled: never = rule;
      throw new Error(`unknown rule ${unhandled}`);
    }
  }
}

export function json(name: string, raw: string): Json {
  try {
    return parseJson(raw) as Json;
  } catch (e) {
    throw new UsageError(`${name} is not JSON: ${(e as Error).message}`);
  }
}

/**
 * The command as the server would decode it: the same decoder, so the CLI
 * refuses exactly what srv refuses, naming the argument (`labels` maps a
 * field to it) and what its rule asks for.
 */
export function decoded(command: Record<string, unknown>, labels: Record<string, string>): Command {
  const result = decodeCommand(encodeCommand(command as unknown as Command));
  if (result.ok) return result.command;
  const rules = COMMAND_REGISTRY[command.cmd as keyof typeof COMMAND_REGISTRY]
    ?.fields as Record<string, Rule> | undefined;
  const rule = result.field === undefined ? undefined : rules?.[result.field];
  if (rule === undefined || result.field === undefined) throw new UsageError(result.reason);
  const label = labels[result.field] ?? result.field;
  // The rule says what was wanted; the validator's own wording adds only noise.
  throw new UsageError(`${label} must be ${EXPECTED[rule]}`);
}
