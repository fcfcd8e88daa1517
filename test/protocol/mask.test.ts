import t from 'tap'
import { maskInto, unmaskInPlace } from '../../lib/protocol/index.js'
import { simdMasker } from '../../lib/protocol/mask-simd.js'
import { applyMask } from '../helpers/wire.cjs'
import { prng, randomBytesSeeded } from '../helpers/data.js'

const random = prng(0x6d61736b)
const KEYS = [
  Uint8Array.of(0x37, 0xfa, 0x21, 0x3d),
  Uint8Array.of(0x00, 0x00, 0x00, 0x00),
  Uint8Array.of(0xff, 0x01, 0x80, 0x7f),
  randomBytesSeeded(random, 4)
]

/** A view of `length` bytes starting `byteOffset` bytes into a fresh ArrayBuffer filled with `fill`. */
function viewAt (byteOffset: number, length: number, fill: number): Uint8Array {
  const buffer = new ArrayBuffer(byteOffset + length + 16)
  const all = new Uint8Array(buffer)
  all.fill(fill)
  return all.subarray(byteOffset, byteOffset + length + 8)
}

t.test('maskInto matches a byte loop: lengths 0..100, unaligned views and offsets, every key phase', async (t) => {
  let cases = 0
  const failures: string[] = []
  for (let length = 0; length <= 100; length++) {
    const data = randomBytesSeeded(random, length)
    for (let sourceView = 0; sourceView < 8; sourceView++) {
      for (let targetView = 0; targetView < 8; targetView++) {
        for (const [sourceOffset, targetOffset] of [[0, 0], [1, 3], [3, 1], [2, 2], [0, 5]]) {
          for (let phase = 0; phase < 4; phase++) {
            const key = KEYS[(length + phase) % KEYS.length]
            const source = viewAt(sourceView, length + sourceOffset, 0xaa)
            source.set(data, sourceOffset)
            const sourceBefore = Buffer.from(source)
            const target = viewAt(targetView, length + targetOffset, 0x55)
            const targetBefore = Buffer.from(target)
            maskInto(source, sourceOffset, target, targetOffset, length, key, phase)
            cases++
            const expected = Buffer.from(targetBefore)
            applyMask(data, key, phase).copy(expected, targetOffset)
            if (!Buffer.from(target).equals(expected)) {
              failures.push(`length ${length} views ${sourceView}/${targetView} offsets ${sourceOffset}/${targetOffset} phase ${phase}`)
            }
            if (!Buffer.from(source).equals(sourceBefore)) {
              failures.push(`source modified: length ${length} views ${sourceView}/${targetView} phase ${phase}`)
            }
          }
        }
      }
    }
  }
  t.same(failures.slice(0, 10), [], `all ${cases} cases match and touch nothing outside the target range`)
})

t.test('maskInto in place matches a byte loop: lengths 0..100, unaligned views, every key phase', async (t) => {
  const failures: string[] = []
  for (let length = 0; length <= 100; length++) {
    const data = randomBytesSeeded(random, length)
    for (let view = 0; view < 8; view++) {
      for (const offset of [0, 1, 2, 3, 7]) {
        for (let phase = 0; phase < 4; phase++) {
          const key = KEYS[(length + view + phase) % KEYS.length]
          const buf = viewAt(view, length + offset, 0xcc)
          buf.set(data, offset)
          const expected = Buffer.from(buf)
          applyMask(data, key, phase).copy(expected, offset)
          maskInto(buf, offset, buf, offset, length, key, phase)
          if (!Buffer.from(buf).equals(expected)) failures.push(`maskInto length ${length} view ${view} offset ${offset} phase ${phase}`)

          const whole = viewAt(view, length, 0xcc).subarray(0, length)
          whole.set(data)
          unmaskInPlace(whole, key, phase)
          if (!Buffer.from(whole).equals(applyMask(data, key, phase))) failures.push(`unmaskInPlace length ${length} view ${view} phase ${phase}`)
        }
      }
    }
  }
  t.same(failures.slice(0, 10), [], 'all in-place cases match')
})

t.test('masking twice restores the data; masking in pieces with a running phase equals masking whole', async (t) => {
  const data = randomBytesSeeded(random, 1000)
  const key = KEYS[0]
  const copy = Buffer.from(data)
  unmaskInPlace(copy, key)
  t.notOk(copy.equals(data), 'masking changed the data')
  unmaskInPlace(copy, key)
  t.ok(copy.equals(data), 'masking again restored it')

  const whole = applyMask(data, key)
  for (const cuts of [[1, 2, 3], [5, 300, 301, 998], [333, 666], [4, 8, 64, 999]]) {
    const target = Buffer.alloc(data.length)
    let start = 0
    for (const end of [...cuts, data.length]) {
      maskInto(data, start, target, start, end - start, key, start & 3)
      start = end
    }
    t.ok(target.equals(whole), `pieces cut at ${cuts.join(',')}`)
  }
})

t.test('a key that is itself a view into a larger buffer', async (t) => {
  const pool = randomBytesSeeded(random, 64)
  const key = pool.subarray(13, 17)
  const data = randomBytesSeeded(random, 257)
  const target = Buffer.alloc(257)
  maskInto(data, 0, target, 0, data.length, key, 2)
  t.ok(target.equals(applyMask(data, key, 2)))
})

t.test('~1 MiB random buffer, aligned and unaligned, in and out of place', async (t) => {
  const length = (1 << 20) + 13
  const data = randomBytesSeeded(random, length)
  for (const [sourceView, targetView, phase] of [[0, 0, 0], [1, 0, 1], [0, 3, 2], [5, 6, 3], [2, 2, 1]]) {
    const key = KEYS[3]
    const source = viewAt(sourceView, length, 0).subarray(0, length)
    source.set(data)
    const target = viewAt(targetView, length, 0).subarray(0, length)
    maskInto(source, 0, target, 0, length, key, phase)
    const expected = applyMask(data, key, phase)
    t.ok(Buffer.from(target.buffer, target.byteOffset, length).equals(expected), `out of place, views ${sourceView}/${targetView}, phase ${phase}`)
    unmaskInPlace(source, key, phase)
    t.ok(Buffer.from(source.buffer, source.byteOffset, length).equals(expected), `in place, view ${sourceView}, phase ${phase}`)
  }
})

t.test('the WebAssembly SIMD kernel is available on this runtime and agrees with a byte loop', async (t) => {
  t.ok(simdMasker !== null, 'WebAssembly SIMD instantiated')
  const key = Uint8Array.from([0xa1, 0x5b, 0x37, 0xc9])
  const random = prng(0x51d)
  // Around the switch to the kernel, around its 16-byte lanes and its 64 KiB blocks.
  const lengths = [180, 191, 192, 193, 207, 208, 209, 255, 256, 257, 1000, 65535, 65536, 65537, 65551, 65552, 131088, 200003]
  for (const length of lengths) {
    for (const phase of [0, 1, 2, 3]) {
      for (const [sourceShift, targetShift] of [[0, 0], [1, 0], [0, 3], [2, 1], [5, 5]]) {
        const backing = new Uint8Array(length + 16)
        for (let i = 0; i < backing.length; i++) backing[i] = (random() * 256) | 0
        const source = backing.subarray(sourceShift, sourceShift + length)
        const expected = new Uint8Array(length)
        for (let i = 0; i < length; i++) expected[i] = source[i] ^ key[(phase + i) & 3]
        const target = new Uint8Array(new ArrayBuffer(length + 8), targetShift, length)
        maskInto(source, 0, target, 0, length, key, phase)
        if (!Buffer.from(target).equals(Buffer.from(expected))) {
          t.fail(`out of place: length ${length}, phase ${phase}, shifts ${sourceShift}/${targetShift}`)
          return
        }
        maskInto(source, 0, source, 0, length, key, phase)
        if (!Buffer.from(source).equals(Buffer.from(expected))) {
          t.fail(`in place: length ${length}, phase ${phase}, shift ${sourceShift}`)
          return
        }
      }
    }
  }
  t.pass('every length, phase and alignment matches')
})
