import t from 'tap'
import { Opcode, encodeCloseFrame, encodeControlFrame, encodeFrame, toBuffer } from '../../lib/protocol/index.js'
import { applyMask, decodeFrames } from '../helpers/wire.cjs'
import { hex } from '../helpers/data.js'

const one = (frames: Buffer[]): Buffer => {
  if (frames.length !== 1) throw new Error(`expected one buffer, got ${frames.length}`)
  return frames[0]
}

t.test('text and binary frames, unmasked (server side)', async (t) => {
  t.same(one(encodeFrame(Opcode.Text, 'Hello')), hex('81 05 48656c6c6f'), 'RFC 6455 §5.7 single-frame unmasked text')
  t.same(one(encodeFrame(Opcode.Binary, Buffer.from('Hello'))), hex('82 05 48656c6c6f'), 'binary')
  t.same(one(encodeFrame(Opcode.Text, Buffer.from('Hel'), { fin: false })), hex('01 03 48656c'), 'first fragment: FIN clear')
  t.same(one(encodeFrame(Opcode.Continuation, 'lo')), hex('80 02 6c6f'), 'final continuation')
  t.same(one(encodeFrame(Opcode.Binary, Buffer.from('x'), { rsv1: true })), hex('c2 01 78'), 'RSV1')
  t.same(one(encodeFrame(Opcode.Text, 'é€')), hex('81 05 c3a9 e282ac'), 'string length counted in UTF-8 bytes')
  t.same(one(encodeFrame(Opcode.Text, '')), hex('81 00'), 'empty text')
  t.same(one(encodeFrame(Opcode.Binary, new Uint8Array(0))), hex('82 00'), 'empty binary')
})

t.test('7-, 16- and 64-bit length encodings, byte for byte', async (t) => {
  const cases: Array<[number, string]> = [
    [0, '82 00'],
    [1, '82 01'],
    [125, '82 7d'],
    [126, '82 7e 007e'],
    [127, '82 7e 007f'],
    [1024, '82 7e 0400'],
    [1025, '82 7e 0401'],
    [65535, '82 7e ffff'],
    [65536, '82 7f 0000000000010000'],
    [(1 << 20) + 7, '82 7f 0000000000100007']
  ]
  for (const [length, header] of cases) {
    const payload = Buffer.alloc(length, 0x61)
    const out = Buffer.concat(encodeFrame(Opcode.Binary, payload))
    const head = hex(header)
    t.same(out.subarray(0, head.length), head, `header for ${length} bytes`)
    t.equal(out.length, head.length + length, `total size for ${length} bytes`)
    t.ok(out.subarray(head.length).equals(payload), `payload follows for ${length} bytes`)

    const text = Buffer.concat(encodeFrame(Opcode.Text, 'a'.repeat(length)))
    t.same(text.subarray(0, head.length), Buffer.concat([hex('81'), head.subarray(1)]), `text header for ${length} bytes`)
  }
  // 63 two-byte characters are 126 bytes: the length is in bytes, not characters.
  const wide = Buffer.concat(encodeFrame(Opcode.Text, 'é'.repeat(63)))
  t.same(wide.subarray(0, 4), hex('81 7e 007e'), '63 × "é" uses the 16-bit form')
})

t.test('large unmasked payloads are returned as [header, payload] without copying', async (t) => {
  const big = Buffer.alloc(4096, 7)
  const out = encodeFrame(Opcode.Binary, big)
  t.equal(out.length, 2, 'two buffers')
  t.same(out[0], hex('82 7e 1000'), 'the header alone')
  t.ok(out[1] === big, 'the very same Buffer object')

  const view = new Uint8Array(new ArrayBuffer(5000), 100, 2000)
  const viewOut = encodeFrame(Opcode.Binary, view)
  t.equal(viewOut.length, 2)
  t.ok(viewOut[1].buffer === view.buffer && viewOut[1].byteOffset === 100 && viewOut[1].length === 2000,
    'a Uint8Array is wrapped, sharing its memory')

  t.equal(encodeFrame(Opcode.Binary, Buffer.alloc(1024)).length, 1, '1024 bytes are still copied inline')
  t.equal(encodeFrame(Opcode.Binary, Buffer.alloc(1025)).length, 2, '1025 bytes are not')
  t.equal(encodeFrame(Opcode.Text, 'x'.repeat(5000)).length, 1, 'strings are encoded into one buffer')
  t.equal(encodeFrame(Opcode.Binary, big, { mask: true }).length, 1, 'masked payloads are copied (they must be transformed)')
})

t.test('server frames are unmasked, client frames masked', async (t) => {
  const payload = Buffer.from('Hello, world')
  for (const data of [payload, 'Hello, world', new Uint8Array(payload)]) {
    const [unmasked] = decodeFrames(Buffer.concat(encodeFrame(Opcode.Text, data)))
    t.equal(unmasked.masked, false, `${typeof data}: no mask bit without mask option`)
    t.same(unmasked.payload, payload)

    const raw = one(encodeFrame(Opcode.Text, data, { mask: true }))
    t.equal(raw[1] & 0x80, 0x80, `${typeof data}: mask bit set`)
    const key = raw.subarray(2, 6)
    t.same(raw.subarray(6), applyMask(payload, key), `${typeof data}: payload XORed with the key in the header`)
  }
  const source = Buffer.from('do not touch')
  const before = Buffer.from(source)
  encodeFrame(Opcode.Binary, source, { mask: true })
  t.same(source, before, 'the caller\'s buffer is not modified by masking')

  for (const length of [0, 125, 126, 65535, 65536]) {
    const raw = one(encodeFrame(Opcode.Binary, Buffer.alloc(length, 0x5a), { mask: true }))
    const [decoded] = decodeFrames(raw)
    t.equal(decoded.masked, true)
    t.equal(raw.length, (length < 126 ? 2 : length < 65536 ? 4 : 10) + 4 + length, `masked header size for ${length}`)
    t.ok(decoded.payload.equals(Buffer.alloc(length, 0x5a)), `masked ${length} bytes decode back`)
  }
})

t.test('every client frame gets a fresh mask key', async (t) => {
  const payload = Buffer.from('same payload')
  const a = one(encodeFrame(Opcode.Text, payload, { mask: true }))
  const b = one(encodeFrame(Opcode.Text, payload, { mask: true }))
  t.notSame(a.subarray(2, 6), b.subarray(2, 6), 'two frames of the same payload use different keys')
  t.notSame(a, b, 'and so differ on the wire')

  // Enough frames to go through the random pool more than once.
  let previous = ''
  let repeats = 0
  let zeroKeys = 0
  const distinct = new Set<string>()
  const bitCounts = new Array(32).fill(0)
  const samples = 5000
  for (let i = 0; i < samples; i++) {
    const keyBytes = one(encodeFrame(Opcode.Binary, payload, { mask: true })).subarray(2, 6)
    const key = keyBytes.toString('hex')
    if (key === previous) repeats++
    if (key === '00000000') zeroKeys++
    distinct.add(key)
    const word = keyBytes.readUInt32BE(0)
    for (let bit = 0; bit < 32; bit++) bitCounts[bit] += (word >>> bit) & 1
    previous = key
  }
  t.equal(repeats, 0, 'no key repeats the one before it')
  t.ok(zeroKeys <= 1, 'keys are not left zeroed')
  // Random 32-bit keys: 5000 draws collide with probability ~0.3%; a counter or
  // a short cycle would also show as bits stuck near 0 or 1.
  t.ok(distinct.size >= samples - 2, `${distinct.size} distinct keys in ${samples}`)
  const skewed = bitCounts.filter((n) => Math.abs(n / samples - 0.5) > 0.05)
  t.same(skewed, [], 'every key bit is set about half the time (unpredictable, not a counter)')
})

t.test('close frames', async (t) => {
  t.same(one(encodeCloseFrame()), hex('88 00'), 'no code: empty payload')
  t.same(one(encodeCloseFrame(1000)), hex('88 02 03e8'), 'code only')
  t.same(one(encodeCloseFrame(1001, 'bye')), hex('88 05 03e9 627965'), 'code and reason')
  t.same(one(encodeCloseFrame(4999, 'é')), hex('88 04 1387 c3a9'), 'reason is UTF-8')

  const masked = decodeFrames(one(encodeCloseFrame(1000, 'bye', true)))[0]
  t.equal(masked.masked, true, 'a client close frame is masked')
  t.same(masked.payload, hex('03e8 627965'))

  const max = 'r'.repeat(123)
  t.equal(one(encodeCloseFrame(1000, max)).length, 2 + 125, 'a 123-byte reason fits')
  t.throws(() => encodeCloseFrame(1000, 'r'.repeat(124)), RangeError, '124-byte reason throws')
  t.throws(() => encodeCloseFrame(1000, 'é'.repeat(62)), RangeError, 'the limit counts bytes: 62 × "é" is 124 bytes')
  t.doesNotThrow(() => encodeCloseFrame(1000, 'é'.repeat(61) + 'x'), '61 × "é" + "x" is 123 bytes')

  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, 1000.5]) {
    t.throws(() => encodeCloseFrame(code), RangeError, `code ${code} throws`)
  }
  t.throws(() => encodeCloseFrame(undefined, 'why'), RangeError, 'a reason without a code throws')
})

t.test('ping and pong', async (t) => {
  t.same(one(encodeControlFrame(Opcode.Ping, 'Hello')), hex('89 05 48656c6c6f'), 'RFC 6455 §5.7 unmasked ping')
  t.same(one(encodeControlFrame(Opcode.Pong, Buffer.from('Hello'))), hex('8a 05 48656c6c6f'), 'pong')
  t.same(one(encodeControlFrame(Opcode.Ping, '')), hex('89 00'), 'empty ping')
  const masked = decodeFrames(one(encodeControlFrame(Opcode.Pong, 'Hello', true)))[0]
  t.same({ opcode: masked.opcode, masked: masked.masked, payload: masked.payload.toString() },
    { opcode: 0xa, masked: true, payload: 'Hello' }, 'masked pong')

  t.equal(one(encodeControlFrame(Opcode.Ping, Buffer.alloc(125))).length, 127, '125 bytes fit')
  t.throws(() => encodeControlFrame(Opcode.Ping, Buffer.alloc(126)), RangeError, '126-byte ping throws')
  t.throws(() => encodeControlFrame(Opcode.Pong, 'x'.repeat(126)), RangeError, '126-byte pong throws')
  t.throws(() => encodeControlFrame(Opcode.Ping, 'é'.repeat(63)), RangeError, 'the limit counts bytes')
})

t.test('toBuffer views any byte container without copying', async (t) => {
  const buf = Buffer.from('abc')
  t.ok(toBuffer(buf) === buf, 'a Buffer is returned as is')
  const u8 = new Uint8Array([1, 2, 3, 4]).subarray(1, 3)
  const fromU8 = toBuffer(u8)
  fromU8[0] = 9
  t.equal(u8[0], 9, 'a Uint8Array shares memory')
  t.equal(fromU8.length, 2)
  const ab = new ArrayBuffer(3)
  const fromAb = toBuffer(ab)
  fromAb[2] = 7
  t.equal(new Uint8Array(ab)[2], 7, 'an ArrayBuffer shares memory')
  const dv = new DataView(new ArrayBuffer(8), 2, 4)
  const fromDv = toBuffer(dv)
  t.equal(fromDv.length, 4, 'a DataView keeps its window')
  t.equal(fromDv.byteOffset, 2)
  const u16 = new Uint16Array([0x0102])
  t.equal(toBuffer(u16).length, 2, 'typed arrays are viewed by bytes')
})
