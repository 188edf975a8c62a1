/**
 * srv's own version, reported in `registered.launcher_version`,
 * `server_info.server_version`, the readiness line and `srv --version`.
 * Kept equal to `deno.json`'s `version` (a test checks).
 *
 * @module
 */

/** The version of this srv build. */
export const SRV_VERSION = "0.1.0";
