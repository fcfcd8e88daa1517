import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { InvalidMessageCode, InvalidMessageError } from '../../lib/index.js'
import {
  ERROR_CODES, FrameParser, ProtocolError, WebSocketError, WebSocketProtocol, encodeControlFrame, parseExtensions,
  type ErrorCode, type FrameParserOptions, type FrameParserSink, type MessageExtension
} from '../../lib/protocol/index.js'
import { hex } from '../helpers/data.js'
import { RecordingHandler, frame, type RawFrame } from '../helpers/protocol.js'

// Each error has a stable `code` and the close code it leads to: here for
// every rule the frame parser checks (fed as bytes), the calls the protocol
// core refuses, and the code table against README's "Errors and their codes".

const TEXT = 0x1
const BINARY = 0x2
const CONT = 0x0
const CLOSE = 0x8
const PING = 0x9

const SERVER: FrameParserOptions = { role: 'server', maxMessageSize: 1 << 20 }
const CLIENT: FrameParserOptions = { role: 'client', maxMessageSize: 1 << 20 }

/** A frame as a client sends it: masked. */
const c = (f: RawFrame): Buffer => frame({ mask: true, ...f })

/** Keeps the protocol errors a parser reports; ignores the rest. */
class ErrorSink implements FrameParserSink {
  readonly errors: ProtocolError[] = []
  onMessage (): void {}
  onPing (): void {}
  onPong (): void {}
  onClose (): void {}
  onProtocolError (error: ProtocolError): void { this.errors.push(error) }
}

/** The errors `input` makes a parser report, fed whole and fed byte by byte. */
function failures (options: FrameParserOptions, input: Buffer): { whole: ProtocolError[], byByte: ProtocolError[] } {
  const whole = new ErrorSink()
  new FrameParser(options, whole).push(Buffer.from(input))
  const byByte = new ErrorSink()
  const parser = new FrameParser(options, byByte)
  for (let i = 0; i < input.length; i++) parser.push(Buffer.from(input.subarray(i, i + 1)))
  return { whole: whole.errors, byByte: byByte.errors }
}

type Violation = [name: string, options: FrameParserOptions, input: Buffer, code: ErrorCode, closeCode: number]

const VIOLATIONS: Violation[] = [
  ['a2 00 to a server: RSV2 set', SERVER, hex('a2 00'), 'WS_ERR_UNEXPECTED_RSV_2_3', 1002],
  ['RSV3 set', SERVER, c({ opcode: BINARY, rsv3: true }), 'WS_ERR_UNEXPECTED_RSV_2_3', 1002],
  ['RSV1 with no extension negotiated', SERVER, c({ opcode: TEXT, rsv1: true, payload: 'x' }), 'WS_ERR_UNEXPECTED_RSV_1', 1002],
  ['RSV1 on a control frame', { ...SERVER, allowRsv1: true }, c({ opcode: PING, rsv1: true }), 'WS_ERR_UNEXPECTED_RSV_1', 1002],
  ['RSV1 on a continuation frame', { ...SERVER, allowRsv1: true },
    Buffer.concat([c({ opcode: TEXT, fin: false, payload: 'a' }), c({ opcode: CONT, rsv1: true, payload: 'b' })]), 'WS_ERR_UNEXPECTED_RSV_1', 1002],
  ['reserved data opcode 0x3', SERVER, c({ opcode: 0x3 }), 'WS_ERR_INVALID_OPCODE', 1002],
  ['reserved control opcode 0xb', SERVER, c({ opcode: 0xb }), 'WS_ERR_INVALID_OPCODE', 1002],
  ['a continuation with no message in progress', SERVER, c({ opcode: CONT, payload: 'x' }), 'WS_ERR_INVALID_OPCODE', 1002],
  ['a new data frame inside a fragmented message', SERVER,
    Buffer.concat([c({ opcode: TEXT, fin: false, payload: 'a' }), c({ opcode: BINARY, payload: 'b' })]), 'WS_ERR_INVALID_OPCODE', 1002],
  ['a fragmented ping (FIN = 0)', SERVER, c({ opcode: PING, fin: false }), 'WS_ERR_EXPECTED_FIN', 1002],
  ['a ping of 126 bytes', SERVER, c({ opcode: PING, payload: Buffer.alloc(126) }), 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', 1002],
  ['a close payload of 1 byte', SERVER, c({ opcode: CLOSE, payload: hex('03') }), 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', 1002],
  ['an unmasked frame to a server', SERVER, frame({ opcode: TEXT, payload: 'x' }), 'WS_ERR_EXPECTED_MASK', 1002],
  ['a masked frame to a client', CLIENT, c({ opcode: TEXT, payload: 'x' }), 'WS_ERR_UNEXPECTED_MASK', 1002],
  ['a 64-bit length with its top bit set', CLIENT, hex('82 7f 8000000000000000'), 'WS_ERR_UNEXPECTED_LENGTH_MSB', 1002],
  ['a 64-bit length of 2^53, no size limit', { role: 'client', maxMessageSize: Infinity }, hex('82 7f 0020000000000000'),
    'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', 1009],
  ['a frame over maxMessageSize', { role: 'server', maxMessageSize: 10 }, c({ opcode: BINARY, payload: Buffer.alloc(11) }),
    'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 1009],
  ['fragments adding up to more than maxMessageSize', { role: 'server', maxMessageSize: 10 },
    Buffer.concat([c({ opcode: BINARY, fin: false, payload: Buffer.alloc(6) }), c({ opcode: CONT, payload: Buffer.alloc(6) })]),
    'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 1009],
  ['a text message that is not UTF-8', SERVER, c({ opcode: TEXT, payload: hex('ff') }), 'WS_ERR_INVALID_UTF8', 1007],
  ['text fragments that are not UTF-8', SERVER,
    Buffer.concat([c({ opcode: TEXT, fin: false, payload: hex('e2 82') }), c({ opcode: CONT, payload: 'A' })]), 'WS_ERR_INVALID_UTF8', 1007],
  ['a close frame with code 1005', SERVER, c({ opcode: CLOSE, payload: hex('03 ed') }), 'WS_ERR_INVALID_CLOSE_CODE', 1002],
  ['a close frame with code 2999', SERVER, c({ opcode: CLOSE, payload: hex('0b b7') }), 'WS_ERR_INVALID_CLOSE_CODE', 1002],
  ['a close reason that is not UTF-8', SERVER, c({ opcode: CLOSE, payload: hex('03 e8 ff') }), 'WS_ERR_INVALID_UTF8', 1007],
  ['a message in too many pieces', { ...SERVER, maxMessagePieces: 1, minAveragePieceSize: 1000 },
    Buffer.concat([c({ opcode: BINARY, fin: false, payload: 'a' }), c({ opcode: CONT, payload: 'b' })]), 'WS_ERR_MESSAGE_TOO_FRAGMENTED', 1008]
]

t.test('every frame parser violation carries its code and close code, however the bytes are chunked', async (t) => {
  for (const [name, options, input, code, closeCode] of VIOLATIONS) {
    t.equal(ERROR_CODES[code].closeCode, closeCode, `${name}: the table gives ${code} close code ${closeCode}`)
    const { whole, byByte } = failures(options, input)
    t.equal(whole.length, 1, `${name}: one error`)
    t.match(whole[0], { code, closeCode }, `${name}: ${code}, ${closeCode}`)
    t.ok(whole[0] instanceof ProtocolError && whole[0] instanceof WebSocketError, `${name}: a ProtocolError, a WebSocketError`)
    t.match(byByte, [{ code, closeCode }], `${name}: the same byte by byte`)
  }
})

t.test('the protocol core reports the coded error and closes with its close code', async (t) => {
  const h = new RecordingHandler()
  const p = new WebSocketProtocol({ role: 'server', maxMessageSize: 1 << 16 }, h)
  p.receive(hex('a2 00'))
  const reported = h.events.find((e) => e.type === 'error')
  t.match(reported, { type: 'error', error: { code: 'WS_ERR_UNEXPECTED_RSV_2_3', closeCode: 1002 } })
  t.equal(h.frames()[0]?.payload.readUInt16BE(0), 1002, 'the close frame sent carries 1002')
  t.equal(p.closeCode, 1002)
})

t.test('decoded text that is not UTF-8 is WS_ERR_INVALID_UTF8', async (t) => {
  const identity: MessageExtension = {
    name: 'identity',
    decode: (data, _max, done) => { done(null, data) },
    encode: (data, done) => { done(null, data, false) }
  }
  const h = new RecordingHandler()
  const p = new WebSocketProtocol({ role: 'server', maxMessageSize: 1 << 16, extension: identity }, h)
  p.receive(c({ opcode: TEXT, rsv1: true, payload: hex('c3 28') }))
  t.match(h.events.find((e) => e.type === 'error'), { error: { code: 'WS_ERR_INVALID_UTF8', closeCode: 1007 } })
})

t.test('calls the core refuses carry codes', async (t) => {
  const h = new RecordingHandler()
  const p = new WebSocketProtocol({ role: 'server', maxMessageSize: 1 << 16 }, h)
  t.throws(() => p.close(1005), { name: 'RangeError', code: 'WS_ERR_INVALID_ARGUMENT' }, 'a close code that may not be sent')
  t.throws(() => p.close(1000, 'r'.repeat(124)), { name: 'RangeError', code: 'WS_ERR_INVALID_ARGUMENT' }, 'a reason over 123 bytes')
  t.throws(() => encodeControlFrame(PING, Buffer.alloc(126)), { name: 'RangeError', code: 'WS_ERR_INVALID_ARGUMENT' }, 'a ping over 125 bytes')
  t.throws(() => parseExtensions('a b'), { name: 'SyntaxError', code: 'WS_ERR_INVALID_ARGUMENT' }, 'a malformed extension header')
  p.close(1000)
  t.throws(() => p.send('late'), { name: 'WebSocketError', code: 'WS_ERR_NOT_OPEN', closeCode: undefined }, 'send once closing')
  t.throws(() => p.ping(), { name: 'WebSocketError', code: 'WS_ERR_NOT_OPEN' }, 'ping once closing')
})

t.test('WebSocketError keeps its constructor; ProtocolError is one with a required code and close code', async (t) => {
  const plain = new WebSocketError('WS_ERR_BUFFER_FULL', 'full')
  t.match(plain, { name: 'WebSocketError', code: 'WS_ERR_BUFFER_FULL', message: 'full', closeCode: undefined })
  t.equal(new WebSocketError('WS_ERR_PING_FLOOD', 'flood', 1008).closeCode, 1008)
  const violation = new ProtocolError('WS_ERR_INVALID_OPCODE', 'reserved opcode 0x3', 1002)
  t.ok(violation instanceof WebSocketError, 'a ProtocolError is a WebSocketError')
  t.match(violation, { name: 'ProtocolError', code: 'WS_ERR_INVALID_OPCODE', message: 'reserved opcode 0x3', closeCode: 1002 })
  const OldOrder = ProtocolError as unknown as new (...args: unknown[]) => ProtocolError
  t.throws(() => new OldOrder(1002, 'reserved opcode'), { name: 'TypeError', code: 'WS_ERR_INVALID_ARGUMENT' },
    'the order before codes, (closeCode, message), is refused rather than taken as a code')
})

/** The rows of README's "Errors and their codes" table: code → close code (null for —). */
function readmeTable (): Map<string, number | null> {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8')
  const start = readme.indexOf('\n## Errors and their codes\n')
  const end = readme.indexOf('\n## ', start + 1)
  const rows = new Map<string, number | null>()
  for (const line of readme.slice(start, end).split('\n')) {
    const match = /^\| `([A-Z0-9_]+)` \| ([^|]+) \|/.exec(line)
    if (match === null) continue
    const close = match[2].trim()
    rows.set(match[1], close === '—' ? null : Number(/^\d{4}/.exec(close)?.[0]))
  }
  return rows
}

t.test('README lists every code of the table with its close code, and no other', async (t) => {
  const rows = readmeTable()
  t.ok(rows.size > 30, `README's table was found (${rows.size} rows)`)
  for (const [code, info] of Object.entries(ERROR_CODES)) {
    t.ok(rows.has(code), `${code} is in README`)
    if (rows.has(code)) t.equal(rows.get(code), info.closeCode, `${code}: README gives close code ${String(info.closeCode)}`)
  }
  t.same([...rows.keys()].filter((code) => !(code in ERROR_CODES)), [], 'README lists no code the table lacks')
})

t.test('every code written in lib/ is in the table', async (t) => {
  const lib = path.join(__dirname, '..', '..', 'lib')
  const used = new Set<string>()
  for (const name of fs.readdirSync(lib, { recursive: true }) as string[]) {
    if (!name.endsWith('.ts')) continue
    const source = fs.readFileSync(path.join(lib, name), 'utf8')
    for (const match of source.matchAll(/'((?:WS|FST)_ERR_[A-Z0-9_]+)'/g)) used.add(match[1])
  }
  t.ok(used.has('WS_ERR_UNEXPECTED_RSV_2_3') && used.has('FST_ERR_WS_INVALID_JSON'), 'the scan finds codes')
  t.same([...used].filter((code) => !(code in ERROR_CODES)).sort(), [], 'no code outside the table')
})

t.test('the JSON message codes are in the table with the close code InvalidMessageError carries', async (t) => {
  for (const code of Object.values(InvalidMessageCode)) {
    t.equal(ERROR_CODES[code].closeCode, new InvalidMessageError(code, 'x').closeCode, code)
  }
})
