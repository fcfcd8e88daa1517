import { isUtf8 } from 'node:buffer'

/**
 * Incremental UTF-8 validator for text messages delivered in fragments.
 * Whole fragments go through the native `isUtf8`; only the few bytes of a
 * code point split across a fragment boundary are checked byte by byte, so
 * an invalid sequence is caught at the fragment where it appears.
 */
export class Utf8Validator {
  private needed = 0
  private lower = 0x80
  private upper = 0xbf

  reset (): void {
    this.needed = 0
    this.lower = 0x80
    this.upper = 0xbf
  }

  /** True while the data seen so far is a valid UTF-8 prefix. */
  push (data: Uint8Array): boolean {
    const length = data.length
    let i = 0
    while (this.needed > 0 && i < length) {
      if (!this.step(data[i++])) return false
    }
    if (i >= length) return true
    const tail = incompleteTailStart(data, i)
    if (tail > i && !isUtf8(data.subarray(i, tail))) return false
    for (let j = tail; j < length; j++) {
      if (!this.step(data[j])) return false
    }
    return true
  }

  /** True if the message may end here (no code point left open). */
  get complete (): boolean {
    return this.needed === 0
  }

  private step (byte: number): boolean {
    if (this.needed === 0) {
      if (byte < 0x80) return true
      if (byte >= 0xc2 && byte <= 0xdf) {
        this.needed = 1
      } else if (byte >= 0xe0 && byte <= 0xef) {
        this.needed = 2
        if (byte === 0xe0) this.lower = 0xa0 // overlong
        else if (byte === 0xed) this.upper = 0x9f // surrogates
      } else if (byte >= 0xf0 && byte <= 0xf4) {
        this.needed = 3
        if (byte === 0xf0) this.lower = 0x90 // overlong
        else if (byte === 0xf4) this.upper = 0x8f // above U+10FFFF
      } else {
        return false
      }
      return true
    }
    if (byte < this.lower || byte > this.upper) return false
    this.lower = 0x80
    this.upper = 0xbf
    this.needed--
    return true
  }
}

/**
 * Index where a trailing, possibly incomplete multi-byte sequence begins
 * (or `data.length` if the data ends on a code point boundary). Looks back
 * at most three bytes.
 */
function incompleteTailStart (data: Uint8Array, from: number): number {
  const end = data.length
  for (let back = 1; back <= 3 && end - back >= from; back++) {
    const byte = data[end - back]
    if ((byte & 0xc0) === 0x80) continue // continuation byte: keep looking for its lead
    if (byte < 0x80) return end
    const size = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2
    return back < size ? end - back : end
  }
  return end
}

/** Validates a complete text payload. */
export function isValidUtf8 (data: Uint8Array): boolean {
  return isUtf8(data)
}
