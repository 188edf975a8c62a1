/**
 * One server turn's output: every line the turn produced, who gets each,
 * and the connections to close once it is out. `Server` fills it while it
 * handles input and empties it in one place, its end of turn (commit →
 * deliver → flush → close).
 *
 * @module
 */

import type { Client } from "./_client.ts";
import type { SharedCharge } from "./peer.ts";

/** What one turn owes: lines in order, their targets, and the closes after them. */
export class Turn {
  /**
   * Who gets each line (null: everyone). A parallel array, not an object
   * per line: this is the hot path, and a turn is reused forever.
   */
  readonly to: (Client | null)[] = [];
  /** A line's JSON without its `\n`, or a whole private line already encoded. */
  readonly lines: (string | Uint8Array)[] = [];
  /** Connections to close once this turn's output is queued (goodbye, fatal error). */
  readonly closing: Client[] = [];
  /**
   * Roughly how many bytes this turn holds for everyone, and for each
   * connection alone (characters for a string: cheap, and close enough to
   * pause on), so a connection is known to be behind before the hub has
   * seen this turn's output.
   */
  #forAll = 0;
  readonly #forOne = new Map<Client, number>();
  /** Private lines, all connections together. */
  #private = 0;
  /** Lines staged by {@linkcode Turn.stageLogged}: logged events, for everyone. */
  #logged = 0;
  /** Shared private lines staged this turn (see {@linkcode Turn.stageShared}), by buffer. */
  readonly #shared = new Map<Uint8Array, SharedCharge>();

  /** True when the turn has nothing to send and nobody to close. */
  get isEmpty(): boolean {
    return this.lines.length === 0 && this.closing.length === 0;
  }

  /** Private bytes (roughly) this turn holds for all connections together. */
  get privateBytes(): number {
    return this.#private;
  }

  /**
   * True when every line is a logged event for everyone, staged in the
   * order it was appended to the history: then the history's newest lines
   * are this turn's output, byte for byte.
   */
  get onlyLogged(): boolean {
    return this.#logged > 0 && this.#logged === this.lines.length;
  }

  /** Adds a logged event's line for every connection (see {@linkcode Turn.onlyLogged}). */
  stageLogged(json: string): void {
    this.stage(null, json);
    this.#logged++;
  }

  /** Adds a line for `target` (null: every connection). */
  stage(target: Client | null, json: string | Uint8Array): void {
    this.to.push(target);
    this.lines.push(json);
    const size = json.length + 1;
    if (target === null) this.#forAll += size;
    else {
      this.#forOne.set(target, (this.#forOne.get(target) ?? 0) + size);
      this.#private += size;
    }
  }

  /**
   * Adds a private line whose buffer several connections may get (an
   * observer's snapshot): it counts for `target` in full, but in
   * {@linkcode Turn.privateBytes} once, and not at all while some peer
   * already holds it (the hub counts it then).
   */
  stageShared(target: Client, line: Uint8Array, charge: SharedCharge): void {
    const counted = this.isCounted(charge, line);
    this.stage(target, line);
    if (counted) this.#private -= line.length + 1;
    this.#shared.set(line, charge);
  }

  /** Whether a shared line's bytes are already counted: by this turn, or by a peer holding it. */
  isCounted(charge: SharedCharge, line: Uint8Array): boolean {
    return charge.holders > 0 || this.#shared.has(line);
  }

  /** The charge of a line staged by {@linkcode Turn.stageShared}, if it was. */
  sharedCharge(line: Uint8Array): SharedCharge | undefined {
    return this.#shared.get(line);
  }

  /** What this turn holds for `client` alone (its private lines). */
  privateFor(client: Client): number {
    return this.#forOne.get(client) ?? 0;
  }

  /** What this turn holds for `client`: broadcasts and its own lines. */
  bytesFor(client: Client): number {
    return this.#forAll + (this.#forOne.get(client) ?? 0);
  }

  /** Forgets everything; the arrays are kept for the next turn. */
  clear(): void {
    this.to.length = 0;
    this.lines.length = 0;
    this.closing.length = 0;
    this.#forAll = 0;
    this.#forOne.clear();
    this.#private = 0;
    this.#logged = 0;
    this.#shared.clear();
  }
}
