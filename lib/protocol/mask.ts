import { endianness } from 'node:os'

// Below this size the word loop's setup costs more than it saves.
const WORD_THRESHOLD = 32
const LITTLE_ENDIAN = endianness() === 'LE'

/**
 * XORs `length` bytes of `source` starting at `sourceOffset` with the 4-byte
 * `key` and writes them to `target` at `targetOffset`. `source` and `target`
 * may be the same buffer at the same offset (in-place unmasking).
 * `keyPhase` is the index into the key of the first byte, so a payload can be
 * unmasked in pieces as it arrives.
 */
export function maskInto (
  source: Uint8Array, sourceOffset: number,
  target: Uint8Array, targetOffset: number,
  length: number, key: Uint8Array, keyPhase = 0
): void {
  let i = 0
  if (length >= WORD_THRESHOLD && LITTLE_ENDIAN) {
    // Word-at-a-time needs both views aligned identically; advance bytewise
    // until the target is 4-byte aligned, then use 32-bit lanes.
    const targetAddr = target.byteOffset + targetOffset
    let sourceAddr = source.byteOffset + sourceOffset
    const lead = (4 - (targetAddr & 3)) & 3
    if (((sourceAddr + lead) & 3) !== 0) {
      // Differently aligned (common when a payload spans chunks): a plain copy
      // and an in-place pass over the aligned target still beat a byte loop.
      target.set(source.subarray(sourceOffset, sourceOffset + length), targetOffset)
      source = target
      sourceOffset = targetOffset
      sourceAddr = targetAddr
    }
    for (; i < lead; i++) {
      target[targetOffset + i] = source[sourceOffset + i] ^ key[(keyPhase + i) & 3]
    }
    const p = (keyPhase + i) & 3
    const word = (key[p] | (key[(p + 1) & 3] << 8) | (key[(p + 2) & 3] << 16) | (key[(p + 3) & 3] << 24))
    const words = (length - i) >>> 2
    const src32 = new Int32Array(source.buffer, sourceAddr + i, words)
    const dst32 = source === target && sourceOffset === targetOffset
      ? src32
      : new Int32Array(target.buffer, targetAddr + i, words)
    for (let w = 0; w < words; w++) dst32[w] = src32[w] ^ word
    i += words << 2
  }
  for (; i < length; i++) {
    target[targetOffset + i] = source[sourceOffset + i] ^ key[(keyPhase + i) & 3]
  }
}

/** Unmasks (or masks) `data` in place. */
export function unmaskInPlace (data: Uint8Array, key: Uint8Array, keyPhase = 0): void {
  maskInto(data, 0, data, 0, data.length, key, keyPhase)
}
