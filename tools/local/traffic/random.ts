/**
 * A seeded pseudo-random generator for the traffic generator: the same seed draws the same
 * sequence on every machine and Node version (sfc32, seeded through a string hash), so a run's
 * traffic can be replayed.
 */

/** Draws from one seeded sequence. */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both included. */
  int(min: number, max: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** One entry of a non-empty list. */
  pick<T>(list: readonly T[]): T;
  /** One key of `weights`, drawn in proportion to its weight (weights ≥ 0, at least one > 0). */
  weighted<K extends string>(weights: Readonly<Partial<Record<K, number>>>): K;
  /** A 32-bit unsigned integer (to seed another sequence). */
  uint32(): number;
  /** `length` lower-case hexadecimal digits. */
  hex(length: number): string;
}

/** 128 bits of state from a seed of any text (cyrb128). */
function hashSeed(seed: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < seed.length; i++) {
    const k = seed.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  return [(h1 ^ h2 ^ h3 ^ h4) >>> 0, (h2 ^ h1) >>> 0, (h3 ^ h1) >>> 0, (h4 ^ h1) >>> 0];
}

/** The sequence of `seed`: two equal seeds draw equal sequences. */
export function createRandom(seed: number | string): Random {
  let [a, b, c, d] = hashSeed(String(seed));
  // sfc32: small, fast, and good enough for traffic.
  const uint32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) uint32();
  const next = () => uint32() / 4294967296;
  const random: Random = {
    next,
    uint32,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    pick: (list) => list[Math.floor(next() * list.length)]!,
    weighted: (weights) => {
      const entries = Object.entries(weights).filter((entry): entry is [string, number] => (entry[1] as number) > 0);
      const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
      let draw = next() * total;
      for (const [key, weight] of entries) {
        draw -= weight;
        if (draw < 0) return key as never;
      }
      return entries[entries.length - 1]![0] as never;
    },
    hex: (length) => {
      let text = "";
      while (text.length < length) text += uint32().toString(16).padStart(8, "0");
      return text.slice(0, length);
    },
  };
  return random;
}
