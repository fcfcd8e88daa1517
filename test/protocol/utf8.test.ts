import t from 'tap'
import { Utf8Validator, isValidUtf8 } from '../../lib/protocol/index.js'
import { INVALID_SEQUENCES, TRUNCATED_SEQUENCES, VALID_TEXTS, hex, prng, randomInt } from '../helpers/data.js'

/** Index of the first byte at which pushing one byte at a time fails, or -1. */
function failIndexBytewise (bytes: Uint8Array): number {
  const v = new Utf8Validator()
  for (let i = 0; i < bytes.length; i++) if (!v.push(bytes.subarray(i, i + 1))) return i
  return -1
}

/** The same, according to the WHATWG decoder (the platform's TextDecoder in fatal streaming mode). */
function oracleFailIndex (bytes: Uint8Array): number {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
  for (let i = 0; i < bytes.length; i++) {
    try {
      decoder.decode(bytes.subarray(i, i + 1), { stream: true })
    } catch {
      return i
    }
  }
  return -1
}

function oracleValid (bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes)
    return true
  } catch {
    return false
  }
}

t.test('valid text: whole, split in two at every byte, one byte at a time', async (t) => {
  for (const text of VALID_TEXTS) {
    const bytes = Buffer.from(text)
    t.equal(isValidUtf8(bytes), true, `isValidUtf8 ${JSON.stringify(text)}`)
    const whole = new Utf8Validator()
    t.ok(whole.push(bytes) && whole.complete, `whole ${JSON.stringify(text)}`)

    const badCuts: number[] = []
    for (let cut = 0; cut <= bytes.length; cut++) {
      const v = new Utf8Validator()
      if (!(v.push(bytes.subarray(0, cut)) && v.push(bytes.subarray(cut)) && v.complete)) badCuts.push(cut)
    }
    t.same(badCuts, [], `every split of ${JSON.stringify(text)}`)

    // One byte at a time: `complete` must be true exactly at code point boundaries.
    const v = new Utf8Validator()
    const boundaries = new Set<number>()
    let offset = 0
    for (const ch of text) {
      offset += Buffer.byteLength(ch)
      boundaries.add(offset)
    }
    const wrong: number[] = []
    for (let i = 0; i < bytes.length; i++) {
      if (!v.push(bytes.subarray(i, i + 1)) || v.complete !== boundaries.has(i + 1)) wrong.push(i)
    }
    t.same(wrong, [], `byte by byte ${JSON.stringify(text)}`)
  }
})

t.test('invalid sequences are rejected whole, in every split, and at the exact failing byte', async (t) => {
  for (const { name, bytes, failsAt } of INVALID_SEQUENCES) {
    t.equal(isValidUtf8(bytes), false, `isValidUtf8: ${name}`)
    t.equal(new Utf8Validator().push(bytes), false, `whole: ${name}`)
    t.equal(failIndexBytewise(bytes), failsAt, `byte by byte fails at byte ${failsAt}: ${name}`)
    t.equal(oracleFailIndex(bytes), failsAt, `(the WHATWG decoder agrees on the failing byte: ${name})`)
    const badCuts: number[] = []
    for (let cut = 0; cut <= bytes.length; cut++) {
      const v = new Utf8Validator()
      const ok = v.push(bytes.subarray(0, cut)) && v.push(bytes.subarray(cut)) && v.complete
      if (ok) badCuts.push(cut)
    }
    t.same(badCuts, [], `rejected at every split: ${name}`)
    // Fail-fast: the part up to and including the bad byte is already rejected, without what follows.
    t.equal(new Utf8Validator().push(bytes.subarray(0, failsAt + 1)), false, `prefix through the bad byte is rejected: ${name}`)
  }
})

t.test('truncated sequences: a valid prefix, never complete', async (t) => {
  for (const { name, bytes } of TRUNCATED_SEQUENCES) {
    const v = new Utf8Validator()
    t.equal(v.push(bytes), true, `accepted so far: ${name}`)
    t.equal(v.complete, false, `not complete: ${name}`)
    t.equal(isValidUtf8(bytes), false, `isValidUtf8 rejects it as a whole message: ${name}`)
  }
  const v = new Utf8Validator()
  t.ok(v.push(hex('f0 9f')), 'first half of 😀')
  t.ok(v.push(hex('98 80')), 'second half of 😀')
  t.ok(v.complete, 'complete once the code point is finished')
})

t.test('a code point split across pushes is checked across the boundary', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['e0', 'a0 80', true],
    ['e0', '9f bf', false], // overlong, caught on the first byte of the second push
    ['ed', '9f bf', true],
    ['ed', 'a0 80', false], // surrogate
    ['f0', '90 80 80', true],
    ['f0', '8f bf bf', false], // overlong
    ['f4', '8f bf bf', true],
    ['f4', '90 80 80', false], // above U+10FFFF
    ['f0 9f', '98', true],
    ['f0 9f 98', '41', false],
    ['c3', 'a9 c3', true],
    ['c3', '41', false]
  ]
  for (const [a, b, valid] of cases) {
    const v = new Utf8Validator()
    t.ok(v.push(hex(a)), `${a} accepted as a prefix`)
    t.equal(v.push(hex(b)), valid, `${a} | ${b} ${valid ? 'accepted' : 'rejected'}`)
  }
})

t.test('reset() forgets an open code point', async (t) => {
  const v = new Utf8Validator()
  t.ok(v.push(hex('e2 82')))
  t.notOk(v.complete)
  v.reset()
  t.ok(v.complete, 'complete after reset')
  t.ok(v.push(Buffer.from('a')), 'a fresh ASCII byte is fine')
  v.push(hex('f4'))
  v.reset()
  t.ok(v.push(hex('f0 90 80 80')), 'the F4 upper bound does not leak past reset')
  v.push(hex('e0'))
  v.reset()
  t.ok(v.push(hex('e1 80 80')), 'the E0 lower bound does not leak past reset')
})

t.test('random byte strings agree with the WHATWG decoder, whole and in random pieces', async (t) => {
  const random = prng(0x75746638)
  // Bytes weighted towards the interesting boundaries.
  const palette = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff]
  let disagreements = 0
  const examples: string[] = []
  for (let n = 0; n < 4000; n++) {
    const length = randomInt(random, 0, 12)
    const bytes = Buffer.alloc(length)
    for (let i = 0; i < length; i++) bytes[i] = random() < 0.8 ? palette[(random() * palette.length) | 0] : (random() * 256) | 0
    const valid = oracleValid(bytes)
    const v = new Utf8Validator()
    let ok = true
    let offset = 0
    while (offset < length && ok) {
      const size = randomInt(random, 1, 4)
      ok = v.push(bytes.subarray(offset, offset + size))
      offset += size
    }
    const mine = ok && v.complete
    const failIndexAgrees = failIndexBytewise(bytes) === oracleFailIndex(bytes)
    if (mine !== valid || isValidUtf8(bytes) !== valid || !failIndexAgrees) {
      disagreements++
      if (examples.length < 5) examples.push(bytes.toString('hex'))
    }
  }
  t.equal(disagreements, 0, 'no disagreement', { examples })
})
