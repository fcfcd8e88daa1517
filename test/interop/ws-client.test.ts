// Interop with the `ws` npm client, in process, over a real loopback socket.
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { MatrixRow } from './fixtures/matrix.js'
import { BINARY_SIZES, LARGE, TEXT } from './fixtures/peer-result.js'
import { DEFAULT_LIMIT, startInteropServer } from './fixtures/server.js'

async function main (): Promise<void> {
  const server = await startInteropServer()
  t.teardown(() => server.app.close())
  const row = new MatrixRow('ws (npm)')

  const open = async (path: string): Promise<WebSocket> => {
    const ws = new WebSocket(server.origin + path)
    ws.on('error', () => {}) // failures surface as assertion errors on the awaited events
    await once(ws, 'open')
    return ws
  }
  const next = async (ws: WebSocket): Promise<{ data: Buffer, isBinary: boolean }> => {
    const [data, isBinary] = await once(ws, 'message') as [Buffer, boolean]
    return { data, isBinary }
  }
  const closed = async (ws: WebSocket): Promise<{ code: number, reason: string }> => {
    const [code, reason] = await once(ws, 'close') as [number, Buffer]
    return { code, reason: reason.toString() }
  }
  const closeNormally = async (t: Test, ws: WebSocket): Promise<void> => {
    const done = closed(ws)
    ws.close(1000)
    t.equal((await done).code, 1000, 'closed normally')
  }
  t.teardown(() => {
    for (const conn of server.app.websocket.clients) conn.terminate()
  })

  await row.check(t, 'text', 'UTF-8 text is echoed as text', async (t) => {
    const ws = await open('/echo?case=text')
    const text = TEXT
    ws.send(text)
    const reply = await next(ws)
    t.equal(reply.isBinary, false, 'arrives as text')
    t.equal(reply.data.toString(), text, 'same characters')
    await closeNormally(t, ws)
    const record = await server.closed('text')
    t.same(record.messages, [{ bytes: Buffer.byteLength(text), isBinary: false }], 'server saw one text message')
    t.same(record.close, { code: 1000, reason: '' })
    t.equal(record.wasClean, true, 'clean closing handshake')
  })

  await row.check(t, 'binary', 'bytes across the 7/16/64-bit length boundaries are echoed identical', async (t) => {
    const ws = await open('/echo?case=binary')
    for (const size of BINARY_SIZES.slice(0, -1)) {
      const payload = randomBytes(size)
      ws.send(payload, { binary: true })
      const reply = await next(ws)
      t.equal(reply.isBinary, true, `${size} bytes arrive as binary`)
      t.ok(reply.data.equals(payload), `${size} bytes identical`)
    }
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    ws.send(all)
    t.ok((await next(ws)).data.equals(all), 'every byte value survives')
    await closeNormally(t, ws)
    t.same((await server.closed('binary')).messages, BINARY_SIZES.map((bytes) => ({ bytes, isBinary: true })))
  })

  await row.check(t, 'empty', 'empty text and empty binary messages are echoed', async (t) => {
    const ws = await open('/echo?case=empty')
    ws.send('')
    const text = await next(ws)
    t.same([text.isBinary, text.data.length], [false, 0], 'empty text')
    ws.send(Buffer.alloc(0))
    const bin = await next(ws)
    t.same([bin.isBinary, bin.data.length], [true, 0], 'empty binary')
    await closeNormally(t, ws)
    t.same((await server.closed('empty')).messages, [{ bytes: 0, isBinary: false }, { bytes: 0, isBinary: true }])
  })

  await row.check(t, 'large ≥16 MiB', '16 MiB + 1 binary and 16 MiB text are echoed byte-identical', async (t) => {
    const ws = await open('/echo?case=large')
    const payload = randomBytes(LARGE)
    ws.send(payload)
    const reply = await next(ws)
    t.equal(reply.isBinary, true)
    t.equal(reply.data.length, LARGE, 'same length')
    t.ok(reply.data.equals(payload), 'same bytes')
    const text = '✓é'.repeat(Math.floor(16 * 1024 * 1024 / 5) + 1) // 5 bytes per repetition
    ws.send(text)
    const textReply = await next(ws)
    t.equal(textReply.isBinary, false)
    t.ok(textReply.data.equals(Buffer.from(text)), 'same UTF-8 bytes')
    t.ok(textReply.data.length >= 16 * 1024 * 1024)
    await closeNormally(t, ws)
    t.same((await server.closed('large')).messages.map((m) => m.bytes), [LARGE, Buffer.byteLength(text)])
  })

  await row.check(t, 'fragmented in', 'fragments (with a ping between them) are reassembled into one message', async (t) => {
    const ws = await open('/echo?case=fragmented')
    ws.send('frag-one ', { fin: false })
    ws.ping('between')
    ws.send('frag-two ', { fin: false })
    ws.send('frag-three', { fin: true })
    const pong = once(ws, 'pong')
    const text = await next(ws)
    t.equal(text.isBinary, false)
    t.equal(text.data.toString(), 'frag-one frag-two frag-three', 'one text message')
    t.equal((await pong)[0].toString(), 'between', 'the ping between fragments was answered')
    const parts = [randomBytes(1000), randomBytes(70000), randomBytes(3)]
    ws.send(parts[0], { binary: true, fin: false })
    ws.send(parts[1], { binary: true, fin: false })
    ws.send(parts[2], { binary: true, fin: true })
    const bin = await next(ws)
    t.equal(bin.isBinary, true)
    t.ok(bin.data.equals(Buffer.concat(parts)), 'one binary message, identical')
    await closeNormally(t, ws)
    const record = await server.closed('fragmented')
    t.same(record.messages, [{ bytes: 28, isBinary: false }, { bytes: 71003, isBinary: true }], 'server saw two whole messages')
    t.same(record.pings, ['between'])
  })

  await row.check(t, 'server ping', 'the server pings, ws answers with a pong carrying the payload', async (t) => {
    const ws = await open('/control?case=server-ping')
    const pinged = once(ws, 'ping')
    ws.send(JSON.stringify({ op: 'ping', data: 'are you there?' }))
    t.equal((await pinged)[0].toString(), 'are you there?', 'ws saw the ping')
    const reply = JSON.parse((await next(ws)).data.toString())
    t.same(reply, { event: 'pong', data: 'are you there?' }, 'the server got the pong')
    await closeNormally(t, ws)
    t.same((await server.closed('server-ping')).pongs, ['are you there?'])
  })

  await row.check(t, 'peer ping', 'ws pings, the server answers with a pong carrying the payload', async (t) => {
    const ws = await open('/control?case=peer-ping')
    ws.ping('marco')
    t.equal((await once(ws, 'pong'))[0].toString(), 'marco')
    ws.ping()
    t.equal((await once(ws, 'pong'))[0].length, 0, 'empty ping, empty pong')
    await closeNormally(t, ws)
    t.same((await server.closed('peer-ping')).pings, ['marco', ''])
  })

  await row.check(t, 'peer close 4001', 'ws closes with 4001 "bye"', async (t) => {
    const ws = await open('/control?case=peer-close')
    const done = closed(ws)
    ws.close(4001, 'bye')
    t.equal((await done).code, 4001, 'the server echoed the code')
    const record = await server.closed('peer-close')
    t.same(record.close, { code: 4001, reason: 'bye' }, 'server close event: 4001, "bye"')
    t.equal(record.wasClean, true)
  })

  await row.check(t, 'server close 4002', 'the server closes with 4002 and a reason', async (t) => {
    const ws = await open('/control?case=server-close')
    const done = closed(ws)
    ws.send(JSON.stringify({ op: 'close', code: 4002, reason: 'server says bye ✓' }))
    t.same(await done, { code: 4002, reason: 'server says bye ✓' })
    const record = await server.closed('server-close')
    t.equal(record.close?.code, 4002, 'ws echoed the code')
    t.equal(record.wasClean, true)
  })

  await row.check(t, 'too big → 1009', 'a message over the default 1 MiB limit closes with 1009', async (t) => {
    const ws = await open('/control?case=too-big')
    const done = closed(ws)
    ws.send(Buffer.alloc(DEFAULT_LIMIT + 1))
    t.equal((await done).code, 1009)
    t.equal((await server.closed('too-big')).close?.code, 1009)
  })

  await row.finish(t)
}

main().catch((err) => t.threw(err))
