import { once } from 'node:events'
import type { Socket } from 'node:net'
import { Readable, Transform, type Duplex } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import WebSocket, { createWebSocketStream as wsCreateWebSocketStream } from 'ws'
import { ProtocolError, WebSocketConnection, WebSocketError, createWebSocketStream, type WebSocketRouteSettings } from '../../lib/index.js'
import { Queue, acceptConnections as accept, build, clientClosed, closeEvent, connect, gate, inboxOf, listen, serverSocket as rawSocket } from '../helpers/app.js'
import { rawUpgrade } from '../helpers/raw-peer.js'
import { encodeFrame, parseClose } from '../helpers/wire.cjs'
import { loopTurns, within } from '../helpers/time.js'

type ServerConn = WebSocketConnection<any>

/** A `ws` client's TCP socket, to stop it reading. */
function clientSocket (ws: WebSocket): Socket {
  return (ws as unknown as { _socket: Socket })._socket
}

/** The errors a stream emits, kept for the test. */
function errorsOf (stream: Duplex): Error[] {
  const errors: Error[] = []
  stream.on('error', (err) => errors.push(err))
  return errors
}

/** Resolves on the stream's 'close' (events.once would reject on an 'error' before it, and count as an error listener). */
async function streamClose (stream: Duplex): Promise<void> {
  await new Promise<void>((resolve) => stream.once('close', () => resolve()))
}

/** A message of `size` bytes whose first 4 bytes number it. */
function numbered (i: number, size: number): Buffer {
  const buf = Buffer.alloc(size, i & 0xff)
  buf.writeUInt32BE(i)
  return buf
}

/**
 * Resolves once a message has been handled with the server's socket paused
 * (a `message` listener added after the stream's sees the state it left),
 * with how many messages the server had read by then.
 */
function pausedAfterMessage (conn: ServerConn, isPaused: () => boolean): { read: () => number, paused: Promise<number> } {
  let read = 0
  const paused = gate<number>()
  conn.on('message', () => {
    read++
    if (isPaused()) paused.resolve(read)
  })
  return { read: () => read, paused: paused.promise }
}

t.test('reading: a byte stream of the messages, text and binary alike; readableObjectMode keeps one chunk per message, text as strings', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/read')
  await listen(app)

  const ws = await connect(app, '/read')
  const stream = createWebSocketStream(await conns.next())
  ws.send('héllo')
  ws.send(Buffer.from([1, 2, 3]))
  const expected = Buffer.concat([Buffer.from('héllo'), Buffer.from([1, 2, 3])])
  const bytes: Buffer[] = []
  for await (const chunk of stream) {
    t.ok(Buffer.isBuffer(chunk), 'chunks are Buffers')
    bytes.push(chunk)
    if (Buffer.concat(bytes).length >= expected.length) break
  }
  t.same(Buffer.concat(bytes), expected, 'the bytes of both messages, in order')

  const ws2 = await connect(app, '/read')
  const objects = createWebSocketStream(await conns.next(), { readableObjectMode: true })
  ws2.send('héllo')
  ws2.send(Buffer.from([1, 2, 3]))
  ws2.send('')
  const items = objects[Symbol.asyncIterator]()
  t.equal((await items.next()).value, 'héllo', 'text arrives as a string')
  t.same((await items.next()).value, Buffer.from([1, 2, 3]), 'binary as a Buffer')
  t.equal((await items.next()).value, '', 'an empty message is a chunk too')
  ws.terminate()
  ws2.terminate()
})

t.test('writing: one message per chunk; strings go as binary unless decodeStrings is false or in object mode', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/write')
  await listen(app)
  const received = async (ws: WebSocket): Promise<[string, boolean]> => {
    const { data, isBinary } = await inboxOf(ws).next()
    return [data.toString('utf8'), isBinary]
  }

  const ws = await connect(app, '/write')
  const bytes = createWebSocketStream(await conns.next())
  bytes.write(Buffer.from('buffer'))
  bytes.write('string')
  bytes.write(Uint8Array.from([0x68, 0x69]))
  t.same(await received(ws), ['buffer', true], 'a Buffer: binary')
  t.same(await received(ws), ['string', true], 'a string, decoded to bytes by the Writable as Node does by default: binary')
  t.same(await received(ws), ['hi', true], 'a Uint8Array: binary')

  const ws2 = await connect(app, '/write')
  const strings = createWebSocketStream(await conns.next(), { decodeStrings: false })
  strings.write('tëxt')
  strings.write('aGk=', 'base64')
  strings.write(Buffer.from('bytes'))
  t.same(await received(ws2), ['tëxt', false], 'decodeStrings: false: a string is text')
  t.same(await received(ws2), ['hi', true], 'a string in another encoding is decoded to bytes: binary')
  t.same(await received(ws2), ['bytes', true], 'a Buffer stays binary')

  const ws3 = await connect(app, '/write')
  const objects = createWebSocketStream(await conns.next(), { writableObjectMode: true })
  const streamError = once(objects, 'error')
  objects.write('text')
  objects.write(new Uint8Array([0x6f, 0x6b]).buffer)
  t.same(await received(ws3), ['text', false], 'object mode: a string is text')
  t.same(await received(ws3), ['ok', true], 'an ArrayBuffer: binary')
  const failed = await new Promise<Error | null | undefined>((resolve) => objects.write(42, resolve))
  t.equal((failed as { code?: string }).code, 'WS_ERR_INVALID_ARGUMENT', 'anything else is refused')
  t.ok(failed instanceof TypeError)
  t.equal((await streamError)[0], failed, 'and the stream errors with it')
  ws.terminate()
  ws2.terminate()
  ws3.terminate()
})

t.test('an unknown option is an error', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/opt')
  await listen(app)
  const ws = await connect(app, '/opt')
  const conn = await conns.next()
  t.throws(() => createWebSocketStream(conn, { autoDestroy: false } as never), { code: 'WS_ERR_UNKNOWN_OPTION' })
  ws.terminate()
})

t.test('pipeline both ways: an echo through a Transform, finished by the peer closing with 1000', async (t) => {
  const app = await build(t)
  const done = new Queue<Error | null>()
  app.get('/echo', { websocket: true }, (conn) => {
    const stream = createWebSocketStream(conn)
    const upper = new Transform({
      transform (chunk: Buffer, _encoding, callback) { callback(null, chunk.toString('utf8').toUpperCase()) }
    })
    pipeline(stream, upper, stream).then(() => done.push(null), (err: Error) => done.push(err))
  })
  await listen(app)
  const ws = await connect(app, '/echo')
  for (const word of ['one', 'two', 'three']) ws.send(word)
  const inbox = inboxOf(ws)
  t.same([await inbox.nextText(), await inbox.nextText(), await inbox.nextText()], ['ONE', 'TWO', 'THREE'])
  const closed = clientClosed(ws)
  ws.close(1000)
  t.equal((await closed).code, 1000)
  t.equal(await within(done.next(), 'the server pipeline'), null, 'the server pipeline completes without an error')
})

t.test('pipeline from a Readable: a message per chunk, then end() closes with 1000 once they are written', async (t) => {
  const app = await build(t)
  const done = new Queue<{ err: Error | null, closed: boolean, clean: boolean }>()
  app.get('/from', { websocket: true }, (conn) => {
    const report = (err: Error | null): void => done.push({ err, closed: conn.closeEmitted, clean: conn.wasClean })
    pipeline(Readable.from([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]), createWebSocketStream(conn)).then(() => report(null), report)
  })
  await listen(app)
  const ws = await connect(app, '/from')
  const inbox = inboxOf(ws)
  const { code } = await inbox.closed
  t.same(inbox.received.map((m) => m.data.toString()), ['a', 'b', 'c'], 'every chunk arrived before the close')
  t.equal(code, 1000, 'the peer sees a close with 1000')
  t.same(await within(done.next(), 'the server pipeline'), { err: null, closed: true, clean: true },
    'the pipeline resolves once the closing handshake is done')
})

t.test('write backpressure: with a peer that does not read, the connection never holds more than its high-water mark', async (t) => {
  const app = await build(t)
  const highWaterMark = 64 * 1024
  const conns = accept(app, '/slow-peer', { highWaterMark })
  await listen(app)
  const ws = await connect(app, '/slow-peer')
  const conn = await conns.next()
  const stream = createWebSocketStream(conn, { writableHighWaterMark: 16 * 1024 })
  const errors = errorsOf(stream)

  // Every send the stream makes, with what was waiting when it made it.
  const send = conn.send.bind(conn)
  const waitingAtSend: number[] = []
  let refused = 0
  conn.send = ((...args: Parameters<ServerConn['send']>) => {
    waitingAtSend.push(conn.bufferedAmount)
    const queued = send(...args)
    if (!queued) refused++
    return queued
  }) as ServerConn['send']

  clientSocket(ws).pause()
  const count = 512
  const size = 64 * 1024
  let accepted = 0
  for (let i = 0; i < count; i++) if (stream.write(numbered(i, size))) accepted++
  t.equal(accepted, 0, 'write() returns false: each chunk is above the writable high-water mark')
  t.equal(stream.writableNeedDrain, true)
  t.ok(conn.bufferedAmount <= highWaterMark + size, `the connection holds at most its mark and one message (${conn.bufferedAmount})`)

  // Whatever the kernel takes before the peer's buffers are full goes out; then nothing more.
  await loopTurns(20)
  t.ok(refused >= 1, `send returned false ${refused} times: the peer's backlog reached the mark`)
  t.ok(stream.writableLength > count * size / 2, `the rest waits in the stream (${stream.writableLength} bytes), not in the connection`)
  t.ok(conn.bufferedAmount <= highWaterMark + size, `the connection still holds at most its mark and one message (${conn.bufferedAmount})`)

  const drained = once(stream, 'drain')
  clientSocket(ws).resume()
  const inbox = inboxOf(ws)
  await within(inbox.untilCount(count), 'every message at the peer', 30_000)
  await drained
  t.ok(inbox.received.every((m, i) => m.isBinary && m.data.length === size && m.data.readUInt32BE(0) === i), 'all of them, in order')
  t.equal(waitingAtSend.length, count)
  const over = waitingAtSend.filter((waiting) => waiting >= highWaterMark)
  t.same(over, [], 'no send was made while the connection was at its high-water mark')
  t.same(errors, [])
  ws.terminate()
})

t.test('read backpressure: a consumer that does not read stops the server reading from the socket', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/slow-reader')
  await listen(app)
  const ws = await connect(app, '/slow-reader')
  const conn = await conns.next()
  const hwm = 16 * 1024
  const stream = createWebSocketStream(conn, { readableHighWaterMark: hwm })
  const socket = rawSocket(conn)
  const server = pausedAfterMessage(conn, () => socket.isPaused())

  const count = 64
  const size = 8 * 1024
  for (let i = 0; i < count; i++) ws.send(numbered(i, size))
  const readAtPause = await within(server.paused, 'the socket paused')
  t.ok(readAtPause < count, `the socket paused after ${readAtPause} of ${count} messages`)
  t.ok(stream.readableLength >= hwm, 'once the readable buffer was full')

  // The client's bytes are all written or queued; the server takes none of them.
  await loopTurns(20)
  t.equal(socket.isPaused(), true, 'the socket stays paused')
  const readWhilePaused = server.read()
  t.ok(readWhilePaused - readAtPause <= 64 * 1024 / size, `at most the rest of one read was parsed after the pause (${readWhilePaused - readAtPause} messages)`)
  t.ok(stream.readableLength <= hwm + 64 * 1024, `the buffer is bounded (${stream.readableLength} bytes)`)

  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of stream) {
    chunks.push(chunk)
    bytes += chunk.length
    if (bytes >= count * size) break
  }
  const all = Buffer.concat(chunks)
  t.equal(all.length, count * size, 'once read, every message comes')
  t.ok(Array.from({ length: count }, (_, i) => all.readUInt32BE(i * size)).every((n, i) => n === i), 'in order')
  t.equal(server.read(), count)
  ws.terminate()
})

t.test('end() while the reader lags: the closing handshake still completes', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/end-lagging')
  await listen(app)
  const ws = await connect(app, '/end-lagging')
  const conn = await conns.next()
  const stream = createWebSocketStream(conn, { readableHighWaterMark: 1024 })
  const errors = errorsOf(stream)
  const socket = rawSocket(conn)
  const server = pausedAfterMessage(conn, () => socket.isPaused())
  const count = 16
  for (let i = 0; i < count; i++) ws.send(numbered(i, 4096))
  await within(server.paused, 'the socket paused')

  const closed = clientClosed(ws)
  const finished = once(stream, 'finish')
  stream.end()
  t.equal((await closed).code, 1000, 'the peer sees 1000')
  await within(finished, "the stream's finish")
  t.equal(conn.closeEmitted, true, 'finish comes once the connection is closed')
  t.equal(conn.wasClean, true)
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk)
  t.equal(Buffer.concat(chunks).length, count * 4096, 'what the peer sent before its close is still readable, then the stream ends')
  t.same(errors, [])
})

t.test("the peer's close: 1000 or 1005 end the readable side; any other code is an error carrying it", async (t) => {
  const app = await build(t)
  const conns = accept(app, '/peer-close')
  await listen(app)

  for (const [name, close] of [['1000', (ws: WebSocket) => ws.close(1000)], ['no code (1005)', (ws: WebSocket) => ws.close()]] as const) {
    const ws = await connect(app, '/peer-close')
    const stream = createWebSocketStream(await conns.next())
    const errors = errorsOf(stream)
    ws.send('last')
    const chunks: string[] = []
    stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString()))
    const ended = once(stream, 'end')
    const streamClosed = streamClose(stream)
    close(ws)
    await within(ended, `end after a close with ${name}`)
    t.same(chunks, ['last'], `${name}: the messages, then 'end'`)
    await within(streamClosed, `${name}: the stream's close`)
    t.same(errors, [], `${name}: no error`)
  }

  const abnormal: Array<[string, (ws: WebSocket) => void, number]> = [
    ['an application code', (ws) => ws.close(4001, 'go away'), 4001],
    ['1001', (ws) => ws.close(1001), 1001],
    ['a dropped connection', (ws) => ws.terminate(), 1006]
  ]
  for (const [name, close, code] of abnormal) {
    const ws = await connect(app, '/peer-close')
    const stream = createWebSocketStream(await conns.next())
    stream.resume()
    const failed = once(stream, 'error')
    close(ws)
    const [err] = await within(failed, `the error after ${name}`)
    t.ok(err instanceof WebSocketError, name)
    t.equal(err.code, 'WS_ERR_CLOSED_ABNORMALLY', `${name}: coded`)
    t.equal(err.closeCode, code, `${name}: closeCode ${code}`)
  }
})

t.test("a protocol error from the peer destroys the stream with the connection's error, code and close code", async (t) => {
  const app = await build(t)
  const conns = accept(app, '/violation', { maxMessagePieces: 3, minAveragePieceSize: Infinity })
  await listen(app)
  // The code of each violation is error-codes.test.ts's business; here, that the stream carries it.
  const cases: Array<[string, Buffer, number, string | undefined]> = [
    ['an unmasked frame', encodeFrame(0x1, 'hi', { mask: false }), 1002, undefined],
    ['a message in more pieces than maxMessagePieces', Buffer.concat([
      encodeFrame(0x1, 'a', { fin: false }), encodeFrame(0x0, 'b', { fin: false }),
      encodeFrame(0x0, 'c', { fin: false }), encodeFrame(0x0, 'd')
    ]), 1008, 'WS_ERR_MESSAGE_TOO_FRAGMENTED']
  ]
  for (const [name, bytes, closeCode, code] of cases) {
    const { peer } = await rawUpgrade(app, '/violation')
    const conn = await conns.next()
    const stream = createWebSocketStream(conn)
    const connErrors: Error[] = []
    conn.on('error', (err) => connErrors.push(err))
    const failed = once(stream, 'error')
    const streamClosed = streamClose(stream)
    const serverClosed = closeEvent(conn)
    peer.write(bytes)
    t.equal(parseClose(await peer.frame()).code, closeCode, `${name}: the server closes with ${closeCode}, not a code of the stream's`)
    const [err] = await within(failed, `${name}: the stream error`)
    t.equal(err, connErrors[0], `${name}: the stream's error is the connection's`)
    t.ok(err instanceof ProtocolError, `${name}: a ProtocolError`)
    t.equal(err.closeCode, closeCode, `${name}: closeCode`)
    if (code !== undefined) t.equal(err.code, code, `${name}: code ${code}`)
    await peer.end()
    peer.destroy()
    t.equal((await serverClosed)[0], closeCode)
    await within(streamClosed, `${name}: the stream's close`)
  }
})

t.test('without an error listener, an error from the peer destroys the stream without throwing', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/quiet')
  await listen(app)
  const { peer } = await rawUpgrade(app, '/quiet')
  const conn = await conns.next()
  const stream = createWebSocketStream(conn)
  stream.on('data', () => {})
  const streamClosed = streamClose(stream)
  peer.write(encodeFrame(0x1, 'hi', { mask: false }))
  t.equal(parseClose(await peer.frame()).code, 1002)
  peer.destroy()
  await within(streamClosed, "the stream's close")
  t.equal(stream.destroyed, true)
  t.equal(stream.readableEnded, false, 'no end: the stream did not finish')
})

t.test('destroy() closes with 1001, destroy(err) with 1011; the stream closes after the connection', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/destroy')
  await listen(app)
  for (const [name, err, code] of [['destroy()', undefined, 1001], ['destroy(err)', new Error('upstream failed'), 1011]] as const) {
    const ws = await connect(app, '/destroy')
    const conn = await conns.next()
    const stream = createWebSocketStream(conn)
    const errors = errorsOf(stream)
    const closed = clientClosed(ws)
    let connClosedFirst = false
    stream.on('close', () => { connClosedFirst = conn.closeEmitted })
    const streamClosed = streamClose(stream)
    stream.destroy(err)
    t.equal((await closed).code, code, `${name}: the peer sees ${code}`)
    await within(streamClosed, `${name}: the stream's close`)
    t.equal(connClosedFirst, true, `${name}: the connection closed before the stream's close`)
    t.equal(conn.wasClean, true, `${name}: with a closing handshake`)
    t.same(errors, err === undefined ? [] : [err], `${name}: the stream's errors`)
  }
})

t.test("ws's createWebSocketStream(conn): end() closes the connection cleanly", async (t) => {
  const app = await build(t)
  const conns = accept(app, '/ws-helper')
  await listen(app)
  const ws = await connect(app, '/ws-helper')
  const conn = await conns.next()
  const duplex = wsCreateWebSocketStream(conn as unknown as WebSocket)
  const errors = errorsOf(duplex)
  duplex.resume()
  const closed = clientClosed(ws)
  const finished = once(duplex, 'finish')
  duplex.write('data')
  duplex.end()
  const { code } = await closed
  t.equal(await inboxOf(ws).nextText(), 'data', 'the data arrives')
  t.equal(code, 1005, "the peer sees the close ws's helper asks for (no code)")
  await within(finished, "the duplex's finish")
  await closeEvent(conn)
  t.equal(conn.wasClean, true, 'the closing handshake completed')
  t.same(errors, [], 'no error')
})

t.test("ws's createWebSocketStream(conn) with a lagging reader: conn.pause() holds the socket, reading resumes it", async (t) => {
  const app = await build(t)
  const conns = accept(app, '/ws-helper-slow')
  await listen(app)
  const ws = await connect(app, '/ws-helper-slow')
  const conn = await conns.next()
  const duplex = wsCreateWebSocketStream(conn as unknown as WebSocket, { readableHighWaterMark: 16 * 1024 })
  const errors = errorsOf(duplex)
  const server = pausedAfterMessage(conn, () => conn.isPaused)
  const count = 64
  const size = 8 * 1024
  for (let i = 0; i < count; i++) ws.send(numbered(i, size))
  await within(server.paused, 'the connection paused')
  t.equal(rawSocket(conn).isPaused(), true, 'its socket is paused')
  t.equal(conn.readyState, WebSocketConnection.OPEN, 'the connection stays open')

  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of duplex) {
    chunks.push(chunk)
    bytes += chunk.length
    if (bytes >= count * size) break
  }
  const all = Buffer.concat(chunks)
  t.equal(all.length, count * size, 'reading resumes it: every message comes')
  t.ok(Array.from({ length: count }, (_, i) => all.readUInt32BE(i * size)).every((n, i) => n === i), 'in order')
  t.equal(conn.isPaused, false)
  t.same(errors, [])
  ws.terminate()
})

t.test('conn.pause() stops reading from the socket until resume(), as in ws', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/pause')
  await listen(app)
  const ws = await connect(app, '/pause')
  const conn = await conns.next()
  const received: string[] = []
  const arrived = new Queue<void>()
  conn.on('message', (data: Buffer) => {
    received.push(data.toString())
    arrived.push()
  })
  t.equal(conn.isPaused, false)
  conn.pause()
  t.equal(conn.isPaused, true)
  t.equal(rawSocket(conn).isPaused(), true, 'the socket is paused')
  await new Promise<void>((resolve) => ws.send('held', () => resolve()))
  await loopTurns(10)
  t.same(received, [], 'no message while paused')
  conn.resume()
  t.equal(conn.isPaused, false)
  await within(arrived.next(), 'the message after resume()')
  t.same(received, ['held'])
  ws.terminate()
})
