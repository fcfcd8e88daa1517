import { endianness } from 'node:os'
import { simdMasker } from './mask-simd.js'

// Below this size the word loop's setup costs more than it saves.
const WORD_THRESHOLD = 48
// From this size on, copying through the WebAssembly kernel beats the word loop.
const SIMD_THRESHOLD = 192
// Data goes through the kernel's memory in blocks of this size (a multiple of 16).
const SIMD_BLOCK = 64 * 1024
const LITTLE_ENDIAN = endianness() === 'LE'

/** The mask as the little-endian word whose first byte is `key[phase]`. */
function keyWord (key: Uint8Array, phase: number): number {
  return key[phase & 3] | (key[(phase + 1) & 3] << 8) | (key[(phase + 2) & 3] << 16) | (key[(phase + 3) & 3] << 24)
}

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
  if (length >= SIMD_THRESHOLD && simdMasker !== null) {
    maskThroughSimd(source, sourceOffset, target, targetOffset, length, key, keyPhase)
    return
  }
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
    const word = keyWord(key, keyPhase + i)
    const words = (length - i) >>> 2
    const src32 = new Int32Array(source.buffer, sourceAddr + i, words)
    const dst32 = source === target && sourceOffset === targetOffset
      ? src32
      : new Int32Array(target.buffer, targetAddr + i, words)
    for (let w = 0; w < words; w++) dst32[w] = src32[w] ^ word
    i += words << 2
  }
  if (i < length) maskBytes(source, sourceOffset + i, target, targetOffset + i, length - i, key, keyPhase + i)
}

/**
 * The byte loop, for short payloads and tails: the key bytes are read once and
 * the loop is unrolled by four, so the common small message pays no index
 * arithmetic per byte.
 */
function maskBytes (
  source: Uint8Array, sourceOffset: number,
  target: Uint8Array, targetOffset: number,
  length: number, key: Uint8Array, keyPhase: number
): void {
  const k0 = key[keyPhase & 3]
  const k1 = key[(keyPhase + 1) & 3]
  const k2 = key[(keyPhase + 2) & 3]
  const k3 = key[(keyPhase + 3) & 3]
  const end = length & ~3
  let i = 0
  for (; i < end; i += 4) {
    target[targetOffset + i] = source[sourceOffset + i] ^ k0
    target[targetOffset + i + 1] = source[sourceOffset + i + 1] ^ k1
    target[targetOffset + i + 2] = source[sourceOffset + i + 2] ^ k2
    target[targetOffset + i + 3] = source[sourceOffset + i + 3] ^ k3
  }
  if (i < length) target[targetOffset + i] = source[sourceOffset + i] ^ k0
  if (i + 1 < length) target[targetOffset + i + 1] = source[sourceOffset + i + 1] ^ k1
  if (i + 2 < length) target[targetOffset + i + 2] = source[sourceOffset + i + 2] ^ k2
}

function maskThroughSimd (
  source: Uint8Array, sourceOffset: number,
  target: Uint8Array, targetOffset: number,
  length: number, key: Uint8Array, keyPhase: number
): void {
  const { memory, mask } = simdMasker!
  // Blocks are multiples of 16 bytes, so every block starts at the same key phase.
  const word = keyWord(key, keyPhase)
  const whole = length & ~15
  let done = 0
  while (done < whole) {
    const count = Math.min(SIMD_BLOCK, whole - done)
    memory.set(source.subarray(sourceOffset + done, sourceOffset + done + count), 0)
    mask(0, count, word)
    target.set(memory.subarray(0, count), targetOffset + done)
    done += count
  }
  for (; done < length; done++) {
    target[targetOffset + done] = source[sourceOffset + done] ^ key[(keyPhase + done) & 3]
  }
}

/** Unmasks (or masks) `data` in place. */
export function unmaskInPlace (data: Uint8Array, key: Uint8Array, keyPhase = 0): void {
  maskInto(data, 0, data, 0, data.length, key, keyPhase)
}
