import { constants as bufferConstants } from 'node:buffer'
import t, { type Test } from 'tap'
import { FrameParser, type FrameParserOptions } from '../../lib/protocol/index.js'
import { INVALID_SEQUENCES, TRUNCATED_SEQUENCES, VALID_TEXTS, hex } from '../helpers/data.js'
import { RecordingSink, frame, frames, parseChunks, parseEveryWay, summarize, type ParserEvent, type RawFrame } from '../helpers/protocol.js'

const TEXT = 0x1
const BINARY = 0x2
const CONT = 0x0
const CLOSE = 0x8
const PING = 0x9
const PONG = 0xa

// parseEveryWay also feeds every input one byte per push, which the piece cap
// (on by default, tested in piece-limit.test.ts) would end early for
// messages over ~1 KiB: these tests are about framing rules, so it is off.
const SERVER: FrameParserOptions = { role: 'server', maxMessageSize: 1 << 20, maxMessagePieces: Infinity }
const CLIENT: FrameParserOptions = { role: 'client', maxMessageSize: 1 << 20, maxMessagePieces: Infinity }

/** A frame as a client sends it (masked), for a server-role parser. */
const fromClient = (f: RawFrame): Buffer => frame({ mask: true, ...f })

const text = (data: string | Buffer, compressed = false): ParserEvent =>
  ({ type: 'message', data: Buffer.from(data), isBinary: false, compressed })
const binary = (data: Buffer, compressed = false): ParserEvent =>
  ({ type: 'message', data, isBinary: true, compressed })
const ping = (data: string | Buffer = ''): ParserEvent => ({ type: 'ping', data: Buffer.from(data) })
const pong = (data: string | Buffer = ''): ParserEvent => ({ type: 'pong', data: Buffer.from(data) })
const close = (code: number, reason = ''): ParserEvent => ({ type: 'close', code, reason })
const error = (code: number, message: RegExp): { code: number, message: RegExp } => ({ code, message })

type Expected = ParserEvent | { code: number, message: RegExp }

/**
 * Parses `input` whole, split at every byte, and byte by byte (all must
 * agree) and checks the events. An expected error gives its code and a
 * pattern for the message naming the rule.
 */
function expectEvents (t: Test, input: Buffer, options: FrameParserOptions, expected: Expected[], name: string): ParserEvent[] {
  const events = parseEveryWay(t, input, options)
  const found = summarize(events).map((e) => e.type === 'error' ? { type: 'error', code: e.code } : e)
  const wanted = expected.map((e) => 'type' in e ? summarize([e])[0] : { type: 'error', code: e.code })
  t.same(found, wanted, name)
  expected.forEach((e, i) => {
    const event = events[i]
    if (!('type' in e) && event?.type === 'error') t.match(event.message, e.message, `${name}: the error names the rule`)
  })
  return events
}

// Appended after a terminal event (close or error) to show that nothing after it is looked at.
const TRAILER_FROM_CLIENT = Buffer.concat([fromClient({ opcode: TEXT, payload: 'after' }), hex('ff ff ff')])
const TRAILER_FROM_SERVER = Buffer.concat([frame({ opcode: TEXT, payload: 'after' }), hex('ff ff ff')])
const trailer = (options: FrameParserOptions): Buffer => options.role === 'server' ? TRAILER_FROM_CLIENT : TRAILER_FROM_SERVER
const forRole = (options: FrameParserOptions, f: RawFrame): Buffer => options.role === 'server' ? fromClient(f) : frame(f)
const chunksOf = (data: Buffer, size: number): Buffer[] => {
  const out: Buffer[] = []
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size))
  return out
}

t.test('RFC 6455 §5.7 examples', async (t) => {
  expectEvents(t, hex('81 05 48656c6c6f'), CLIENT, [text('Hello')], 'single-frame unmasked text')
  expectEvents(t, hex('81 85 37fa213d 7f9f4d5158'), SERVER, [text('Hello')], 'single-frame masked text')
  expectEvents(t, hex('01 03 48656c 80 02 6c6f'), CLIENT, [text('Hello')], 'fragmented unmasked text')
  expectEvents(t, hex('89 05 48656c6c6f'), CLIENT, [ping('Hello')], 'unmasked ping')
  expectEvents(t, hex('8a 85 37fa213d 7f9f4d5158'), SERVER, [pong('Hello')], 'masked pong')
  const b256 = Buffer.alloc(256, 0x42)
  expectEvents(t, Buffer.concat([hex('82 7e 0100'), b256]), CLIENT, [binary(b256)], '256 bytes, 16-bit length')
  const b64k = Buffer.alloc(65536, 0x43)
  expectEvents(t, Buffer.concat([hex('82 7f 0000000000010000'), b64k]), CLIENT, [binary(b64k)], '64 KiB, 64-bit length')
})

t.test('payload lengths around the 7/16/64-bit boundaries, both roles', async (t) => {
  for (const length of [0, 1, 125, 126, 127, 65535, 65536]) {
    const payload = Buffer.alloc(length)
    for (let i = 0; i < length; i++) payload[i] = (i * 31) & 0xff
    // The client role's 64 KiB cases are the RFC example above and the 0xFFFF case below.
    for (const options of length >= 65535 ? [SERVER] : [SERVER, CLIENT]) {
      expectEvents(t, forRole(options, { opcode: BINARY, payload }), options, [binary(payload)], `${length} bytes, ${options.role} role`)
    }
  }
})

t.test('lengths are unsigned: a 16-bit length with its high bit set is not negative', async (t) => {
  const p65535 = Buffer.alloc(65535, 1)
  const events = expectEvents(t, Buffer.concat([hex('82 7e ffff'), p65535]), CLIENT, [binary(p65535)], '0xFFFF is 65535')
  t.equal(events[0].type === 'message' && events[0].data.length, 65535)
  // Length 200 spelled in the 64-bit form, low word with its high bit clear, and in the 16-bit form.
  const p200 = Buffer.alloc(200, 3)
  expectEvents(t, frame({ opcode: BINARY, payload: p200, lengthBits: 64 }), CLIENT, [binary(p200)], 'a longer length form is read by value (64-bit)')
  expectEvents(t, frame({ opcode: BINARY, payload: Buffer.from('abc'), lengthBits: 16 }), CLIENT, [binary(Buffer.from('abc'))], 'a longer length form is read by value (16-bit)')
})

t.test('64-bit lengths: top bit set is a protocol error, beyond 2^53 - 1 is too big', async (t) => {
  const key = '37fa213d'
  // Only the header arrives: the verdict must not wait for the payload.
  expectEvents(t, hex(`82 ff 8000000000000000 ${key}`), SERVER, [error(1002, /most significant bit/)], 'top bit set (server)')
  expectEvents(t, hex('82 7f ffffffffffffffff'), CLIENT, [error(1002, /most significant bit/)], 'all bits set (client)')
  expectEvents(t, hex('82 7f 8000000000000005'), CLIENT, [error(1002, /most significant bit/)], 'top bit set, small low word')

  const unlimited: FrameParserOptions = { role: 'client', maxMessageSize: Infinity }
  expectEvents(t, hex('82 7f 0020000000000000'), unlimited, [error(1009, /2\^53/)], '2^53 with no size limit')
  expectEvents(t, hex('82 7f 7fffffffffffffff'), unlimited, [error(1009, /2\^53/)], '2^63 - 1 with no size limit')
  expectEvents(t, hex(`82 ff 0020000000000001 ${key}`), { role: 'server', maxMessageSize: Infinity }, [error(1009, /2\^53/)], '2^53 + 1, server')

  // A length no Buffer can hold is refused too, rather than throwing out of push().
  const tooBig = Math.min(bufferConstants.MAX_LENGTH + 1, 2 ** 53)
  const header = Buffer.alloc(10)
  header[0] = 0x82
  header[1] = 127
  header.writeBigUInt64BE(BigInt(tooBig), 2)
  const events = expectEvents(t, header, unlimited, [error(1009, /./)], `${tooBig} bytes with no size limit`)
  t.equal(events.length, 1)

  expectEvents(t, hex('82 7f 0000000100000000'), CLIENT, [error(1009, /limit/)], '2^32 bytes over a 1 MiB limit')
  expectEvents(t, hex('82 7f 001fffffffffffff'), CLIENT, [error(1009, /limit/)], '2^53 - 1 bytes over a 1 MiB limit')
})

t.test('fragmented messages are reassembled', async (t) => {
  for (const options of [SERVER, CLIENT]) {
    const f = (x: RawFrame): Buffer => forRole(options, x)
    const role = options.role
    expectEvents(t, Buffer.concat([
      f({ opcode: TEXT, fin: false, payload: 'Hel' }),
      f({ opcode: CONT, fin: false, payload: 'lo, ' }),
      f({ opcode: CONT, payload: 'world' })
    ]), options, [text('Hello, world')], `text in three fragments (${role})`)

    expectEvents(t, Buffer.concat([
      f({ opcode: BINARY, fin: false, payload: Buffer.from([1, 2]) }),
      f({ opcode: CONT, fin: false, payload: Buffer.alloc(0) }),
      f({ opcode: CONT, fin: false, payload: Buffer.from([3]) }),
      f({ opcode: CONT, payload: Buffer.alloc(0) })
    ]), options, [binary(Buffer.from([1, 2, 3]))], `binary with empty fragments (${role})`)

    expectEvents(t, Buffer.concat([
      f({ opcode: TEXT, fin: false, payload: '' }),
      f({ opcode: CONT, payload: '' })
    ]), options, [text('')], `empty text in two empty fragments (${role})`)

    expectEvents(t, Buffer.concat([
      f({ opcode: TEXT, fin: false, payload: 'a' }),
      f({ opcode: PING, payload: 'p1' }),
      f({ opcode: CONT, fin: false, payload: 'b' }),
      f({ opcode: PONG, payload: 'p2' }),
      f({ opcode: PING, payload: '' }),
      f({ opcode: CONT, payload: 'c' }),
      f({ opcode: BINARY, payload: Buffer.from([9]) }),
      f({ opcode: TEXT, fin: false, payload: 'x' }),
      f({ opcode: CONT, payload: 'y' })
    ]), options, [ping('p1'), pong('p2'), ping(), text('abc'), binary(Buffer.from([9])), text('xy')],
    `control frames between fragments are delivered at once; state resets between messages (${role})`)

    expectEvents(t, Buffer.concat([
      f({ opcode: TEXT, fin: false, payload: 'unfinished' }),
      f({ opcode: CLOSE, payload: hex('03e8') }),
      trailer(options)
    ]), options, [close(1000)], `a close frame between fragments ends parsing; the partial message is dropped (${role})`)
  }
})

t.test('maxMessageSize is enforced on the sum of fragments before buffering', async (t) => {
  const limit100: FrameParserOptions = { role: 'server', maxMessageSize: 100 }
  const limit100c: FrameParserOptions = { role: 'client', maxMessageSize: 100 }
  const p = (n: number): Buffer => Buffer.alloc(n, 0x61)

  expectEvents(t, fromClient({ opcode: BINARY, payload: p(100) }), limit100, [binary(p(100))], 'exactly the limit is fine')
  // Only the header of the oversized frame is fed: the error must not wait for its payload.
  const header101 = fromClient({ opcode: BINARY, payload: p(101) }).subarray(0, 2 + 2 + 4)
  expectEvents(t, header101, limit100, [error(1009, /limit of 100 bytes/)], 'the header of a 101-byte frame is enough')
  expectEvents(t, hex('82 7e 2710'), limit100c, [error(1009, /limit/)], 'header of a 10000-byte frame (16-bit length)')
  expectEvents(t, hex('82 7f 0000000000100000'), limit100c, [error(1009, /limit/)], 'header of a 1 MiB frame (64-bit length)')

  expectEvents(t, Buffer.concat([
    fromClient({ opcode: TEXT, fin: false, payload: p(60) }),
    fromClient({ opcode: CONT, payload: p(40) })
  ]), limit100, [text(p(100))], 'fragments adding up to the limit are fine')

  expectEvents(t, Buffer.concat([
    fromClient({ opcode: TEXT, fin: false, payload: p(60) }),
    fromClient({ opcode: CONT, fin: false, payload: p(40) }),
    fromClient({ opcode: CONT, payload: p(1) }).subarray(0, 6)
  ]), limit100, [error(1009, /limit/)], 'the header of the fragment that crosses the limit is enough')

  expectEvents(t, Buffer.concat([
    frame({ opcode: BINARY, fin: false, payload: p(50) }),
    frame({ opcode: PING, payload: p(125) }),
    frame({ opcode: PONG, payload: p(125) }),
    frame({ opcode: CONT, payload: p(50) })
  ]), limit100c, [ping(p(125)), pong(p(125)), binary(p(100))], 'control frames between fragments do not count')

  expectEvents(t, Buffer.concat([
    frame({ opcode: BINARY, fin: false, payload: p(50) }),
    frame({ opcode: CONT, payload: p(50) }),
    frame({ opcode: TEXT, fin: false, payload: p(50) }),
    frame({ opcode: CONT, payload: p(50) }),
    frame({ opcode: BINARY, payload: p(100) })
  ]), limit100c, [binary(p(100)), text(p(100)), binary(p(100))], 'the count restarts with each message')

  const zero: FrameParserOptions = { role: 'client', maxMessageSize: 0 }
  expectEvents(t, Buffer.concat([frame({ opcode: TEXT, payload: '' }), frame({ opcode: BINARY, payload: 'x' })]), zero,
    [text(''), error(1009, /limit/)], 'a zero limit allows only empty messages')
})

t.test('reserved bits', async (t) => {
  for (const options of [SERVER, CLIENT, { ...SERVER, allowRsv1: true }, { ...CLIENT, allowRsv1: true }]) {
    const f = (x: RawFrame): Buffer => forRole(options, x)
    const label = `${options.role}${options.allowRsv1 === true ? ', allowRsv1' : ''}`
    expectEvents(t, Buffer.concat([f({ opcode: TEXT, rsv2: true, payload: 'x' }), trailer(options)]), options,
      [error(1002, /RSV2/)], `RSV2 (${label})`)
    expectEvents(t, Buffer.concat([f({ opcode: BINARY, rsv3: true, payload: 'x' }), trailer(options)]), options,
      [error(1002, /RSV3/)], `RSV3 (${label})`)
    expectEvents(t, Buffer.concat([f({ opcode: PING, rsv1: true, payload: 'x' }), trailer(options)]), options,
      [error(1002, /RSV1/)], `RSV1 on a control frame (${label})`)
    expectEvents(t, Buffer.concat([
      f({ opcode: TEXT, fin: false, payload: 'x' }),
      f({ opcode: CONT, rsv1: true, payload: 'y' }),
      trailer(options)
    ]), options, [error(1002, /RSV1/)], `RSV1 on a continuation frame (${label})`)
  }

  for (const options of [SERVER, CLIENT]) {
    const f = (x: RawFrame): Buffer => forRole(options, x)
    expectEvents(t, Buffer.concat([f({ opcode: TEXT, rsv1: true, payload: 'x' }), trailer(options)]), options,
      [error(1002, /RSV1/)], `RSV1 without a negotiated extension (${options.role})`)
    expectEvents(t, Buffer.concat([f({ opcode: BINARY, fin: false, rsv1: true, payload: 'x' }), trailer(options)]), options,
      [error(1002, /RSV1/)], `RSV1 on a first fragment without a negotiated extension (${options.role})`)

    const ext = { ...options, allowRsv1: true }
    expectEvents(t, Buffer.concat([
      f({ opcode: TEXT, rsv1: true, payload: 'packed' }),
      f({ opcode: BINARY, rsv1: true, payload: Buffer.from([1]) }),
      f({ opcode: TEXT, payload: 'plain' }),
      f({ opcode: BINARY, fin: false, rsv1: true, payload: Buffer.from([2]) }),
      f({ opcode: PING, payload: 'between' }),
      f({ opcode: CONT, payload: Buffer.from([3]) }),
      f({ opcode: TEXT, fin: false, payload: 'pl' }),
      f({ opcode: CONT, payload: 'ain' })
    ]), ext, [
      text('packed', true), binary(Buffer.from([1]), true), text('plain', false),
      ping('between'), binary(Buffer.from([2, 3]), true), text('plain', false)
    ], `RSV1 allowed on first data frames with allowRsv1, reported as compressed (${options.role})`)

    // A compressed text payload is not UTF-8 yet: checking it is the extension's job after decoding.
    expectEvents(t, Buffer.concat([
      f({ opcode: TEXT, rsv1: true, payload: hex('ff fe c0') }),
      f({ opcode: TEXT, fin: false, rsv1: true, payload: hex('ed a0') }),
      f({ opcode: CONT, payload: hex('80 f5') })
    ]), ext, [text(hex('ff fe c0'), true), text(hex('ed a0 80 f5'), true)], `compressed text is not UTF-8 checked (${options.role})`)
  }
})

t.test('reserved opcodes', async (t) => {
  for (const opcode of [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    for (const options of [SERVER, CLIENT]) {
      expectEvents(t, Buffer.concat([forRole(options, { opcode, payload: 'x' }), trailer(options)]), options,
        [error(1002, /reserved opcode/)], `opcode 0x${opcode.toString(16)} (${options.role})`)
    }
    // Also in the middle of a fragmented message.
    expectEvents(t, Buffer.concat([
      frame({ opcode: TEXT, fin: false, payload: 'a' }),
      frame({ opcode, fin: true, payload: '' })
    ]), CLIENT, [error(1002, /reserved opcode/)], `opcode 0x${opcode.toString(16)} between fragments`)
  }
})

t.test('control frame rules', async (t) => {
  for (const opcode of [PING, PONG, CLOSE]) {
    for (const options of [SERVER, CLIENT]) {
      const f = (x: RawFrame): Buffer => forRole(options, x)
      const name = `opcode 0x${opcode.toString(16)} (${options.role})`
      const big = Buffer.alloc(126, 0x30)
      big.writeUInt16BE(1000, 0)
      // The header claiming 126 bytes is enough.
      expectEvents(t, f({ opcode, payload: big }).subarray(0, options.role === 'server' ? 8 : 4), options,
        [error(1002, /125/)], `payload of 126 bytes: ${name}`)
      expectEvents(t, f({ opcode, payload: Buffer.alloc(2), lengthBits: 64 }), options,
        [error(1002, /125/)], `64-bit length form: ${name}`)
      expectEvents(t, Buffer.concat([f({ opcode, fin: false, payload: hex('03e8') }), trailer(options)]), options,
        [error(1002, /fragmented/)], `FIN = 0: ${name}`)
    }
  }
  const max = Buffer.alloc(125, 0x70)
  expectEvents(t, Buffer.concat([frame({ opcode: PING, payload: max }), frame({ opcode: PONG, payload: max })]), CLIENT,
    [ping(max), pong(max)], '125 bytes are allowed')
  // 125 fits the 7-bit field, so a control frame using an extended length form is refused outright.
  expectEvents(t, frame({ opcode: PING, payload: Buffer.alloc(5), lengthBits: 16 }), CLIENT,
    [error(1002, /125/)], 'a control frame in the 16-bit length form')
})

t.test('masking rules depend on the role', async (t) => {
  for (const opcode of [TEXT, BINARY, PING, CLOSE]) {
    const payload = opcode === CLOSE ? hex('03e8') : Buffer.from('x')
    expectEvents(t, Buffer.concat([frame({ opcode, payload }), TRAILER_FROM_CLIENT]), SERVER,
      [error(1002, /must be masked/)], `unmasked opcode ${opcode} to a server`)
    expectEvents(t, Buffer.concat([fromClient({ opcode, payload }), TRAILER_FROM_SERVER]), CLIENT,
      [error(1002, /must not be masked/)], `masked opcode ${opcode} to a client`)
  }
  expectEvents(t, Buffer.concat([
    fromClient({ opcode: TEXT, fin: false, payload: 'a' }),
    frame({ opcode: CONT, payload: 'b' })
  ]), SERVER, [error(1002, /masked/)], 'an unmasked continuation to a server')
  // Any key works, including all zeros, and each frame has its own.
  expectEvents(t, Buffer.concat([
    fromClient({ opcode: TEXT, fin: false, payload: 'ab', mask: Uint8Array.of(0, 0, 0, 0) }),
    fromClient({ opcode: CONT, payload: 'cdefg', mask: Uint8Array.of(1, 2, 3, 4) })
  ]), SERVER, [text('abcdefg')], 'per-frame keys')
})

t.test('fragmentation rules', async (t) => {
  for (const options of [SERVER, CLIENT]) {
    const f = (x: RawFrame): Buffer => forRole(options, x)
    expectEvents(t, Buffer.concat([f({ opcode: CONT, payload: 'x' }), trailer(options)]), options,
      [error(1002, /continuation/)], `continuation with no message open (${options.role})`)
    expectEvents(t, Buffer.concat([f({ opcode: TEXT, payload: 'done' }), f({ opcode: CONT, payload: 'x' }), trailer(options)]), options,
      [text('done'), error(1002, /continuation/)], `continuation after a complete message (${options.role})`)
    for (const opcode of [TEXT, BINARY]) {
      expectEvents(t, Buffer.concat([
        f({ opcode: BINARY, fin: false, payload: 'a' }),
        f({ opcode, payload: 'b' }),
        trailer(options)
      ]), options, [error(1002, /still open/)], `opcode ${opcode} while a message is open (${options.role})`)
    }
  }
})

t.test('text must be UTF-8: single frames', async (t) => {
  for (const value of VALID_TEXTS) {
    expectEvents(t, fromClient({ opcode: TEXT, payload: value }), SERVER, [text(value)], `valid ${JSON.stringify(value)}`)
  }
  for (const { name, bytes } of INVALID_SEQUENCES) {
    expectEvents(t, Buffer.concat([fromClient({ opcode: TEXT, payload: bytes }), TRAILER_FROM_CLIENT]), SERVER,
      [error(1007, /UTF-8/)], `invalid: ${name}`)
    expectEvents(t, frame({ opcode: BINARY, payload: bytes }), CLIENT, [binary(bytes)], `fine as binary: ${name}`)
  }
  for (const { name, bytes } of TRUNCATED_SEQUENCES) {
    expectEvents(t, Buffer.concat([fromClient({ opcode: TEXT, payload: bytes }), TRAILER_FROM_CLIENT]), SERVER,
      [error(1007, /UTF-8/)], `truncated: ${name}`)
  }
})

t.test('text must be UTF-8: fragmented messages fail fast', async (t) => {
  for (const { name, bytes, failsAt } of INVALID_SEQUENCES) {
    // Only the first fragment, ending right after the bad byte, and no final fragment at all.
    const first = fromClient({ opcode: TEXT, fin: false, payload: bytes.subarray(0, failsAt + 1) })
    expectEvents(t, first, SERVER, [error(1007, /UTF-8/)], `first fragment, before the final one arrives: ${name}`)
    // The bad byte in a middle fragment.
    expectEvents(t, Buffer.concat([
      fromClient({ opcode: TEXT, fin: false, payload: 'ok ' }),
      fromClient({ opcode: CONT, fin: false, payload: bytes })
    ]), SERVER, [error(1007, /UTF-8/)], `middle fragment: ${name}`)
  }

  // Valid code points split across fragments at every inner position, and byte per fragment.
  for (const ch of ['é', '€', '😀', '\u{10ffff}', '\u{ffff}']) {
    const bytes = Buffer.from(`<${ch}>`)
    for (let cut = 1; cut < bytes.length; cut++) {
      expectEvents(t, Buffer.concat([
        fromClient({ opcode: TEXT, fin: false, payload: bytes.subarray(0, cut) }),
        fromClient({ opcode: CONT, payload: bytes.subarray(cut) })
      ]), SERVER, [text(bytes)], `${JSON.stringify(ch)} cut at byte ${cut}`)
    }
    const perByte = [...bytes].map((b, i) => fromClient({ opcode: i === 0 ? TEXT : CONT, fin: i === bytes.length - 1, payload: Buffer.of(b) }))
    expectEvents(t, Buffer.concat(perByte), SERVER, [text(bytes)], `${JSON.stringify(ch)} one byte per fragment`)
  }

  // Invalid sequences whose bad byte is the first of the next fragment: caught at that fragment, final or not.
  const splits: Array<[string, string]> = [
    ['e0', '80 80'], ['e0', '9f bf'], ['ed', 'a0 80'], ['ed', 'bf bf'], ['f0', '80 80 80'],
    ['f0', '8f bf bf'], ['f4', '90 80 80'], ['f0 9f', '41'], ['c3', 'c3'], ['e2 82', 'e2']
  ]
  for (const [a, b] of splits) {
    expectEvents(t, Buffer.concat([
      fromClient({ opcode: TEXT, fin: false, payload: hex(a) }),
      fromClient({ opcode: CONT, fin: false, payload: hex(b) })
    ]), SERVER, [error(1007, /UTF-8/)], `${a} | ${b}, without a final fragment`)
  }

  // A code point still open when the final fragment ends.
  for (const { name, bytes } of TRUNCATED_SEQUENCES) {
    expectEvents(t, Buffer.concat([
      fromClient({ opcode: TEXT, fin: false, payload: 'start ' }),
      fromClient({ opcode: CONT, payload: bytes }),
      TRAILER_FROM_CLIENT
    ]), SERVER, [error(1007, /UTF-8/)], `truncated at the end of the final fragment: ${name}`)
    // Not an error while more fragments may follow.
    expectEvents(t, fromClient({ opcode: TEXT, fin: false, payload: bytes }), SERVER, [], `fine mid-message: ${name}`)
  }
  expectEvents(t, Buffer.concat([
    fromClient({ opcode: TEXT, fin: false, payload: hex('f0 9f') }),
    fromClient({ opcode: CONT, fin: false, payload: Buffer.alloc(0) }),
    fromClient({ opcode: CONT, payload: hex('98 80') })
  ]), SERVER, [text('😀')], 'an empty fragment in the middle of a code point')

  // The validator starts afresh with each message.
  expectEvents(t, Buffer.concat([
    fromClient({ opcode: TEXT, fin: false, payload: 'a' }),
    fromClient({ opcode: CONT, payload: 'b' }),
    fromClient({ opcode: TEXT, fin: false, payload: hex('80') }),
    fromClient({ opcode: CONT, payload: 'x' })
  ]), SERVER, [text('ab'), error(1007, /UTF-8/)], 'no state leaks from one message to the next')
  expectEvents(t, Buffer.concat([
    fromClient({ opcode: BINARY, fin: false, payload: hex('e2') }),
    fromClient({ opcode: CONT, payload: hex('82') }),
    fromClient({ opcode: TEXT, fin: false, payload: hex('ac') }),
    fromClient({ opcode: CONT, payload: 'x' })
  ]), SERVER, [binary(hex('e2 82')), error(1007, /UTF-8/)], 'binary fragments do not feed the validator')
})

t.test('close frames', async (t) => {
  for (const options of [SERVER, CLIENT]) {
    const f = (x: RawFrame): Buffer => forRole(options, x)
    const role = options.role
    expectEvents(t, Buffer.concat([f({ opcode: CLOSE }), trailer(options)]), options, [close(1005)], `empty: reported as 1005 (${role})`)
    expectEvents(t, Buffer.concat([f({ opcode: CLOSE, payload: hex('03') }), trailer(options)]), options,
      [error(1002, /1 byte/)], `1-byte payload (${role})`)

    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
      const payload = Buffer.alloc(2)
      payload.writeUInt16BE(code)
      expectEvents(t, Buffer.concat([f({ opcode: CLOSE, payload }), trailer(options)]), options,
        [error(1002, new RegExp(`invalid close code ${code}`))], `code ${code} is refused (${role})`)
    }
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
      const payload = Buffer.alloc(2)
      payload.writeUInt16BE(code)
      expectEvents(t, Buffer.concat([f({ opcode: CLOSE, payload }), trailer(options)]), options, [close(code)], `code ${code} (${role})`)
    }

    const reason = 'gone ✓ 😀'
    expectEvents(t, f({ opcode: CLOSE, payload: Buffer.concat([hex('0bb8'), Buffer.from(reason)]) }), options,
      [close(3000, reason)], `UTF-8 reason (${role})`)
    const longest = 'r'.repeat(123)
    expectEvents(t, f({ opcode: CLOSE, payload: Buffer.concat([hex('03e8'), Buffer.from(longest)]) }), options,
      [close(1000, longest)], `123-byte reason (${role})`)
    for (const bad of ['c0 80', 'e2 82', 'ed a0 80', 'ff', '61 80']) {
      expectEvents(t, Buffer.concat([f({ opcode: CLOSE, payload: Buffer.concat([hex('03e8'), hex(bad)]) }), trailer(options)]), options,
        [error(1007, /reason/)], `reason ${bad} is not UTF-8 (${role})`)
    }
  }
})

t.test('nothing is parsed after a close frame or a protocol error', async (t) => {
  const sink = new RecordingSink()
  const parser = new FrameParser(CLIENT, sink)
  t.equal(parser.done, false)
  parser.push(frames({ opcode: TEXT, payload: 'one' }, { opcode: CLOSE, payload: hex('03e8') }, { opcode: TEXT, payload: 'two' }))
  t.equal(parser.done, true, 'done after the close frame')
  parser.push(frame({ opcode: TEXT, payload: 'three' }))
  parser.push(hex('ff'))
  t.same(summarize(sink.events), summarize([text('one'), close(1000)]), 'later frames, in the same chunk or later ones, are ignored')

  const sink2 = new RecordingSink()
  const parser2 = new FrameParser(CLIENT, sink2)
  parser2.push(Buffer.concat([frame({ opcode: 0x3 }), frame({ opcode: TEXT, payload: 'x' })]))
  parser2.push(frame({ opcode: CLOSE, payload: hex('03e8') }))
  t.equal(parser2.done, true, 'done after a protocol error')
  t.same(sink2.events.map((e) => e.type), ['error'], 'one error, nothing after')

  const sink3 = new RecordingSink()
  const parser3 = new FrameParser(CLIENT, sink3)
  parser3.push(frame({ opcode: TEXT, payload: 'abcdef' }).subarray(0, 4))
  parser3.stop()
  t.equal(parser3.done, true, 'done after stop()')
  parser3.push(frame({ opcode: TEXT, payload: 'abcdef' }).subarray(4))
  parser3.push(frame({ opcode: TEXT, payload: 'x' }))
  t.same(sink3.events, [], 'stop() drops the frame in progress and ignores later input')
})

t.test('payloads that arrive whole are views of the chunk, unmasked in place', async (t) => {
  const sink = new RecordingSink()
  const chunk = Buffer.concat([fromClient({ opcode: BINARY, payload: 'zero copy' }), fromClient({ opcode: TEXT, payload: 'second' })])
  new FrameParser(SERVER, sink).push(chunk)
  const [first, second] = sink.events
  t.ok(first.type === 'message' && first.data.buffer === chunk.buffer && first.data.byteOffset === chunk.byteOffset + 6, 'first payload is a view')
  t.ok(second.type === 'message' && second.data.buffer === chunk.buffer, 'second payload is a view')
  t.equal(first.type === 'message' && first.data.toString(), 'zero copy')
  t.same(chunk.subarray(6, 15).toString(), 'zero copy', 'the chunk was unmasked in place')
})

t.test('text that spans chunks fails at the bad byte, before the frame is complete', async (t) => {
  for (const options of [SERVER, CLIENT]) {
    const role = options.role
    const f = (x: RawFrame): Buffer => forRole(options, x)
    const payload = Buffer.concat([Buffer.from('fine so far '), hex('ff'), Buffer.alloc(1000, 0x61)])
    const single = f({ opcode: TEXT, payload })
    // Only up to the bad byte is fed: the rest of the frame never arrives.
    const cut = single.length - 1000
    expectEvents(t, single.subarray(0, cut), options, [error(1007, /UTF-8/)], `single frame, cut after the bad byte (${role})`)
    const fragment = f({ opcode: TEXT, fin: false, payload })
    expectEvents(t, fragment.subarray(0, fragment.length - 1000), options, [error(1007, /UTF-8/)], `first fragment, cut after the bad byte (${role})`)
    const middle = Buffer.concat([f({ opcode: TEXT, fin: false, payload: 'a' }), f({ opcode: CONT, fin: false, payload })])
    expectEvents(t, middle.subarray(0, middle.length - 1000), options, [error(1007, /UTF-8/)], `continuation, cut after the bad byte (${role})`)
    // Valid text in a frame larger than the parser's eager limit, in pieces, still passes.
    const big = Buffer.from('é€😀'.repeat(10_000))
    const events = parseChunks(options, chunksOf(f({ opcode: TEXT, payload: big }), 4093))
    t.same(summarize(events), summarize([text(big)]), `valid multi-byte text across many chunks (${role})`)
    const truncated = Buffer.concat([big, hex('e2 82')])
    const bad = parseChunks(options, chunksOf(f({ opcode: TEXT, payload: truncated }), 4093))
    t.same(bad.map((e) => e.type === 'error' ? e.code : e.type), [1007], `a code point left open at the end of a large frame (${role})`)
  }
})
