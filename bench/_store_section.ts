/**
 * The markers around the "Durable state at size" section of
 * `bench/results.md`: written by `deno task bench:store`, kept by
 * `deno task bench` when it regenerates the rest of the file.
 *
 * @module
 */

/** Opens the section. */
export const STORE_SECTION_START = "<!-- store bench: start -->";
/** Closes the section. */
export const STORE_SECTION_END = "<!-- store bench: end -->";

/** Opens the "Where a command's time goes" section (`deno task bench:profile --write`). */
export const PROFILE_SECTION_START = "<!-- profile: start -->";
/** Closes it. */
export const PROFILE_SECTION_END = "<!-- profile: end -->";

/**
 * `text` with the section between `start` and `end` replaced by `section`
 * (markers included in it), or with `section` appended when there is none.
 *
 * @example
 * ```ts
 * import { replaceSection } from "./_store_section.ts";
 * replaceSection("a<s>x<e>b", "<s>", "<e>", "<s>y<e>"); // "a<s>y<e>b"
 * ```
 */
export function replaceSection(text: string, start: string, end: string, section: string): string {
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) return text.slice(0, a) + section + text.slice(b + end.length);
  return `${text.trimEnd()}\n\n${section}\n`;
}
