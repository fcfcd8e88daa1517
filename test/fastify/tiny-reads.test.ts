import { once } from 'node:events'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import type { WebSocketConnection } from '../../lib/index.js'
import { Queue, build, listen } from '../helpers/app.js'
import { rawUpgrade } from '../helpers/raw-peer.js'
import { encodeFrame, parseClose } from '../helpers/wire.cjs'

// Issue 8, case 5: a 1 MB frame in 1-byte TCP segments, against the plugin
// with its defaults, and the same frame in segment-sized reads.

const MB = 1_000_000
const HEADER = 14 // 64-bit length and mask key
const CODE = 'WS_ERR_MESSAGE_TOO_FRAGMENTED'

interface Server {
  /** The server's side of the next connection: its socket, its connection, what it read and reported. */
  next: () => Promise<{ socket: Socket, conn: WebSocketConnection }>
  reads: number
  messages: Buffer[]
  errors: Array<Error & { code?: string }>
  /** Server reads counted when the first error was reported. */
  readsAtError: number
}

async function server (t: Test): Promise<{ app: FastifyInstance, state: Server }> {
  const app = await build(t)
  const opened = new Queue<{ socket: Socket, conn: WebSocketConnection }>()
  const state: Server = {
    next: async () => await opened.next(),
    reads: 0,
    messages: [],
    errors: [],
    readsAtError: -1
  }
  app.get('/ws', { websocket: true }, (conn, req) => {
    const socket = req.socket as Socket
    // Counted before the connection parses the read, so an error reported from that read sees it.
    socket.prependListener('data', () => { state.reads++ })
    conn.on('message', (data: Buffer) => { state.messages.push(Buffer.from(data)) })
    conn.on('error', (err: Error) => {
      if (state.errors.length === 0) state.readsAtError = state.reads
      state.errors.push(err)
    })
    opened.push({ socket, conn })
  })
  await listen(app)
  return { app, state }
}

function megabyteFrame (): { payload: Buffer, wire: Buffer } {
  const payload = Buffer.alloc(MB)
  for (let i = 0; i < MB; i++) payload[i] = (i * 131 + 7) & 0xff
  return { payload, wire: encodeFrame(0x2, payload) }
}

t.test('a 1 MB frame in 1-byte reads is closed with 1008 after 1029 of them', async (t) => {
  const { app, state } = await server(t)
  const { peer } = await rawUpgrade(app, '/ws')
  const { socket } = await state.next()
  peer.socket.setNoDelay(true)
  const { wire } = megabyteFrame()
  // Each byte is written only once the server has read the previous one, so
  // every read is exactly one byte: a TCP segment per byte, as the issue
  // measured it. Bounded: a server without the cap would read all 4096.
  let written = 0
  while (written < 4096 && state.errors.length === 0) {
    const read = once(socket, 'data')
    peer.write(wire.subarray(written, written + 1))
    written++
    await read
  }
  if (state.errors.length === 0) {
    t.fail(`no error after ${written} one-byte reads`)
    return
  }
  // 1029 > 1024 + 1029/256 is the first piece count past the cap (see piece-limit.ts).
  t.equal(state.readsAtError, HEADER + 1029, 'failed at the 1029th payload read, after the 14 header reads')
  t.equal(state.errors.length, 1)
  t.equal(state.errors[0]?.code, CODE)
  const close = parseClose(await peer.frame())
  t.equal(close.code, 1008, 'the peer receives a close frame with 1008')
  t.same(state.messages, [], 'no message was delivered')
  await peer.end()
  t.ok(peer.ended || peer.closed, 'the server ended the connection')
})

t.test('the same frame in 1,460-byte reads is accepted, byte-exact', async (t) => {
  const { app, state } = await server(t)
  const { peer } = await rawUpgrade(app, '/ws')
  const { socket } = await state.next()
  peer.socket.setNoDelay(true)
  const { payload, wire } = megabyteFrame()
  for (let offset = 0; offset < wire.length; offset += 1460) {
    const read = once(socket, 'data')
    peer.write(wire.subarray(offset, offset + 1460))
    await read
  }
  while (state.messages.length === 0 && state.errors.length === 0) await once(socket, 'data').catch(() => {})
  t.same(state.errors, [])
  t.equal(state.messages.length, 1)
  t.ok(state.messages[0].equals(payload), 'the payload is intact')
  peer.destroy()
})

t.test('1-byte writes in bursts: closed with 1008 or accepted, never more pieces than the cap allows', async (t) => {
  // Without waiting for the server, loopback coalesces writes into reads of
  // whatever size: the invariant holds for any of them.
  const { app, state } = await server(t)
  const { peer } = await rawUpgrade(app, '/ws')
  const { socket } = await state.next()
  peer.socket.setNoDelay(true)
  const { payload, wire } = megabyteFrame()
  let readBytes = 0
  socket.on('data', (chunk: Buffer) => { readBytes += chunk.length })
  let written = 0
  while (written < wire.length && state.errors.length === 0 && !peer.closed) {
    const end = Math.min(written + 64, wire.length)
    for (; written < end; written++) peer.write(wire.subarray(written, written + 1))
    await new Promise((resolve) => setImmediate(resolve))
  }
  while (state.messages.length === 0 && state.errors.length === 0 && !peer.closed) await new Promise((resolve) => setImmediate(resolve))
  if (state.errors.length > 0) {
    t.equal(state.errors[0].code, CODE)
    t.equal(parseClose(await peer.frame()).code, 1008, 'closed with 1008')
    // The cap only trips past 1024 pieces, and a read is at most one piece.
    t.ok(state.readsAtError > 1024, `${state.readsAtError} reads before the close`)
  } else {
    t.ok(state.messages.length === 1 && state.messages[0].equals(payload), 'accepted, intact')
    t.ok(state.reads <= HEADER + 1024 + MB / 256, `accepted in ${state.reads} reads, within the cap`)
  }
  t.comment(`${state.reads} reads of ${(readBytes / Math.max(1, state.reads)).toFixed(1)} bytes on average; ${state.errors.length > 0 ? 'closed with 1008' : 'accepted'}`)
  peer.destroy()
})
