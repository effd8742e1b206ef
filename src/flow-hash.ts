/** Hashing of flow key words (murmur3-style mixing with Math.imul: int32 only, no allocation). */

export function mixWord(hash: number, word: number): number {
  let k = Math.imul(word, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  let h = hash ^ k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

export function finishHash(hash: number, words: number): number {
  let h = hash ^ (words << 2);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Hash of a whole key. */
export function hashKey(key: Int32Array, at: number, words: number, basis: number): number {
  let h = basis;
  for (let w = 0; w < words; w++) h = mixWord(h, key[at + w]);
  return finishHash(h, words);
}

/**
 * A lighter per-word step for the per-packet cache hash (two operations a word); finishHash's
 * avalanche afterwards spreads the bits. The EMC compares whole keys, so a weaker hash can only cost
 * a few misses, never a wrong answer.
 */
export function addWord(hash: number, word: number): number {
  return (Math.imul(hash, 0x01000193) ^ word) | 0;
}
