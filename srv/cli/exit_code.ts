/**
 * Process exit codes of `srv`, documented in the README. Scripts and hosts
 * branch on them, so they never change meaning.
 *
 * @module
 */

/** Exit codes of the `srv` binary. */
export const ExitCode = {
  /** Clean exit, including a graceful shutdown on SIGINT/SIGTERM. */
  ok: 0,
  /** Unexpected failure (a bug, or an I/O error while running). */
  failure: 1,
  /** Bad command line: unknown flag, bad value, a name or id prefix that matches more than one. */
  usage: 2,
  /** Another srv already serves that endpoint. */
  endpointInUse: 3,
  /** The endpoint's directory or path is unsafe or unusable (symlink, foreign owner, not a socket). */
  endpointUnsafe: 4,
  /** The data store cannot be opened, is locked, corrupt, or a write failed. */
  store: 5,
  /** A client command could not reach a server, lost it, or had no answer within --timeout (CLI). */
  unreachable: 6,
  /** The server answered with an error, or a name or id prefix matched nothing (CLI). */
  serverError: 7,
  /** `srv events`: some of the requested history is no longer retained (CLI). */
  historyTruncated: 8,
  /**
   * A command that changes something was sent, and no answer came within
   * --timeout: it may or may not have been applied (CLI). Not 6, so that a
   * script retrying on "unreachable" does not apply it twice.
   */
  unknownOutcome: 9,
  /** A second signal arrived during graceful shutdown: exited at once. */
  interrupted: 130,
} as const;

/** One of the values of {@linkcode ExitCode}. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];
