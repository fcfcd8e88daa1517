import t from 'tap'
import { CloseCode, ProtocolError, ReadyState, WebSocketProtocol, truncateReason, type ProtocolOptions, type Role } from '../../lib/protocol/index.js'
import { closePayload, type Frame } from '../helpers/wire.cjs'
import { hex } from '../helpers/data.js'
import { Link, RecordingHandler, frame, type RawFrame } from '../helpers/protocol.js'

const TEXT = 0x1
const BINARY = 0x2
const CONT = 0x0
const CLOSE = 0x8
const PING = 0x9
const PONG = 0xa

function setup (role: Role, options: Partial<ProtocolOptions> = {}): { p: WebSocketProtocol, h: RecordingHandler } {
  const h = new RecordingHandler()
  const p = new WebSocketProtocol({ role, maxMessageSize: 1 << 16, ...options }, h)
  return { p, h }
}

/** A frame as the peer of `role` sends it: masked when it comes from a client. */
const fromPeer = (role: Role, f: RawFrame): Buffer => frame({ mask: role === 'server', ...f })

const summary = (f: Frame): { opcode: number, masked: boolean, payload: string } =>
  ({ opcode: f.opcode, masked: f.masked, payload: f.payload.toString('hex') })

t.test('ReadyState values', async (t) => {
  t.same(ReadyState, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 })
})

t.test('server receives a close: echoes the code, then asks for the transport to close', async (t) => {
  const { p, h } = setup('server')
  t.equal(p.readyState, ReadyState.OPEN)
  p.receive(fromPeer('server', { opcode: CLOSE, payload: closePayload(1000, 'bye') }))
  t.same(h.frames().map(summary), [{ opcode: CLOSE, masked: false, payload: '03e8' }], 'a close frame echoing 1000 (status only)')
  t.same(h.log, ['write', 'closeFrame', 'closeTransport'], 'the reply is written before the transport is closed')
  t.same(h.events[0], { type: 'closeFrame', code: 1000, reason: 'bye' })
  t.equal(h.closeTransportCalls, 1)
  t.equal(p.readyState, ReadyState.CLOSING)
  t.equal(p.closeCode, 1000)
  t.equal(p.closeReason, 'bye')
  t.ok(p.closeReceived && p.closeSent && p.wasClean, 'both close frames exchanged')
  p.transportClosed()
  t.equal(p.readyState, ReadyState.CLOSED)
  t.equal(p.wasClean, true)
  t.equal(p.closeCode, 1000, 'the code survives the transport closing')

  for (const code of [1001, 1003, 3000, 4999]) {
    const s = setup('server')
    s.p.receive(fromPeer('server', { opcode: CLOSE, payload: closePayload(code) }))
    t.same(s.h.frames().map(summary), [{ opcode: CLOSE, masked: false, payload: closePayload(code).toString('hex') }], `echoes ${code}`)
  }
})

t.test('a close without a status is answered by a close without one', async (t) => {
  for (const role of ['server', 'client'] as const) {
    const { p, h } = setup(role)
    p.receive(fromPeer(role, { opcode: CLOSE }))
    const [reply] = h.frames()
    t.same({ opcode: reply.opcode, length: reply.payload.length, masked: reply.masked }, { opcode: CLOSE, length: 0, masked: role === 'client' },
      `${role}: empty close frame`)
    t.equal(p.closeCode, CloseCode.NoStatusReceived, `${role}: reported as 1005`)
    t.equal(p.wasClean, true)
  }
})

t.test('after close(): sending throws, a second close() does nothing', async (t) => {
  const { p, h } = setup('server')
  p.close(1001, 'going away')
  t.same(h.frames().map(summary), [{ opcode: CLOSE, masked: false, payload: closePayload(1001, 'going away').toString('hex') }])
  t.equal(p.readyState, ReadyState.CLOSING)
  t.ok(p.closeSent && !p.closeReceived && !p.wasClean)
  t.throws(() => p.send('x'), /closing/, 'send() throws')
  t.throws(() => p.send(Buffer.from('x')), /closing/)
  t.throws(() => p.ping(), /closing/, 'ping() throws')
  t.throws(() => p.pong(), /closing/, 'pong() throws')
  p.close(1000)
  p.close()
  t.equal(h.written.length, 1, 'no second close frame')
  t.equal(h.closeTransportCalls, 0, 'a server that started the handshake waits for the reply')

  // Messages the peer sent before seeing our close still arrive.
  p.receive(fromPeer('server', { opcode: TEXT, payload: 'late' }))
  p.receive(fromPeer('server', { opcode: PING, payload: 'p' }))
  t.same(h.texts(), ['late'], 'a message received after our close is delivered')
  t.equal(h.written.length, 1, 'no pong once our close is sent')

  p.receive(fromPeer('server', { opcode: CLOSE, payload: closePayload(1000) }))
  t.equal(h.written.length, 1, 'the peer\'s close is not answered again')
  t.equal(h.closeTransportCalls, 1, 'now the server closes the transport')
  t.ok(p.wasClean)
  t.equal(p.closeCode, 1000, 'closeCode is the peer\'s')
})

t.test('close() with a bad code or reason throws and changes nothing', async (t) => {
  const { p, h } = setup('server')
  t.throws(() => p.close(1005), RangeError)
  t.throws(() => p.close(1000, 'r'.repeat(124)), RangeError)
  t.throws(() => p.close(undefined, 'reason'), RangeError)
  t.equal(p.readyState, ReadyState.OPEN)
  t.equal(p.closeSent, false)
  t.same(h.written, [])
  p.send('still open')
  t.equal(h.frames()[0].payload.toString(), 'still open')
  p.close()
  t.same(h.frames()[1].payload.length, 0, 'close() without a code sends an empty close frame')
})

t.test('a client never closes the transport after a clean closing handshake', async (t) => {
  const a = setup('client')
  a.p.receive(fromPeer('client', { opcode: CLOSE, payload: closePayload(1000) }))
  t.same(a.h.frames().map(summary), [{ opcode: CLOSE, masked: true, payload: '03e8' }], 'the reply is masked')
  t.equal(a.h.closeTransportCalls, 0, 'server-initiated: the client waits for the server to close TCP')
  t.ok(a.p.wasClean)

  const b = setup('client')
  b.p.close(1000)
  t.equal(b.h.frames()[0].masked, true)
  b.p.receive(fromPeer('client', { opcode: CLOSE, payload: closePayload(1000) }))
  t.equal(b.h.closeTransportCalls, 0, 'client-initiated: still waits for the server')
  t.same(b.h.log, ['write', 'closeFrame'])
  t.ok(b.p.wasClean)

  const c = setup('client')
  c.p.receive(fromPeer('client', { opcode: 0x3 }))
  t.equal(c.h.closeTransportCalls, 1, 'but a client does close the transport on a protocol error')
  const [failure] = c.h.frames()
  t.same({ opcode: failure.opcode, masked: failure.masked, code: failure.payload.readUInt16BE(0) }, { opcode: CLOSE, masked: true, code: 1002 })
  t.match(failure.payload.subarray(2).toString(), /reserved opcode/, 'the reason names the rule')
})

t.test('automatic pongs', async (t) => {
  for (const role of ['server', 'client'] as const) {
    const { p, h } = setup(role)
    p.receive(fromPeer(role, { opcode: PING, payload: 'are you there?' }))
    p.receive(fromPeer(role, { opcode: PING }))
    t.same(h.frames().map(summary), [
      { opcode: PONG, masked: role === 'client', payload: Buffer.from('are you there?').toString('hex') },
      { opcode: PONG, masked: role === 'client', payload: '' }
    ], `${role}: a pong with the same payload for each ping`)
    t.same(h.events.map((e) => e.type), ['ping', 'ping'], `${role}: the handler still hears the pings`)
    t.same(h.log, ['write', 'ping', 'write', 'ping'], `${role}: the pong goes out before the handler is told`)
  }
  const { p, h } = setup('server', { autoPong: false })
  p.receive(fromPeer('server', { opcode: PING, payload: 'x' }))
  t.same(h.written, [], 'autoPong: false writes nothing')
  t.same(h.events, [{ type: 'ping', data: Buffer.from('x') }])
  p.pong('x')
  t.same(h.frames().map(summary), [{ opcode: PONG, masked: false, payload: '78' }], 'the application can answer itself')

  const pongs = setup('server')
  pongs.p.receive(fromPeer('server', { opcode: PONG, payload: 'unsolicited' }))
  t.same(pongs.h.events, [{ type: 'pong', data: Buffer.from('unsolicited') }], 'pongs are reported, not answered')
  t.same(pongs.h.written, [])
})

t.test('protocol errors: close frame with the code, then the transport is closed', async (t) => {
  const cases: Array<[string, Buffer, number]> = [
    ['reserved opcode', fromPeer('server', { opcode: 0x3 }), 1002],
    ['unmasked frame', frame({ opcode: TEXT, payload: 'x' }), 1002],
    ['invalid close code', fromPeer('server', { opcode: CLOSE, payload: closePayload(1005) }), 1002],
    ['invalid UTF-8', fromPeer('server', { opcode: TEXT, payload: hex('c0 80') }), 1007],
    ['invalid UTF-8 in a close reason', fromPeer('server', { opcode: CLOSE, payload: Buffer.concat([closePayload(1000), hex('ff')]) }), 1007],
    ['message too big', fromPeer('server', { opcode: BINARY, payload: Buffer.alloc((1 << 16) + 1) }), 1009]
  ]
  for (const [name, input, code] of cases) {
    const { p, h } = setup('server')
    p.receive(Buffer.concat([input, fromPeer('server', { opcode: TEXT, payload: 'ignored' })]))
    const [error] = h.events
    t.ok(error.type === 'error' && error.error instanceof ProtocolError && error.error.closeCode === code, `${name}: onError with a ProtocolError ${code}`)
    const frames = h.frames()
    t.equal(frames.length, 1, `${name}: one frame written`)
    t.equal(frames[0].opcode, CLOSE)
    t.equal(frames[0].payload.readUInt16BE(0), code, `${name}: close frame carries ${code}`)
    t.ok(frames[0].payload.length <= 125)
    t.same(h.log, ['error', 'write', 'closeTransport'], `${name}: error, close frame, then closeTransport`)
    t.equal(p.closeCode, code)
    t.equal(p.wasClean, false, `${name}: not clean`)
    t.equal(p.readyState, ReadyState.CLOSING)
    p.receive(fromPeer('server', { opcode: TEXT, payload: 'ignored too' }))
    t.same(h.texts(), [], `${name}: nothing is delivered afterwards`)
    p.transportClosed()
    t.equal(p.readyState, ReadyState.CLOSED)
    t.equal(p.closeCode, code, `${name}: closeCode keeps the error's code`)
  }
})

t.test('fail()', async (t) => {
  const { p, h } = setup('server')
  p.fail(1011, 'internal error')
  t.same(h.frames().map(summary), [{ opcode: CLOSE, masked: false, payload: closePayload(1011, 'internal error').toString('hex') }])
  t.same(h.log, ['write', 'closeTransport'])
  t.equal(p.readyState, ReadyState.CLOSING)
  t.throws(() => p.send('x'))
  p.receive(fromPeer('server', { opcode: TEXT, payload: 'ignored' }))
  t.same(h.texts(), [], 'input after fail() is ignored')

  const long = setup('client')
  long.p.fail(1008, '€'.repeat(100))
  const [closeFrame] = long.h.frames()
  t.equal(closeFrame.masked, true)
  t.equal(closeFrame.payload.length, 2 + 123, 'a long reason is cut to 123 bytes')
  t.equal(closeFrame.payload.subarray(2).toString(), '€'.repeat(41), 'on a code point boundary')

  const afterClose = setup('server')
  afterClose.p.close(1000)
  afterClose.p.fail(1011)
  t.equal(afterClose.h.written.length, 1, 'no second close frame after close()')
  t.equal(afterClose.h.closeTransportCalls, 1, 'but the transport is closed')
})

t.test('fail() with a code that may not go on the wire still fails the connection', async (t) => {
  for (const [code, wire] of [[1005, ''], [1006, null], [1015, null], [999, null]] as const) {
    const { p, h } = setup('server')
    t.doesNotThrow(() => p.fail(code, 'reason'), `fail(${code}) does not throw`)
    const frames = h.frames()
    if (wire === null) t.same(frames, [], `${code}: no close frame`)
    else t.same(frames.map(summary), [{ opcode: CLOSE, masked: false, payload: wire }], `${code}: a close frame without a status`)
    t.equal(h.closeTransportCalls, 1, `${code}: the transport is closed`)
    t.equal(p.readyState, ReadyState.CLOSING)
    t.throws(() => p.send('x'), /closing/, `${code}: nothing more can be sent`)
  }
})

t.test('transportClosed() without a close frame', async (t) => {
  const { p, h } = setup('server')
  p.transportClosed()
  t.equal(p.readyState, ReadyState.CLOSED)
  t.equal(p.closeCode, CloseCode.Abnormal, '1006')
  t.equal(p.wasClean, false)
  t.throws(() => p.send('x'), /closed/)
  t.throws(() => p.ping(), /closing/)
  p.close(1000)
  p.fail(1011)
  p.receive(fromPeer('server', { opcode: TEXT, payload: 'x' }))
  p.transportClosed()
  t.same(h.written, [], 'nothing is written once the transport is gone')
  t.same(h.events, [], 'and nothing is reported')

  const half = setup('server')
  half.p.close(1000)
  half.p.transportClosed()
  t.equal(half.p.closeCode, 1006, 'our close alone: still 1006')
  t.equal(half.p.wasClean, false)
})

t.test('send() chooses the opcode and masks by role', async (t) => {
  const { p, h } = setup('client')
  const done: Array<Error | null | undefined> = []
  p.send('text', undefined, (err) => done.push(err))
  p.send(Buffer.from([1, 2]))
  p.send(new Uint8Array([3]))
  p.send(new Uint8Array([0x61, 0x62, 0x63, 0x64]).subarray(1, 3).buffer.slice(1, 3))
  p.send(new DataView(new Uint8Array([9, 8, 7]).buffer, 1, 2))
  p.send('as binary', true)
  p.send(Buffer.from('as text'), false)
  t.same(h.frames().map((f) => ({ opcode: f.opcode, masked: f.masked, fin: f.fin, rsv1: f.rsv1, payload: f.payload.toString('hex') })), [
    { opcode: TEXT, masked: true, fin: true, rsv1: false, payload: Buffer.from('text').toString('hex') },
    { opcode: BINARY, masked: true, fin: true, rsv1: false, payload: '0102' },
    { opcode: BINARY, masked: true, fin: true, rsv1: false, payload: '03' },
    { opcode: BINARY, masked: true, fin: true, rsv1: false, payload: '6263' },
    { opcode: BINARY, masked: true, fin: true, rsv1: false, payload: '0807' },
    { opcode: BINARY, masked: true, fin: true, rsv1: false, payload: Buffer.from('as binary').toString('hex') },
    { opcode: TEXT, masked: true, fin: true, rsv1: false, payload: Buffer.from('as text').toString('hex') }
  ])
  t.same(done, [null], 'done is called once sent')

  const server = setup('server')
  const big = Buffer.alloc(5000, 1)
  server.p.send(big)
  t.equal(server.h.written.length, 2, 'a large server payload is written as header + payload')
  t.equal(server.h.frames()[0].masked, false)
})

t.test('a conversation between a client and a server wired back to back', async (t) => {
  const link = new Link()
  link.client.send('hello server')
  link.server.send('hello client')
  link.client.send(Buffer.alloc(100000, 7))
  link.server.send(Buffer.from('bin'))
  link.client.ping('c-ping')
  link.server.ping('s-ping')
  t.same(link.serverHandler.events.map((e) => e.type), ['message', 'message', 'ping', 'pong'])
  t.same(link.clientHandler.events.map((e) => e.type), ['message', 'message', 'pong', 'ping'])
  t.same(link.serverHandler.texts()[0], 'hello server')
  t.same(link.clientHandler.texts()[0], 'hello client')
  const big = link.serverHandler.events[1]
  t.ok(big.type === 'message' && big.isBinary && big.data.equals(Buffer.alloc(100000, 7)), 'a 100 KB binary message')
  t.same(link.serverHandler.events[3], { type: 'pong', data: Buffer.from('s-ping') }, 'the server got its pong')
  t.same(link.clientHandler.events[2], { type: 'pong', data: Buffer.from('c-ping') }, 'the client got its pong')

  link.client.close(1000, 'done')
  t.same(link.serverHandler.events.at(-2), { type: 'closeFrame', code: 1000, reason: 'done' })
  t.same(link.clientHandler.events.at(-1), { type: 'closeFrame', code: 1000, reason: '' }, 'the echo carries the code')
  t.equal(link.serverHandler.closeTransportCalls, 1, 'the server closes the transport')
  t.equal(link.clientHandler.closeTransportCalls, 0, 'the client is never asked to')
  t.equal(link.client.readyState, ReadyState.CLOSED)
  t.equal(link.server.readyState, ReadyState.CLOSED)
  t.ok(link.client.wasClean && link.server.wasClean, 'clean on both sides')
  t.equal(link.client.closeCode, 1000)
  t.equal(link.server.closeCode, 1000)
  t.equal(link.server.closeReason, 'done')
})

t.test('server-initiated close, with messages still crossing', async (t) => {
  const link = new Link({ autoFlush: false })
  link.server.close(4000, 'bye')
  link.client.send('in flight')
  link.flush()
  t.same(link.serverHandler.texts(), ['in flight'], 'the server still receives what the client sent before seeing the close')
  t.same(link.clientHandler.events.map((e) => e.type), ['closeFrame'])
  t.equal(link.client.closeCode, 4000)
  t.equal(link.serverHandler.closeTransportCalls, 1)
  t.equal(link.clientHandler.closeTransportCalls, 0)
  t.ok(link.server.wasClean && link.client.wasClean)
})

t.test('a protocol error detected by the client ends both sides', async (t) => {
  const link = new Link()
  link.server.send('ok')
  // A server never masks; feed the client a masked frame as if the server had.
  link.client.receive(frame({ opcode: TEXT, payload: 'bad', mask: true }))
  link.flush()
  t.equal(link.clientHandler.closeTransportCalls, 1, 'the client fails the connection')
  t.equal(link.client.closeCode, 1002)
  t.same(link.serverHandler.events.map((e) => e.type), ['closeFrame', 'closeTransport'], 'the server hears the 1002 and closes too')
  t.equal(link.server.closeCode, 1002)
  t.equal(link.client.readyState, ReadyState.CLOSED)
})

t.test('fragmented input through the protocol', async (t) => {
  const { p, h } = setup('server')
  const input = Buffer.concat([
    fromPeer('server', { opcode: TEXT, fin: false, payload: 'a' }),
    fromPeer('server', { opcode: PING, payload: 'mid' }),
    fromPeer('server', { opcode: CONT, payload: 'b' })
  ])
  for (const byte of input) p.receive(Buffer.of(byte))
  t.same(h.events.map((e) => e.type), ['ping', 'message'])
  t.same(h.texts(), ['ab'])
  t.same(h.frames().map(summary), [{ opcode: PONG, masked: false, payload: Buffer.from('mid').toString('hex') }])
})

t.test('truncateReason', async (t) => {
  t.equal(truncateReason(''), '')
  t.equal(truncateReason('short'), 'short')
  t.equal(truncateReason('x'.repeat(123)), 'x'.repeat(123))
  t.equal(truncateReason('x'.repeat(200)), 'x'.repeat(123))
  t.equal(truncateReason('é'.repeat(100)), 'é'.repeat(61), '2-byte characters: 122 bytes, not a split one')
  t.equal(truncateReason('x' + '😀'.repeat(40)), 'x' + '😀'.repeat(30), '4-byte characters: 121 bytes')
  for (const s of ['é'.repeat(100), '€'.repeat(50), 'a' + '😀'.repeat(50)]) {
    const out = truncateReason(s)
    t.ok(Buffer.byteLength(out) <= 123 && s.startsWith(out) && Buffer.from(out).toString() === out, `${s.slice(0, 3)}…: a prefix of whole characters`)
  }
})

t.test('the state machine gives the same replies and events however its input is split', async (t) => {
  // What the protocol does (bytes written, events, transport closes) must not depend
  // on how the transport chunks its input: whole, cut in two anywhere, or byte by byte.
  const record = (role: Role, chunks: Buffer[]): string => {
    const { p, h } = setup(role)
    for (const chunk of chunks) p.receive(Buffer.from(chunk))
    const events = h.events.map((e) => e.type === 'error'
      ? `error ${(e.error as ProtocolError).closeCode}`
      : e.type === 'message' || e.type === 'ping' || e.type === 'pong' ? `${e.type} ${e.data.toString('hex')}` : JSON.stringify(e))
    // Frames as decoded: a client masks each with a fresh random key.
    return JSON.stringify({ log: h.log, written: h.frames().map(summary), events, state: p.readyState, code: p.closeCode })
  }
  const cases: Array<[string, Role, RawFrame[]]> = [
    ['a close echoed, then nothing more is read', 'server', [{ opcode: CLOSE, payload: closePayload(4000, 'bye') }, { opcode: TEXT, payload: 'late' }]],
    ['pings answered between fragments', 'server', [
      { opcode: TEXT, fin: false, payload: 'he' }, { opcode: PING, payload: 'p' }, { opcode: CONT, payload: 'llo' }, { opcode: PONG, payload: 'q' }
    ]],
    ['a client hears the server close and waits for TCP', 'client', [{ opcode: TEXT, payload: 'hi' }, { opcode: CLOSE, payload: closePayload(1001) }]],
    ['a protocol error fails the connection with 1002', 'server', [{ opcode: BINARY, payload: 'ok' }, { opcode: 0x3, payload: '' }]],
    ['invalid UTF-8 fails with 1007', 'server', [{ opcode: TEXT, fin: false, payload: 'a' }, { opcode: CONT, payload: Buffer.from([0xc3, 0x28]) }]],
    ['a close without status is answered without one', 'client', [{ opcode: CLOSE, payload: '' }]]
  ]
  for (const [name, role, frames] of cases) {
    const input = Buffer.concat(frames.map((f) => fromPeer(role, f)))
    const whole = record(role, [input])
    let firstDifferent = -1
    for (let cut = 0; cut <= input.length && firstDifferent === -1; cut++) {
      if (record(role, [input.subarray(0, cut), input.subarray(cut)]) !== whole) firstDifferent = cut
    }
    t.equal(firstDifferent, -1, `${name}: split in two at every byte boundary`)
    t.equal(record(role, [...input].map((b) => Buffer.of(b))), whole, `${name}: one byte at a time`)
  }
})
