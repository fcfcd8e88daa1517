// Opening and closing the generator's WebSocket connections over plain TCP.

import { createHash, randomBytes } from 'node:crypto'
import net from 'node:net'
import { closePayload, encodeFrame, OPCODE } from '../../test/helpers/wire.cjs'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
export const HOST = '127.0.0.1'
const MAX_RESPONSE_HEAD = 16 * 1024

/**
 * Connects and performs the opening handshake. Resolves with the socket
 * paused, plus any bytes that arrived behind the 101 response, so the caller
 * can attach its frame reader before anything else is read. `offer`, when
 * given, is sent as Sec-WebSocket-Extensions; `extensions` is the server's
 * answer (its Sec-WebSocket-Extensions lines joined), or null. `dial`
 * makes the connection: plain TCP unless a transport (transports.mjs) gives TLS.
 */
export function openWebSocket (port, path, timeoutMs = 10_000, offer = null, dial = dialTcp) {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64')
    const expectedAccept = createHash('sha1').update(key + GUID).digest('base64')
    const socket = dial(port)
    socket.setNoDelay(true)
    let head = Buffer.alloc(0)
    let settled = false

    const fail = (error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      reject(error)
    }
    const timer = setTimeout(() => fail(new Error(`handshake timed out after ${timeoutMs} ms`)), timeoutMs)

    const onData = (chunk) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end === -1) {
        if (head.length > MAX_RESPONSE_HEAD) fail(new Error('handshake response head too large'))
        return
      }
      const lines = head.subarray(0, end).toString('latin1').split('\r\n')
      if (!/^HTTP\/1\.1 101 /.test(lines[0] + ' ')) {
        fail(new Error(`upgrade refused: ${lines[0]}`))
        return
      }
      const accept = lines.find((line) => /^sec-websocket-accept:/i.test(line))
      if (accept === undefined || accept.slice(accept.indexOf(':') + 1).trim() !== expectedAccept) {
        fail(new Error('wrong Sec-WebSocket-Accept'))
        return
      }
      const answered = lines.filter((line) => /^sec-websocket-extensions:/i.test(line))
        .map((line) => line.slice(line.indexOf(':') + 1).trim())
      settled = true
      clearTimeout(timer)
      socket.pause()
      socket.off('data', onData)
      socket.off('error', fail)
      socket.off('close', onEarlyClose)
      resolve({ socket, leftover: head.subarray(end + 4), extensions: answered.length === 0 ? null : answered.join(', ') })
    }
    const onEarlyClose = () => fail(new Error('connection closed during handshake'))

    socket.on('data', onData)
    socket.on('error', fail)
    socket.on('close', onEarlyClose)
    socket.write(
      `GET ${path} HTTP/1.1\r\n` +
      `Host: ${HOST}:${port}\r\n` +
      'Upgrade: websocket\r\n' +
      'Connection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${key}\r\n` +
      (offer === null ? '' : `Sec-WebSocket-Extensions: ${offer}\r\n`) +
      'Sec-WebSocket-Version: 13\r\n\r\n'
    )
  })
}

function dialTcp (port) {
  return net.connect({ host: HOST, port })
}

/**
 * Opens `count` connections, `concurrency` handshakes at a time so that large
 * counts don't overflow the server's accept backlog; `offer` as in
 * openWebSocket. `transport` (transports.mjs), when given, opens each one
 * instead: over TLS, or as a stream of an HTTP/2 session.
 */
export async function openMany (port, path, count, concurrency = 64, offer = null, transport = null) {
  const opened = []
  let next = 0
  let failed = false
  const worker = async () => {
    while (next < count && !failed) {
      const index = next++
      try {
        opened[index] = await (transport === null ? openWebSocket(port, path, undefined, offer) : transport.open(path))
      } catch (error) {
        failed = true
        throw error
      }
    }
  }
  // Settled, not all: every handshake still in progress must end before the
  // opened sockets are destroyed on failure, or some would leak.
  const outcomes = await Promise.allSettled(Array.from({ length: Math.min(concurrency, count) }, worker))
  const failure = outcomes.find((outcome) => outcome.status === 'rejected')
  if (failure !== undefined) {
    for (const connection of opened) connection?.socket.destroy()
    throw failure.reason
  }
  return opened
}

/**
 * The control-frame handling every job shares: pings are answered so a
 * keep-alive doesn't drop the connection, and a close frame (the server's
 * reply to ours, or its own) is followed by ending our side of TCP. Returns
 * true for a close frame.
 */
export function handleControl (socket, opcode, payload) {
  if (opcode === OPCODE.ping) {
    if (socket.writable) socket.write(encodeFrame(OPCODE.pong, payload))
    return false
  }
  if (opcode === OPCODE.close) {
    socket.end()
    return true
  }
  return false
}

const CLOSE_FRAME = encodeFrame(OPCODE.close, closePayload(1000))

/**
 * Starts a closing handshake on every socket and waits for them to close:
 * the server gets the orderly path and is quiet before the next measurement.
 * Each socket's frame reader must route control frames to handleControl.
 * Sockets still open after `timeoutMs` are destroyed.
 */
export async function closeAll (sockets, timeoutMs = 2000) {
  const pending = sockets.filter((socket) => !socket.destroyed)
  await Promise.all(pending.map((socket) => new Promise((resolve) => {
    const timer = setTimeout(() => { socket.destroy(); resolve() }, timeoutMs)
    socket.once('close', () => { clearTimeout(timer); resolve() })
    socket.resume()
    if (socket.writable) socket.write(CLOSE_FRAME)
    else socket.destroy()
  })))
}
