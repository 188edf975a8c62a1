/**
 * Seeded randomness for the bench: every payload, nonce and target order is
 * drawn from here, so a run is repeatable from its `--seed`.
 *
 * @module
 */

/**
 * mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1).
 *
 * @example
 * ```ts
 * import { seededRandom } from "./_rng.ts";
 * const next = seededRandom(42);
 * next() === seededRandom(42)(); // true
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A 32-bit seed derived from a base seed and labels (FNV-1a), so each run,
 * phase and target draws its own independent but repeatable stream.
 *
 * @example
 * ```ts
 * import { deriveSeed } from "./_rng.ts";
 * deriveSeed(1, "rtt", "echo") === deriveSeed(1, "rtt", "echo"); // true
 * ```
 */
export function deriveSeed(base: number, ...labels: (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const ch of `${base}|${labels.join("|")}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * A nonce of up to 40 bits (13 digits): wide like a real client's, and
 * well inside 2^53 so it round-trips as a plain number.
 *
 * @example
 * ```ts
 * import { randomNonce, seededRandom } from "./_rng.ts";
 * randomNonce(seededRandom(1)) < 2 ** 40; // true
 * ```
 */
export function randomNonce(next: () => number): number {
  return Math.floor(next() * 2 ** 40);
}

/**
 * Fisher–Yates shuffle into a new array.
 *
 * @example
 * ```ts
 * import { seededRandom, shuffled } from "./_rng.ts";
 * shuffled([1, 2, 3], seededRandom(7)).length; // 3
 * ```
 */
export function shuffled<T>(items: readonly T[], next: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
