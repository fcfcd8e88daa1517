import { once } from 'node:events'
import type { Socket } from 'node:net'
import t from 'tap'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import WebSocket from 'ws'
import { ProtocolError, WebSocketConnection, type WebSocketRouteSettings } from '../../lib/index.js'
import { LogCapture, Queue, acceptConnections as accept, build, clientClosed, closeEvent, connect, gate, inboxOf, listen, serverSocket as rawSocket } from '../helpers/app.js'
import { rawUpgrade } from '../helpers/raw-peer.js'
import { closePayload, encodeFrame, parseClose } from '../helpers/wire.cjs'
import { fakeTimers, loopTurns, within } from '../helpers/time.js'

type ServerConn = WebSocketConnection<FastifyRequest>

t.test('send: strings go as text, bytes as binary, and options.binary overrides', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/s')
  await listen(app)
  const ws = await connect(app, '/s')
  const conn = await conns.next()
  const inbox = inboxOf(ws)

  const bytes = Uint8Array.of(1, 2, 3, 250)
  const cases: Array<[string, () => boolean, Buffer, boolean]> = [
    ['string', () => conn.send('héllo'), Buffer.from('héllo'), false],
    ['Buffer', () => conn.send(Buffer.from([1, 2])), Buffer.from([1, 2]), true],
    ['Uint8Array', () => conn.send(bytes), Buffer.from(bytes), true],
    ['ArrayBuffer', () => conn.send(bytes.buffer), Buffer.from(bytes), true],
    ['a view into a larger ArrayBuffer', () => conn.send(new Uint8Array(bytes.buffer, 1, 2)), Buffer.from([2, 3]), true],
    ['DataView', () => conn.send(new DataView(bytes.buffer, 2, 2)), Buffer.from([3, 250]), true],
    ['string with binary: true', () => conn.send('as binary', { binary: true }), Buffer.from('as binary'), true],
    ['Buffer with binary: false', () => conn.send(Buffer.from('as text'), { binary: false }), Buffer.from('as text'), false],
    ['empty string', () => conn.send(''), Buffer.alloc(0), false],
    ['64 KiB', () => conn.send(Buffer.alloc(65536, 7)), Buffer.alloc(65536, 7), true]
  ]
  for (const [name, send, data, isBinary] of cases) {
    t.equal(send(), true, `${name}: send returns true under the high-water mark`)
    t.same(await inbox.next(), { data, isBinary }, name)
  }
  ws.terminate()
})

t.test('send(data, { fin: false }), ws\'s way of sending a message in pieces, is refused rather than sent as separate messages', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/s')
  await listen(app)
  const ws = await connect(app, '/s')
  const conn = await conns.next()
  const inbox = inboxOf(ws)
  t.throws(() => conn.send('part one', { fin: false } as never), { code: 'WS_ERR_INVALID_ARGUMENT', message: /fin: false/ })
  // ws's other send options change nothing here; fin: true is a whole message.
  conn.send('whole', { fin: true, compress: false } as never)
  t.same(await inbox.next(), { data: Buffer.from('whole'), isBinary: false }, 'the refused piece was never sent')
  ws.terminate()
})

t.test('receive: data is a Buffer and isBinary tells text from binary', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/r')
  await listen(app)
  const ws = await connect(app, '/r')
  const conn = await conns.next()
  const received = new Queue<[Buffer, boolean]>()
  conn.on('message', (data: Buffer, isBinary: boolean) => received.push([data, isBinary]))

  ws.send('text ✓')
  ws.send(Buffer.from([0, 255]))
  ws.send(Buffer.from('fragmented '), { fin: false })
  ws.send(Buffer.from('message'), { fin: true })
  const [text, textBinary] = await received.next()
  t.ok(Buffer.isBuffer(text))
  t.same([text.toString(), textBinary], ['text ✓', false])
  const [bin, binBinary] = await received.next()
  t.same([[...bin], binBinary], [[0, 255], true])
  const [frag, fragBinary] = await received.next()
  t.same([frag.toString(), fragBinary], ['fragmented message', true], 'fragments are joined')
  ws.terminate()
})

t.test('send returns false above the high-water mark, and drain follows', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/hwm', { highWaterMark: 1024 })
  await listen(app)
  const ws = await connect(app, '/hwm')
  const conn = await conns.next()
  const clientSocket = (ws as unknown as { _socket: Socket })._socket
  clientSocket.pause()

  t.equal(conn.bufferedAmount, 0)
  t.equal(conn.send('small'), true, 'under the mark')
  t.equal(conn.send(Buffer.alloc(4096)), false, 'over the mark')
  t.ok(conn.bufferedAmount >= 4096, `bufferedAmount counts queued bytes (${conn.bufferedAmount})`)
  const drained = once(conn, 'drain')
  clientSocket.resume()
  await drained
  t.ok(conn.bufferedAmount < 1024, `below the mark at drain (${conn.bufferedAmount})`)
  t.equal(conn.send('again'), true)

  const inbox = inboxOf(ws)
  t.equal(await inbox.nextText(), 'small')
  t.equal((await inbox.next()).data.length, 4096)
  t.equal(await inbox.nextText(), 'again')
  ws.terminate()
})

t.test('drain follows a burst of sends that crossed the mark', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/burst', { highWaterMark: 64 * 1024 })
  await listen(app)
  const ws = await connect(app, '/burst')
  const conn = await conns.next()
  const chunk = Buffer.alloc(16 * 1024, 1)
  let sent = 0
  while (conn.send(chunk)) sent++
  sent++
  t.ok(sent >= 4, `send turned false after ${sent} chunks`)
  await once(conn, 'drain')
  t.ok(conn.bufferedAmount < 64 * 1024)
  await inboxOf(ws).untilCount(sent)
  t.equal(inboxOf(ws).received.length, sent, 'every chunk arrived')
  ws.terminate()
})

t.test('send callback and sendAsync', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/cb')
  await listen(app)
  const ws = await connect(app, '/cb')
  const conn = await conns.next()

  let called = false
  const done = new Promise<Error | null | undefined>((resolve) => {
    conn.send('with callback', (err) => {
      called = true
      resolve(err)
    })
  })
  t.equal(called, false, 'the callback is not called synchronously')
  t.notOk(await done, 'the callback gets no error')
  t.equal(conn.bufferedAmount, 0, 'nothing is left to write when the callback runs')

  const order: string[] = []
  conn.send('a', () => order.push('a'))
  conn.send('b', { binary: true }, () => order.push('b'))
  await conn.sendAsync('c')
  order.push('c')
  t.same(order, ['a', 'b', 'c'], 'callbacks run in order, and sendAsync resolves after them')

  const inbox = inboxOf(ws)
  t.same(await inbox.next(), { data: Buffer.from('with callback'), isBinary: false })
  t.equal(await inbox.nextText(), 'a')
  t.same(await inbox.next(), { data: Buffer.from('b'), isBinary: true })
  t.equal(await inbox.nextText(), 'c')

  conn.close()
  t.throws(() => conn.send('late'), /not open/, 'send without a callback throws once closing')
  const err = await new Promise<Error | null | undefined>((resolve) => conn.send('late', resolve))
  t.match(err, /not open/, 'with a callback, the error goes to the callback')
  await t.rejects(conn.sendAsync('late'), /not open/, 'sendAsync rejects')
  await clientClosed(ws)
})

t.test('ping and pong', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/ping')
  const manual = accept(app, '/manual', { autoPong: false })
  await listen(app)

  t.test('server ping gets the client\'s pong', async (t) => {
    const ws = await connect(app, '/ping')
    const conn = await conns.next()
    const pong = once(conn, 'pong')
    conn.ping('are you there')
    const [data] = await pong as [Buffer]
    t.equal(data.toString(), 'are you there')
    const empty = once(conn, 'pong')
    conn.ping()
    t.equal((await empty as [Buffer])[0].length, 0, 'an empty ping')
    ws.terminate()
  })

  t.test('client ping gets an automatic pong and a ping event', async (t) => {
    const ws = await connect(app, '/ping')
    const conn = await conns.next()
    const ping = once(conn, 'ping')
    const pong = once(ws, 'pong')
    ws.ping('hello')
    t.equal(((await ping) as [Buffer])[0].toString(), 'hello', 'server emits ping')
    t.equal(((await pong) as [Buffer])[0].toString(), 'hello', 'client gets the pong with the same data')
    ws.terminate()
  })

  t.test('with autoPong off, the handler answers itself', async (t) => {
    const ws = await connect(app, '/manual')
    const server = await manual.next()
    let pongs = 0
    ws.on('pong', () => { pongs++ })
    server.on('ping', (data: Buffer) => { server.send(`got ${data.toString()}`) })
    ws.ping('one')
    t.equal(await inboxOf(ws).nextText(), 'got one')
    t.equal(pongs, 0, 'no pong was sent before the message')
    const pong = once(ws, 'pong')
    server.pong('manual')
    t.equal(((await pong) as [Buffer])[0].toString(), 'manual')
    ws.terminate()
  })
})

t.test('close(code, reason) from the server', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/close')
  await listen(app)
  const ws = await connect(app, '/close')
  const conn = await conns.next()
  t.equal(conn.readyState, WebSocketConnection.OPEN)
  let closeEvents = 0
  conn.on('close', () => { closeEvents++ })
  const serverClosed = closeEvent(conn)
  const clientSaw = clientClosed(ws)
  conn.close(4001, 'going now')
  t.equal(conn.readyState, WebSocketConnection.CLOSING, 'CLOSING right after close()')
  t.same(await clientSaw, { code: 4001, reason: 'going now' }, 'the client sees code and reason')
  const [code, reason] = await serverClosed as [number, string]
  t.equal(code, 4001, 'the server close event has the code the client echoed')
  t.equal(reason, 'going now', 'and the reason it echoed')
  t.equal(conn.readyState, WebSocketConnection.CLOSED)
  t.equal(conn.wasClean, true)
  conn.close(1000)
  await loopTurns()
  t.equal(closeEvents, 1, 'close() once closed emits no second close event')
  t.equal(conn.readyState, WebSocketConnection.CLOSED)
  t.equal(conn.wasClean, true, 'and it stays clean')
})

t.test('close() while closing sends no second close frame', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/close', { closeTimeout: 60_000 })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/close')
  const conn = await conns.next()
  let closeEvents = 0
  conn.on('close', () => { closeEvents++ })
  const closed = closeEvent(conn)
  conn.close(4001, 'first')
  conn.close(4002, 'second')
  t.equal(conn.readyState, WebSocketConnection.CLOSING)
  t.same(parseClose(await peer.frame()), { code: 4001, reason: 'first' }, 'the first close frame went out')
  peer.write(encodeFrame(0x8, closePayload(4001)))
  await peer.end()
  t.equal(peer.unread.length, 0, 'nothing followed it before the server ended TCP')
  peer.socket.end()
  t.same(await closed, [4001, ''], 'closed with the code the peer echoed')
  conn.close(4003)
  await loopTurns()
  t.equal(closeEvents, 1, 'one close event')
})

t.test('close from the client', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/close')
  await listen(app)
  const ws = await connect(app, '/close')
  const conn = await conns.next()
  const serverClosed = closeEvent(conn)
  const clientSaw = clientClosed(ws)
  ws.close(4002, 'client leaves')
  t.same(await serverClosed, [4002, 'client leaves'])
  t.equal((await clientSaw).code, 4002, 'the server echoed the code')
  t.equal(conn.wasClean, true)
})

t.test('a close without code is reported as 1005 on both sides', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/close')
  await listen(app)
  const ws = await connect(app, '/close')
  const conn = await conns.next()
  const serverClosed = closeEvent(conn)
  conn.close()
  t.equal((await clientClosed(ws)).code, 1005)
  t.equal((await serverClosed)[0], 1005)
})

t.test('invalid close arguments throw and leave the connection open', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/close')
  await listen(app)
  const ws = await connect(app, '/close')
  const conn = await conns.next()
  t.throws(() => conn.close(1005))
  t.throws(() => conn.close(999))
  t.throws(() => conn.close(1000, 'x'.repeat(124)))
  t.equal(conn.readyState, WebSocketConnection.OPEN)
  t.equal(conn.send('still open'), true)
  t.equal(await inboxOf(ws).nextText(), 'still open')
  ws.terminate()
})

t.test('a peer that never answers the close frame is dropped after closeTimeout', async (t) => {
  const clock = fakeTimers(t, ['setTimeout'])
  const app = await build(t)
  const conns = accept(app, '/deaf', { closeTimeout: 5000 })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/deaf')
  const conn = await conns.next()
  let closed = false
  const closing = closeEvent(conn).then((event) => { closed = true; return event })
  conn.close(1000, 'bye')
  t.same(parseClose(await peer.frame()), { code: 1000, reason: 'bye' }, 'the peer got the close frame')
  clock.tick(4999)
  await loopTurns()
  t.equal(closed, false, 'still waiting for the answer 1 ms before closeTimeout')
  clock.tick(1)
  const [code] = await within(closing, 'the close event at closeTimeout')
  t.equal(code, 1006, 'no close frame came back')
  t.equal(conn.wasClean, false)
  await within(peer.closedEvent(), 'the TCP connection closing')
  t.ok(peer.closed, 'the peer\'s connection is gone')
})

t.test('the server ends TCP once the peer answers the close frame', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/polite', { closeTimeout: 60_000 })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/polite')
  const conn = await conns.next()
  const closed = closeEvent(conn)
  conn.close(4003)
  t.equal(parseClose(await peer.frame()).code, 4003)
  peer.write(encodeFrame(0x8, closePayload(4003)))
  await peer.end()
  t.ok(peer.ended, 'the server ended the connection without waiting for the timeout')
  peer.socket.end()
  t.same(await closed, [4003, ''])
})

t.test('a peer that starts the close gets the code echoed and the socket ended', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/echo-close')
  await listen(app)
  const { peer } = await rawUpgrade(app, '/echo-close')
  const conn = await conns.next()
  const closed = closeEvent(conn)
  peer.write(encodeFrame(0x8, closePayload(4321, 'peer reason')))
  t.same(parseClose(await peer.frame()), { code: 4321, reason: '' })
  await peer.end()
  peer.socket.end()
  t.same(await closed, [4321, 'peer reason'])
})

t.test('terminate() drops the connection at once', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/t')
  await listen(app)
  const ws = await connect(app, '/t')
  const conn = await conns.next()
  const closed = closeEvent(conn)
  const clientSaw = clientClosed(ws)
  conn.terminate()
  t.equal((await clientSaw).code, 1006, 'the client sees an abnormal closure')
  t.same(await closed, [1006, ''])
  t.equal(conn.readyState, WebSocketConnection.CLOSED)
  t.equal(app.websocket.clients.size, 0)
})

t.test('close is emitted once, and the state is CLOSED afterwards', async (t) => {
  const app = await build(t)
  const conns = accept(app, '/once')
  await listen(app)
  const ws = await connect(app, '/once')
  const conn = await conns.next()
  let closes = 0
  conn.on('close', () => { closes++ })
  const closed = closeEvent(conn)
  conn.close(1000)
  conn.terminate()
  await closed
  await clientClosed(ws).catch(() => {})
  t.equal(closes, 1)
  t.equal(conn.readyState, WebSocketConnection.CLOSED)
  t.throws(() => conn.ping(), 'ping after close throws')
})

t.test('the server\'s connection timeout does not apply to an open WebSocket', async (t) => {
  const app = await build(t, {}, { connectionTimeout: 300 })
  const conns = accept(app, '/idle')
  await listen(app)
  const ws = await connect(app, '/idle')
  const conn = await conns.next()
  t.equal(rawSocket(conn).timeout, 0, 'the idle timer of the HTTP server is off for the upgraded socket')
  ws.terminate()
})

t.test('protocol errors over a real socket', async (t) => {
  const app = await build(t, { maxMessageSize: 1024 })
  const conns = accept(app, '/p')
  const errors: Error[] = []
  app.get('/echo', { websocket: true }, (conn) => {
    conn.on('message', (data: Buffer, isBinary: boolean) => { conn.send(data, { binary: isBinary }) })
  })
  await listen(app)

  const cases: Array<[string, Buffer, number]> = [
    ['an unmasked frame', encodeFrame(0x1, 'hi', { mask: false }), 1002],
    ['invalid UTF-8 in a text message', encodeFrame(0x1, Buffer.from([0x68, 0xff, 0xfe])), 1007],
    ['a message over maxMessageSize', encodeFrame(0x2, Buffer.alloc(1025)), 1009],
    ['fragments over maxMessageSize in total', Buffer.concat([
      encodeFrame(0x2, Buffer.alloc(600), { fin: false }), encodeFrame(0x0, Buffer.alloc(600))
    ]), 1009],
    ['an unknown opcode', encodeFrame(0x3, 'x'), 1002],
    ['a continuation without a start', encodeFrame(0x0, 'x'), 1002]
  ]
  for (const [name, bytes, expected] of cases) {
    t.test(name, async (t) => {
      const { peer } = await rawUpgrade(app, '/p')
      const conn = await conns.next()
      conn.on('error', (err: Error) => errors.push(err))
      const serverClosed = closeEvent(conn)
      peer.write(bytes)
      const frame = await peer.frame()
      t.equal(parseClose(frame).code, expected, `the server closes with ${expected}`)
      await peer.end()
      t.ok(peer.ended, 'and ends the connection')
      peer.destroy()
      t.equal((await serverClosed)[0], expected, 'the server close event has the code')
      const err = errors.pop()
      t.ok(err instanceof ProtocolError, 'an error event carries a ProtocolError')
      t.equal((err as ProtocolError).closeCode, expected)
    })
  }

  t.test('a client over the limit with ws', async (t) => {
    const ws = await connect(app, '/echo')
    const closed = clientClosed(ws)
    ws.send(Buffer.alloc(2000))
    t.equal((await closed).code, 1009)
  })

  t.test('a protocol error without an error listener does not throw', async (t) => {
    const { peer } = await rawUpgrade(app, '/echo')
    peer.write(encodeFrame(0x1, 'x', { mask: false }))
    t.equal(parseClose(await peer.frame()).code, 1002)
    peer.destroy()
  })

  t.test('other clients are still served', async (t) => {
    const ws = await connect(app, '/echo')
    ws.send('still here')
    t.equal(await inboxOf(ws).nextText(), 'still here')
    ws.close()
    await clientClosed(ws)
  })
})

t.test('for await iterates over messages and ends on close', async (t) => {
  const app = await build(t)
  const ended = gate<Array<[string, boolean]>>()
  app.get('/iter', { websocket: true }, async (conn) => {
    const got: Array<[string, boolean]> = []
    for await (const { data, isBinary } of conn) {
      got.push([data.toString(), isBinary])
      conn.send(`ack ${got.length}`)
    }
    ended.resolve(got)
  })
  await listen(app)
  const ws = await connect(app, '/iter')
  ws.send('one')
  ws.send(Buffer.from('two'))
  const inbox = inboxOf(ws)
  t.equal(await inbox.nextText(), 'ack 1')
  t.equal(await inbox.nextText(), 'ack 2')
  ws.close(1000)
  t.same(await ended.promise, [['one', false], ['two', true]], 'the loop ended after close')
})

t.test('for await pauses reading while the consumer is busy, losing nothing', async (t) => {
  const app = await build(t)
  const release = gate()
  const paused = gate<boolean>()
  const ended = gate<string[]>()
  const COUNT = 500
  app.get('/slow', { websocket: true }, async (conn) => {
    const socket = rawSocket(conn)
    socket.once('pause', () => { paused.resolve(socket.isPaused()) })
    const got: string[] = []
    for await (const { data } of conn) {
      got.push(data.toString())
      if (got.length === 1) await release.promise
    }
    ended.resolve(got)
  })
  await listen(app)
  const ws = await connect(app, '/slow')
  const payload = 'x'.repeat(1000)
  for (let i = 0; i < COUNT; i++) ws.send(`${i} ${payload}`)
  t.equal(await paused.promise, true, 'the server socket paused while the consumer waited')
  release.resolve()
  ws.close(1000)
  const got = await ended.promise
  t.equal(got.length, COUNT, 'every message arrived')
  t.ok(got.every((m, i) => m === `${i} ${payload}`), 'in order')
})

t.test('breaking out of for await leaves the connection usable', async (t) => {
  const app = await build(t)
  app.get('/first', { websocket: true }, async (conn) => {
    for await (const { data } of conn) {
      conn.send(`first: ${data.toString()}`)
      break
    }
    conn.on('message', (data: Buffer) => { conn.send(`then: ${data.toString()}`) })
  })
  await listen(app)
  const ws = await connect(app, '/first')
  ws.send('a')
  ws.send('b')
  const inbox = inboxOf(ws)
  t.equal(await inbox.nextText(), 'first: a')
  t.equal(await inbox.nextText(), 'then: b')
  ws.terminate()
})

t.test('an async handler that listens late loses no messages', async (t) => {
  const app = await build(t)
  const release = gate()
  app.get('/late', { websocket: true }, async (conn) => {
    await release.promise
    conn.on('message', (data: Buffer) => { conn.send(data.toString()) })
  })
  await listen(app)
  const ws = await connect(app, '/late')
  for (let i = 0; i < 50; i++) ws.send(`m${i}`)
  // The pong proves the server has read every message before the handler listens.
  const pong = once(ws, 'pong')
  ws.ping()
  await pong
  release.resolve()
  const inbox = inboxOf(ws)
  await inbox.untilCount(50)
  t.same(inbox.received.map((m) => m.data.toString()), Array.from({ length: 50 }, (_, i) => `m${i}`))
  ws.terminate()
})

t.test('messages held for a late handler pause reading past the limit', async (t) => {
  const app = await build(t, { maxMessageSize: 64 * 1024 })
  const release = gate()
  const paused = gate<Socket>()
  app.get('/late', { websocket: true }, async (conn) => {
    const socket = rawSocket(conn)
    socket.once('pause', () => paused.resolve(socket))
    await release.promise
    let count = 0
    conn.on('message', () => {
      if (++count === 40) conn.send(`got ${count}`)
    })
  })
  await listen(app)
  const ws = await connect(app, '/late')
  for (let i = 0; i < 40; i++) ws.send(Buffer.alloc(64 * 1024, i))
  const socket = await within(paused.promise, 'the socket pausing with over 1 MiB held')
  t.equal(socket.isPaused(), true, 'reading paused with over 1 MiB held')
  release.resolve()
  t.equal(await inboxOf(ws).nextText(), 'got 40', 'every message was delivered after the pause')
  ws.terminate()
})

t.test('handler errors', async (t) => {
  const logs = new LogCapture()
  const app = await build(t, {}, { logger: { level: 'info', stream: logs } })
  app.get('/throws', { websocket: true }, () => { throw new Error('sync boom') })
  app.get('/rejects', { websocket: true }, async () => { throw new Error('async boom') })
  app.get('/rejects-later', { websocket: true }, async (conn) => {
    await once(conn, 'message')
    throw new Error('later boom')
  })
  await listen(app)

  for (const [path, message] of [['/throws', 'sync boom'], ['/rejects', 'async boom'], ['/rejects-later', 'later boom']]) {
    t.test(path, async (t) => {
      const ws = await connect(app, path)
      const closed = clientClosed(ws)
      if (path === '/rejects-later') ws.send('go')
      t.equal((await closed).code, 1011, 'the client sees 1011')
      const line = logs.find((l) => l.err?.message === message)
      t.ok(line, 'the error was logged')
      t.equal(line?.level, 50, 'at error level')
      t.equal(line?.msg, 'websocket handler failed')
      t.ok(line?.reqId, 'through the request logger')
    })
  }
})

t.test('errorHandler settings override the default', async (t) => {
  const logs = new LogCapture()
  const seen: string[] = []
  const app = await build(t, {
    errorHandler (error, conn, request) {
      seen.push(`plugin: ${(error as Error).message} ${request.url} ${typeof this.websocket}`)
      conn.close(4500, 'plugin handler')
    }
  }, { logger: { level: 'info', stream: logs } })
  app.get('/plugin', { websocket: true }, () => { throw new Error('one') })
  app.get('/route', {
    websocket: {
      errorHandler (error, conn) {
        seen.push(`route: ${(error as Error).message}`)
        conn.close(4501, 'route handler')
      }
    }
  }, async () => { throw new Error('two') })
  app.get('/broken', {
    websocket: {
      errorHandler () { throw new Error('the error handler failed') }
    }
  }, () => { throw new Error('three') })
  await listen(app)

  const a = await connect(app, '/plugin')
  t.same(await clientClosed(a), { code: 4500, reason: 'plugin handler' })
  const b = await connect(app, '/route')
  t.same(await clientClosed(b), { code: 4501, reason: 'route handler' })
  t.same(seen, ['plugin: one /plugin object', 'route: two'])
  t.notOk(logs.find((l) => l.msg === 'websocket handler failed'), 'nothing logged while a handler took care of it')

  const c = await connect(app, '/broken')
  t.equal((await clientClosed(c)).code, 1011, 'a failing errorHandler falls back to 1011')
  t.ok(logs.find((l) => l.msg === 'websocket handler failed' && l.err?.message === 'the error handler failed'))
})

t.test('readyState constants', async (t) => {
  t.same([WebSocketConnection.CONNECTING, WebSocketConnection.OPEN, WebSocketConnection.CLOSING, WebSocketConnection.CLOSED], [0, 1, 2, 3])
  t.equal(WebSocket.OPEN, WebSocketConnection.OPEN, 'the same numbers as ws and browsers')
})

t.test('readyState constants on instances, as ws has them', async (t) => {
  const app = await build(t)
  const checks = new Queue<{ current: boolean, constants: number[] }>()
  app.get('/state', { websocket: true }, (conn) => {
    const check = (state: number): void => {
      checks.push({ current: conn.readyState === state, constants: [conn.CONNECTING, conn.OPEN, conn.CLOSING, conn.CLOSED] })
    }
    conn.on('close', () => check(conn.CLOSED))
    check(conn.OPEN)
  })
  await listen(app)
  const ws = await connect(app, '/state')
  const inHandler = await checks.next()
  t.ok(inHandler.current, 'conn.readyState === conn.OPEN in the handler')
  t.same(inHandler.constants, [0, 1, 2, 3])
  ws.close()
  t.ok((await checks.next()).current, 'conn.readyState === conn.CLOSED once closed')

  // On the prototype, enumerable, as ws defines them: no field per connection.
  t.same(Object.keys(WebSocketConnection.prototype).sort(), ['CLOSED', 'CLOSING', 'CONNECTING', 'OPEN'])
  t.same(Object.keys(WebSocket.prototype).filter((key) => /^[A-Z]+$/.test(key)).sort(), ['CLOSED', 'CLOSING', 'CONNECTING', 'OPEN'], 'the keys ws has')
  t.equal(WebSocketConnection.prototype.OPEN, WebSocket.prototype.OPEN, 'the same numbers as ws instances')
})
