// Raw TCP peers for the soak run: they write what they like, so they can
// break every rule a WebSocket client library would keep.

import { randomBytes } from 'node:crypto'
import net from 'node:net'

const HOST = '127.0.0.1'
const MAX_HEAD = 64 * 1024

export function sleep (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** A well-formed opening handshake request, with extra header lines. */
export function upgradeRequest (path, extraLines = []) {
  return [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    ...extraLines,
    '',
    ''
  ].join('\r\n')
}

/**
 * Connects, writes `request` and waits for the response head. Resolves with
 * `{ socket, status, rest }` (socket paused; `rest` is what came after the
 * head) or `{ socket: null, outcome }` when no head arrived: 'eof without
 * response', 'reset', 'timeout' or 'connect failed'.
 */
export function exchangeHead (port, request, { timeoutMs = 10_000, endAfterWrite = false } = {}) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port })
    socket.setNoDelay(true)
    let head = Buffer.alloc(0)
    let connected = false
    let settled = false
    const finish = (result) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('close', onEnd)
      if (result.socket === null) socket.destroy()
      else {
        socket.pause()
        // Errors after the head belong to whoever holds the socket now; an
        // unheard one must not take the run down.
        socket.on('error', () => {})
      }
      resolve(result)
    }
    const timer = setTimeout(() => finish({ socket: null, outcome: 'timeout' }), timeoutMs)
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end === -1) {
        if (head.length > MAX_HEAD) finish({ socket: null, outcome: 'response head too large' })
        return
      }
      const statusLine = head.toString('latin1', 0, head.indexOf('\r\n'))
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
      finish(match === null
        ? { socket: null, outcome: `bad status line ${JSON.stringify(statusLine.slice(0, 40))}` }
        : { socket, status: Number(match[1]), rest: head.subarray(end + 4) })
    }
    const onEnd = () => finish({ socket: null, outcome: connected ? 'eof without response' : 'connect failed' })
    socket.on('connect', () => {
      connected = true
      socket.write(request)
      if (endAfterWrite) socket.end()
    })
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('close', onEnd)
    socket.on('error', (error) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') finish({ socket: null, outcome: 'reset' })
      else finish({ socket: null, outcome: connected ? `error ${error.code ?? error.message}` : 'connect failed' })
    })
  })
}

/** Resolves true once `socket` has closed, false after `ms`. */
export function closedWithin (socket, ms) {
  if (socket.destroyed) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => { socket.off('close', onClose); resolve(false) }, ms)
    const onClose = () => { clearTimeout(timer); resolve(true) }
    socket.once('close', onClose)
  })
}

/** Resolves 'drain', 'closed' or 'timeout'. */
export function drained (socket, ms) {
  if (socket.destroyed) return Promise.resolve('closed')
  return new Promise((resolve) => {
    const done = (result) => {
      clearTimeout(timer)
      socket.off('drain', onDrain)
      socket.off('close', onClose)
      resolve(result)
    }
    const onDrain = () => done('drain')
    const onClose = () => done('closed')
    const timer = setTimeout(() => done('timeout'), ms)
    socket.once('drain', onDrain)
    socket.once('close', onClose)
  })
}
