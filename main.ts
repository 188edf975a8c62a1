#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env --allow-sys --allow-net
/**
 * The `srv` command line: `srv serve` runs the server; the other
 * subcommands are clients for scripts and shells. See README.md.
 *
 * @module
 */

import { err, out } from "./srv/cli/_terminal.ts";
import { CLIENT_COMMANDS, runClientCommand } from "./srv/cli/client_commands.ts";
import { ExitCode } from "./srv/cli/exit_code.ts";
import { serve } from "./srv/cli/serve.ts";
import { usage } from "./srv/cli/serve_args.ts";
import { SRV_VERSION } from "./srv/version.ts";

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
  const [command, ...rest] = args;
  switch (command) {
    case "serve":
      return await serve(rest);
    case "--version":
    case "-V":
    case "version":
      out(`srv ${SRV_VERSION}`);
      return ExitCode.ok;
    case "--help":
    case "-h":
    case "help":
      out(usage());
      return ExitCode.ok;
    case undefined:
      err(usage());
      return ExitCode.usage;
    default:
      if (CLIENT_COMMANDS.has(command)) return await runClientCommand(args);
      err(`srv: unknown command "${command}"\n\n${usage()}`);
      return ExitCode.usage;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
