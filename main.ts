#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env --allow-sys --allow-net
/**
 * The `srv` command line: `srv serve` runs the server; the other verbs are
 * clients for scripts and shells (`srv help` lists them). See README.md.
 *
 * @module
 */

import { runCli } from "./srv/cli/dispatch.ts";

/**
 * Runs the `srv` command line and returns the process exit code.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(["serve", "--memory"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  return await runCli(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
