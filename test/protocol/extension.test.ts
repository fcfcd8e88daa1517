import t from 'tap'
import { ProtocolError, ReadyState, WebSocketProtocol, type MessageExtension, type Role } from '../../lib/protocol/index.js'
import { hex } from '../helpers/data.js'
import { Link, RecordingHandler, frame, type HandlerEvent, type RawFrame } from '../helpers/protocol.js'

const TEXT = 0x1
const BINARY = 0x2
const CONT = 0x0
const CLOSE = 0x8
const PING = 0x9

type Mode = 'sync' | 'microtask' | 'manual'

const xor = (data: Buffer): Buffer => {
  const out = Buffer.allocUnsafe(data.length)
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ 0xff
  return out
}

/**
 * A toy per-message extension: XORs every byte with 0xff. Its callbacks run
 * synchronously, in a microtask, or when the test releases them ('manual').
 */
class XorExtension implements MessageExtension {
  readonly name = 'x-xor'
  readonly mode: Mode
  /** Per-call modes, used before falling back to `mode`. */
  readonly nextModes: Mode[] = []
  /** Operations waiting for `release()` in manual mode, oldest first. */
  readonly pending: Array<() => void> = []
  readonly decodeCalls: Array<{ size: number, maxSize: number }> = []
  encodeCalls = 0
  closeCalls = 0
  /** Payloads shorter than this are sent untransformed. */
  minSize = 0
  /** Makes a decode fail: returns the error for a given compressed payload, or null. */
  decodeFailure: ((data: Buffer) => Error | null) | null = null
  encodeFailure: Error | null = null
  /** What decode returns instead of the real result (for example, invalid UTF-8). */
  decodeOverride: Buffer | null = null

  constructor (mode: Mode) {
    this.mode = mode
  }

  private schedule (run: () => void): void {
    const mode = this.nextModes.shift() ?? this.mode
    if (mode === 'sync') run()
    else if (mode === 'microtask') queueMicrotask(run)
    else this.pending.push(run)
  }

  /** Runs the oldest pending operation (manual mode). */
  release (): void {
    const run = this.pending.shift()
    if (run === undefined) throw new Error('nothing pending')
    run()
  }

  decode (data: Buffer, maxSize: number, done: (err: Error | null, result?: Buffer) => void): void {
    this.decodeCalls.push({ size: data.length, maxSize })
    const input = Buffer.from(data)
    this.schedule(() => {
      const err = this.decodeFailure?.(input) ?? null
      if (err !== null) done(err)
      else done(null, this.decodeOverride ?? xor(input))
    })
  }

  encode (data: Buffer, done: (err: Error | null, result?: Buffer, transformed?: boolean) => void): void {
    this.encodeCalls++
    const input = Buffer.from(data)
    this.schedule(() => {
      if (this.encodeFailure !== null) done(this.encodeFailure)
      else if (input.length < this.minSize) done(null, input, false)
      else done(null, xor(input), true)
    })
  }

  close (): void {
    this.closeCalls++
  }
}

function setup (role: Role, ext: XorExtension, maxMessageSize = 1 << 16): { p: WebSocketProtocol, h: RecordingHandler } {
  const h = new RecordingHandler()
  const p = new WebSocketProtocol({ role, maxMessageSize, extension: ext }, h)
  return { p, h }
}

/** A compressed (RSV1, XORed) frame from a client. */
const packed = (f: RawFrame): Buffer => {
  const payload = typeof f.payload === 'string' ? Buffer.from(f.payload) : Buffer.from(f.payload ?? [])
  return frame({ mask: true, rsv1: true, ...f, payload: xor(payload) })
}
const plain = (f: RawFrame): Buffer => frame({ mask: true, ...f })

/** Resolves once the handler has recorded `count` events of `type` (at once if it already has). */
function eventCount (h: RecordingHandler, type: HandlerEvent['type'], count: number): Promise<void> {
  const seen = (): number => h.events.filter((e) => e.type === type).length
  if (seen() >= count) return Promise.resolve()
  return new Promise((resolve) => {
    const wait = (): void => {
      void h.waitFor((e) => e.type === type).then(() => seen() >= count ? resolve() : wait())
    }
    wait()
  })
}

const messages = (h: RecordingHandler): string[] =>
  h.events.flatMap((e) => e.type === 'message' ? [`${e.isBinary ? 'bin' : 'text'}:${e.data.toString()}`] : [])

for (const mode of ['sync', 'microtask'] as const) {
  t.test(`${mode}: RSV1 messages are decoded, others pass through`, async (t) => {
    const ext = new XorExtension(mode)
    const { p, h } = setup('server', ext, 5000)
    p.receive(Buffer.concat([
      packed({ opcode: TEXT, payload: 'hello' }),
      plain({ opcode: TEXT, payload: 'plain' }),
      packed({ opcode: BINARY, payload: 'bytes' }),
      packed({ opcode: TEXT, fin: false, payload: 'frag' }),
      plain({ opcode: PING, payload: 'p' }),
      // Continuation frames carry no RSV1; the transform applies to the message as a whole.
      plain({ opcode: CONT, payload: xor(Buffer.from('mented')) })
    ]))
    await eventCount(h, 'message', 4)
    t.same(messages(h), ['text:hello', 'text:plain', 'bin:bytes', 'text:fragmented'], 'in order, decoded where RSV1 was set')
    t.same(ext.decodeCalls, [{ size: 5, maxSize: 5000 }, { size: 5, maxSize: 5000 }, { size: 10, maxSize: 5000 }],
      'decode sees whole messages and the size limit; plain messages skip it')
    t.equal(p.readyState, ReadyState.OPEN)
  })

  t.test(`${mode}: outgoing messages are encoded and carry RSV1`, async (t) => {
    for (const role of ['server', 'client'] as const) {
      const ext = new XorExtension(mode)
      ext.minSize = 3
      const { p, h } = setup(role, ext)
      const done: Array<string> = []
      let allSent = (): void => {}
      const sent = new Promise<void>((resolve) => { allSent = resolve })
      p.send('hello', undefined, (err) => done.push(`hello ${String(err)}`))
      p.send(Buffer.from('bin'), undefined, (err) => done.push(`bin ${String(err)}`))
      p.send('hi', undefined, (err) => { done.push(`hi ${String(err)}`); allSent() })
      p.ping('control frames are never encoded')
      await sent
      const frames = h.frames()
      const data = frames.filter((f) => f.opcode !== PING)
      t.same(data.map((f) => ({ opcode: f.opcode, rsv1: f.rsv1, masked: f.masked, payload: f.payload.toString('hex') })), [
        { opcode: TEXT, rsv1: true, masked: role === 'client', payload: xor(Buffer.from('hello')).toString('hex') },
        { opcode: BINARY, rsv1: true, masked: role === 'client', payload: xor(Buffer.from('bin')).toString('hex') },
        { opcode: TEXT, rsv1: false, masked: role === 'client', payload: Buffer.from('hi').toString('hex') }
      ], `${role}: transformed messages have RSV1; a declined one is sent as is`)
      t.equal(frames.find((f) => f.opcode === PING)?.rsv1, false, `${role}: the ping has no RSV1`)
      t.same(done, ['hello null', 'bin null', 'hi null'], `${role}: done callbacks in order`)
    }
  })

  t.test(`${mode}: a client and a server with the extension on both ends`, async (t) => {
    const link = new Link({ client: { extension: new XorExtension(mode) }, server: { extension: new XorExtension(mode) } })
    const wire: Buffer[] = []
    const forward = link.clientHandler.onWrite
    link.clientHandler.onWrite = (data) => { wire.push(data); forward?.(data) }
    link.client.send('one')
    link.client.send(Buffer.from([1, 2, 3]))
    link.server.send('from server')
    link.client.send('two é😀')
    await eventCount(link.serverHandler, 'message', 3)
    await eventCount(link.clientHandler, 'message', 1)
    t.same(messages(link.serverHandler), ['text:one', 'bin:\u0001\u0002\u0003', 'text:two é😀'])
    t.same(messages(link.clientHandler), ['text:from server'])
    t.ok(wire.length === 3 && wire.every((w) => (w[0] & 0x40) !== 0), 'every client data frame on the wire had RSV1')

    link.client.send('last words')
    link.client.close(1000)
    await eventCount(link.serverHandler, 'closeFrame', 1)
    t.same(messages(link.serverHandler).at(-1), 'text:last words', 'the message sent before close() arrives before the close')
    t.ok(link.client.wasClean && link.server.wasClean)
  })
}

t.test('messages stay in order while a decode is pending', async (t) => {
  const ext = new XorExtension('manual')
  const { p, h } = setup('server', ext)
  p.receive(Buffer.concat([
    packed({ opcode: TEXT, payload: 'A' }),
    plain({ opcode: TEXT, payload: 'B' }),
    packed({ opcode: TEXT, payload: 'C' }),
    plain({ opcode: BINARY, payload: 'D' }),
    plain({ opcode: PING, payload: 'ping' })
  ]))
  t.same(messages(h), [], 'nothing overtakes the pending decode')
  t.same(h.events.map((e) => e.type), ['ping'], 'control frames are not held back')
  t.equal(ext.decodeCalls.length, 1, 'one decode at a time')
  ext.release()
  t.same(messages(h), ['text:A', 'text:B'], 'A, then B which was waiting behind it')
  t.equal(ext.decodeCalls.length, 2, 'C is being decoded')
  p.receive(plain({ opcode: TEXT, payload: 'E' }))
  t.same(messages(h), ['text:A', 'text:B'], 'E waits behind C')
  ext.release()
  t.same(messages(h), ['text:A', 'text:B', 'text:C', 'bin:D', 'text:E'])
})

t.test('a decode error closes the connection with the error\'s code', async (t) => {
  // An extension's ProtocolError is reported as it is; any other error as WS_ERR_EXTENSION_DECODE, 1007.
  const cases: Array<[string, Error, number, string]> = [
    ['ProtocolError 1009', new ProtocolError('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 'decoded message exceeds the limit', 1009), 1009, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'],
    ['ProtocolError 1010', new ProtocolError('XOR_MANDATORY', 'mandatory', 1010), 1010, 'XOR_MANDATORY'],
    ['another error', new Error('invalid compressed data'), 1007, 'WS_ERR_EXTENSION_DECODE']
  ]
  for (const mode of ['sync', 'microtask', 'manual'] as const) {
    for (const [name, error, code, errorCode] of cases) {
      const ext = new XorExtension(mode)
      ext.decodeFailure = (data) => data.equals(xor(Buffer.from('bad'))) ? error : null
      const { p, h } = setup('server', ext)
      p.receive(Buffer.concat([packed({ opcode: TEXT, payload: 'good' }), packed({ opcode: TEXT, payload: 'bad' }), plain({ opcode: TEXT, payload: 'after' })]))
      if (mode === 'manual') {
        ext.release()
        ext.release()
      }
      await eventCount(h, 'closeTransport', 1)
      t.same(messages(h), ['text:good'], `${mode}, ${name}: the good message, nothing after the bad one`)
      const reported = h.events.find((e) => e.type === 'error')
      t.ok(reported?.type === 'error' && reported.error instanceof ProtocolError && reported.error.closeCode === code,
        `${mode}, ${name}: onError with close code ${code}`)
      t.equal(reported?.type === 'error' && (reported.error as ProtocolError).code, errorCode, `${mode}, ${name}: coded ${errorCode}`)
      const [closeFrame] = h.frames()
      t.equal(closeFrame?.payload.readUInt16BE(0), code, `${mode}, ${name}: close frame with ${code}`)
      t.equal(p.closeCode, code)
      t.equal(h.closeTransportCalls, 1)
    }
  }
})

t.test('a synchronous decode error stops messages queued behind it', async (t) => {
  const ext = new XorExtension('manual')
  ext.nextModes.push('manual', 'sync')
  ext.decodeFailure = (data) => data.equals(xor(Buffer.from('bad'))) ? new ProtocolError('XOR_CORRUPT', 'corrupt', 1007) : null
  const { p, h } = setup('server', ext)
  p.receive(Buffer.concat([
    packed({ opcode: TEXT, payload: 'first' }),
    packed({ opcode: TEXT, payload: 'bad' }),
    plain({ opcode: TEXT, payload: 'queued' }),
    packed({ opcode: TEXT, payload: 'queued too' })
  ]))
  ext.release() // 'first' completes; 'bad' then fails synchronously inside the same drain
  t.same(messages(h), ['text:first'], 'nothing is delivered after the failure')
  t.equal(ext.decodeCalls.length, 2, 'nothing more is decoded either')
  t.equal(h.closeTransportCalls, 1)
})

t.test('a protocol error while a decode is pending: nothing more is delivered', async (t) => {
  const ext = new XorExtension('manual')
  const { p, h } = setup('server', ext)
  p.receive(Buffer.concat([packed({ opcode: TEXT, payload: 'pending' }), plain({ opcode: 0x3 })]))
  t.equal(h.closeTransportCalls, 1, 'the connection is failed at once')
  ext.release()
  t.same(messages(h), [], 'the message decoded afterwards is dropped (RFC 6455 §7.1.7)')
  t.same(h.frames().map((f) => f.payload.readUInt16BE(0)), [1002])
})

t.test('decoded text must be valid UTF-8', async (t) => {
  for (const mode of ['sync', 'microtask'] as const) {
    const ext = new XorExtension(mode)
    ext.decodeOverride = hex('68 69 c0 80')
    const bin = setup('server', ext)
    bin.p.receive(packed({ opcode: BINARY, payload: 'x' }))
    await eventCount(bin.h, 'message', 1)
    t.same(bin.h.events[0], { type: 'message', data: hex('68 69 c0 80'), isBinary: true }, `${mode}: fine for binary`)

    const { p, h } = setup('server', ext)
    p.receive(packed({ opcode: TEXT, payload: 'x' }))
    await eventCount(h, 'closeTransport', 1)
    t.same(messages(h), [], `${mode}: not delivered as text`)
    t.equal(h.frames()[0].payload.readUInt16BE(0), 1007, `${mode}: closed with 1007`)
    t.equal(p.closeCode, 1007)
  }
})

t.test('without an extension, RSV1 is a protocol error', async (t) => {
  const h = new RecordingHandler()
  const p = new WebSocketProtocol({ role: 'server', maxMessageSize: 1000 }, h)
  p.receive(packed({ opcode: TEXT, payload: 'x' }))
  t.equal(h.frames()[0].payload.readUInt16BE(0), 1002)
  t.equal(h.closeTransportCalls, 1)
})

t.test('close() waits for messages still being encoded', async (t) => {
  const ext = new XorExtension('manual')
  const { p, h } = setup('server', ext)
  p.send('A')
  p.send('B')
  p.close(1000, 'done')
  t.throws(() => p.send('C'), /closing/, 'no new messages after close()')
  t.same(h.written, [], 'nothing written while A is being encoded')
  ext.release()
  ext.release()
  const frames = h.frames()
  t.same(frames.map((f) => f.opcode), [TEXT, TEXT, CLOSE], 'A, B, then the close frame')
  t.same(frames.map((f) => f.rsv1), [true, true, false])
  t.equal(frames[2].payload.subarray(2).toString(), 'done')

  // The same when the peer's close is already in: our close still goes after A.
  const ext2 = new XorExtension('manual')
  const second = setup('client', ext2)
  second.p.send('A')
  second.p.close(1000)
  ext2.release()
  t.same(second.h.frames().map((f) => f.opcode), [TEXT, CLOSE])
})

t.test('nothing is written after a close frame, whatever completes later', async (t) => {
  {
    const ext = new XorExtension('manual')
    const { p, h } = setup('server', ext)
    const done: Array<Error | null | undefined> = []
    p.send('A', undefined, (err) => done.push(err))
    p.send('B', undefined, (err) => done.push(err))
    p.fail(1011, 'giving up')
    t.same(h.frames().map((f) => f.opcode), [CLOSE], 'fail() writes its close frame at once')
    ext.release()
    t.same(h.frames().map((f) => f.opcode), [CLOSE], 'the message whose encoding finishes afterwards is not written')
    t.equal(done.length, 2, 'both sends are told')
    t.ok(done.every((e) => e instanceof Error), 'with an error')
  }
  {
    const ext = new XorExtension('manual')
    const { p, h } = setup('server', ext)
    p.send('A')
    p.close(1000)
    p.fail(1011)
    ext.release()
    const frames = h.frames()
    t.same(frames.map((f) => f.opcode), [CLOSE], 'fail() during a deferred close() writes one close frame')
    t.equal(frames[0].payload.readUInt16BE(0), 1011)
  }
  {
    const ext = new XorExtension('manual')
    const { p, h } = setup('server', ext)
    const done: Array<Error | null | undefined> = []
    p.send('A', undefined, (err) => done.push(err))
    p.receive(plain({ opcode: CLOSE, payload: hex('03e8') }))
    t.same(h.frames().map((f) => f.opcode), [CLOSE], 'the peer\'s close is answered at once')
    t.equal(h.closeTransportCalls, 1)
    ext.release()
    t.same(h.frames().map((f) => f.opcode), [CLOSE], 'and nothing follows the reply')
    t.ok(done[0] instanceof Error, 'the unsent message reports an error')
  }
  {
    const ext = new XorExtension('manual')
    const { p, h } = setup('server', ext)
    p.send('A')
    p.close(4000)
    p.receive(plain({ opcode: CLOSE, payload: hex('03e8') }))
    t.same(h.frames().map((f) => f.opcode), [CLOSE], 'a deferred close() is written when the peer\'s close arrives')
    t.equal(h.frames()[0].payload.readUInt16BE(0), 4000, 'with our code')
    t.equal(h.closeTransportCalls, 1)
    t.ok(p.wasClean)
    ext.release()
    t.equal(h.frames().length, 1)
  }
})

t.test('a close frame is handled after the messages before it are decoded', async (t) => {
  const ext = new XorExtension('manual')
  const { p, h } = setup('server', ext)
  p.receive(Buffer.concat([packed({ opcode: TEXT, payload: 'bye' }), plain({ opcode: CLOSE, payload: hex('03e8') })]))
  t.same(h.log, [], 'the close waits for the pending decode')
  ext.release()
  t.same(h.log, ['message', 'write', 'closeFrame', 'closeTransport'], 'message, reply, close event, then the transport')
  t.same(messages(h), ['text:bye'])
  t.ok(p.wasClean)

  // The same with the transport being closed as soon as asked (the Link does that).
  const link = new Link({ client: { extension: new XorExtension('microtask') }, server: { extension: new XorExtension('microtask') } })
  link.client.send('last message')
  link.client.close(1000)
  await eventCount(link.clientHandler, 'closeFrame', 1)
  t.same(messages(link.serverHandler), ['text:last message'], 'the last message is not lost')
  t.same(link.serverHandler.log, ['message', 'write', 'closeFrame', 'closeTransport'])
})

t.test('transportClosed() releases the extension and fails pending sends', async (t) => {
  const ext = new XorExtension('manual')
  const { p, h } = setup('client', ext)
  const done: Array<Error | null | undefined> = []
  p.send('A', undefined, (err) => done.push(err))
  p.send('B', undefined, (err) => done.push(err))
  p.receive(frame({ opcode: TEXT, rsv1: true, payload: xor(Buffer.from('in')) }))
  p.transportClosed()
  t.equal(ext.closeCalls, 1, 'extension.close() is called')
  t.equal(done.length, 1, 'the queued send is failed at once')
  ext.release() // encode of A completes
  ext.release() // decode of 'in' completes
  t.equal(done.length, 2)
  t.ok(done.every((e) => e instanceof Error), 'both sends report an error')
  t.same(h.written, [], 'nothing written after the transport closed')
  t.same(messages(h), [], 'nothing delivered after the transport closed')
  p.transportClosed()
  t.equal(ext.closeCalls, 1, 'close() only once')
})

t.test('an encode error fails the connection with 1011', async (t) => {
  for (const mode of ['sync', 'microtask'] as const) {
    const ext = new XorExtension(mode)
    ext.encodeFailure = new Error('deflate failed')
    const { p, h } = setup('server', ext)
    const done: Array<Error | null | undefined> = []
    p.send('A', undefined, (err) => done.push(err))
    await eventCount(h, 'closeTransport', 1)
    t.match(done[0], { code: 'WS_ERR_EXTENSION_ENCODE', closeCode: 1011, cause: ext.encodeFailure }, `${mode}: done gets the error, coded, the extension's as its cause`)
    const reported = h.events.find((e) => e.type === 'error')
    t.equal(reported?.type === 'error' && reported.error, done[0], `${mode}: onError gets it too`)
    t.same(h.frames().map((f) => [f.opcode, f.payload.readUInt16BE(0)]), [[CLOSE, 1011]], `${mode}: close 1011, no data frame`)
  }
})
