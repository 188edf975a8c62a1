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
