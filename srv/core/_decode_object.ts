/**
 * The schema half of `codec.ts`'s `decodeCommand`: one parsed JSON value
 * checked against its command's schema (the fast predicate first, the
 * validator for the reason), and the elements of a `batch`, each a command
 * of its own.
 *
 * @module
 */

import { validate } from "../../deps.ts";
import type { DecodeResult } from "./codec.ts";
import {
  COMMAND_SCHEMAS,
  DOMAIN_COMMAND_NAMES,
  fastAccepts,
  isJsonObject,
  isLauncherCommandName,
} from "./command_schema.ts";
import type { Command } from "./protocol.ts";
import { clipText } from "./limits.ts";

function describeFailure(error: { path: (string | number)[]; value: unknown; message: string }) {
  const field = error.path.join(".");
  if (error.value === undefined) return `missing field \`${field}\``;
  // The validator quotes the value it got: a 1 MiB bad value would come
  // back as a 1 MiB error line, so a client could make srv hold far more
  // than it sent. The start of the value says enough.
  return `invalid value for \`${field}\`: ${clipText(error.message, MAX_REASON_CHARS)}`;
}

/** Longest validator message quoted in a parse error. */
const MAX_REASON_CHARS = 200;

/** Decodes one parsed JSON value as a command: the schema half of `decodeCommand`. */
export function decodeObject(value: unknown): DecodeResult {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, reason: "expected a JSON object" };
  }
  const cmd = (value as { cmd?: unknown }).cmd;
  if (cmd === undefined) return { ok: false, reason: "missing field `cmd`" };
  if (typeof cmd !== "string") return { ok: false, reason: "`cmd` must be a string" };
  const schema = COMMAND_SCHEMAS.get(cmd);
  if (schema === undefined) {
    if (isLauncherCommandName(cmd)) return { ok: true, command: { cmd } };
    return { ok: false, reason: `unknown command \`${cmd}\`` };
  }
  if (!fastAccepts(schema, value as Record<string, unknown>)) {
    const [error] = validate(value, schema.struct);
    if (error !== undefined) {
      return { ok: false, reason: describeFailure(error), field: error.path.join(".") };
    }
  }
  const command = value as Command;
  if (command.cmd === "create_block" && command.meta === undefined) command.meta = null;
  return { ok: true, command };
}

/**
 * The first element of a `batch` that does not parse as a domain command on
 * its own (docs/PROTOCOL.md §11.3), as a parse failure whose reason and field
 * name the element; null when all do.
 */
export function badBatchElement(elements: readonly unknown[]): DecodeResult | null {
  for (let i = 0; i < elements.length; i++) {
    const element = elements[i];
    const cmd = isJsonObject(element) ? element.cmd : undefined;
    if (
      typeof cmd === "string" && !DOMAIN_COMMAND_NAMES.has(cmd) &&
      (COMMAND_SCHEMAS.has(cmd) || isLauncherCommandName(cmd))
    ) {
      const reason = `invalid value for \`commands.${i}\`: \`${cmd}\` cannot be in a batch`;
      return { ok: false, reason, field: `commands.${i}` };
    }
    const one = decodeObject(element);
    if (!one.ok) {
      const field = `commands.${i}${one.field === undefined ? "" : `.${one.field}`}`;
      return { ok: false, reason: `in \`commands.${i}\`: ${one.reason}`, field };
    }
  }
  return null;
}
