// Test data: seeded random bytes, text and chunkings (a failure reproduces
// from its seed), and the UTF-8 corpus shared by the validator and parser tests.

/** Small seeded PRNG (mulberry32) so that failures of randomised tests reproduce. */
export function prng (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [min, max] drawn from `random`. */
export function randomInt (random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1))
}

export function randomBytesSeeded (random: () => number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) out[i] = (random() * 256) | 0
  return out
}

/** Random text of at least `byteLength` UTF-8 bytes, mixing 1- to 4-byte characters. */
export function randomText (random: () => number, byteLength: number): string {
  const samples = ['a', 'Z', '7', ' ', '~', 'é', 'ß', 'Ω', 'ж', '€', '中', '✓', '\u{ffff}', '😀', '𝄞', '\u{10ffff}']
  let out = ''
  let bytes = 0
  while (bytes < byteLength) {
    const ch = samples[(random() * samples.length) | 0]
    out += ch
    bytes += Buffer.byteLength(ch)
  }
  return out
}

/** Splits `data` into random chunks (possibly empty ones) using `random`. */
export function randomChunks (random: () => number, data: Buffer, maxChunk: number): Buffer[] {
  const out: Buffer[] = []
  let offset = 0
  while (offset < data.length) {
    const size = randomInt(random, 0, maxChunk)
    out.push(data.subarray(offset, offset + size))
    offset += size
  }
  return out
}

/** Bytes from hex, spaces allowed. */
export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

// The UTF-8 corpus.

export const VALID_TEXTS = [
  '',
  'hello',
  'héllo wörld', // 2-byte
  'ß Ω ж ־', // 2-byte
  '€ 中文 ✓ \u{ffff} \u{e000}', // 3-byte, including the highest BMP code point
  '\u{d7ff}', // 3-byte just below the surrogates
  '𝄞 😀 👍🏽 👨‍👩‍👧 \u{10000} \u{10ffff}', // 4-byte, emoji with modifiers and joiners
  'mixed a é € 😀 b\u0000c\u007f'
]

/** Invalid sequences by class; `failsAt` is the index of the byte where a streaming validator must notice. */
export const INVALID_SEQUENCES: Array<{ name: string, bytes: Buffer, failsAt: number }> = [
  { name: 'overlong 2-byte C0 80', bytes: hex('c0 80'), failsAt: 0 },
  { name: 'overlong 2-byte C1 BF', bytes: hex('c1 bf'), failsAt: 0 },
  { name: 'overlong 3-byte E0 80 80', bytes: hex('e0 80 80'), failsAt: 1 },
  { name: 'overlong 3-byte E0 9F BF', bytes: hex('e0 9f bf'), failsAt: 1 },
  { name: 'overlong 4-byte F0 80 80 80', bytes: hex('f0 80 80 80'), failsAt: 1 },
  { name: 'overlong 4-byte F0 8F BF BF', bytes: hex('f0 8f bf bf'), failsAt: 1 },
  { name: 'high surrogate ED A0 80', bytes: hex('ed a0 80'), failsAt: 1 },
  { name: 'low surrogate ED BF BF', bytes: hex('ed bf bf'), failsAt: 1 },
  { name: 'above U+10FFFF F4 90 80 80', bytes: hex('f4 90 80 80'), failsAt: 1 },
  { name: 'lead byte F5', bytes: hex('f5 80 80 80'), failsAt: 0 },
  { name: 'lead byte F7', bytes: hex('f7 bf bf bf'), failsAt: 0 },
  { name: 'lead byte F8 (5-byte form)', bytes: hex('f8 88 80 80 80'), failsAt: 0 },
  { name: 'lead byte FE', bytes: hex('fe'), failsAt: 0 },
  { name: 'byte FF', bytes: hex('ff'), failsAt: 0 },
  { name: 'lone continuation byte 80', bytes: hex('80'), failsAt: 0 },
  { name: 'lone continuation byte BF after text', bytes: hex('41 42 bf'), failsAt: 2 },
  { name: 'missing continuation (C3 41)', bytes: hex('c3 41'), failsAt: 1 },
  { name: 'missing continuation (E2 82 41)', bytes: hex('e2 82 41'), failsAt: 2 },
  { name: 'missing continuation (F0 9F 98 41)', bytes: hex('f0 9f 98 41'), failsAt: 3 },
  { name: 'extra continuation (C3 A9 A9)', bytes: hex('c3 a9 a9'), failsAt: 2 },
  { name: 'valid text then overlong', bytes: Buffer.concat([Buffer.from('abc €'), hex('e0 80 80')]), failsAt: 8 }
]

/** Valid prefixes that stop mid-code-point: fine so far, but a message may not end there. */
export const TRUNCATED_SEQUENCES: Array<{ name: string, bytes: Buffer }> = [
  { name: '2-byte lead only', bytes: hex('c3') },
  { name: '3-byte, 1 of 2 continuations', bytes: hex('e2 82') },
  { name: '3-byte lead only', bytes: hex('e2') },
  { name: '4-byte, 2 of 3 continuations', bytes: hex('f0 9f 98') },
  { name: 'text then 4-byte lead', bytes: Buffer.concat([Buffer.from('ok '), hex('f0')]) },
  { name: 'E0 with its lowest valid second byte', bytes: hex('e0 a0') },
  { name: 'F4 with its highest valid second byte', bytes: hex('f4 8f bf') }
]
