// How a job reaches the server: `job.transport` is 'tcp' (the default: the
// other scenarios), 'tls' (HTTP/1.1 upgrades, one TLS connection each) or
// 'h2' (RFC 8441: every WebSocket an extended CONNECT stream of one HTTP/2
// session over TLS). Whatever the transport, the job gets { socket, leftover }
// per WebSocket and writes and reads the same pre-encoded WebSocket frames
// on it: only what carries those bytes differs.

import { once } from 'node:events'
import http2 from 'node:http2'
import tls from 'node:tls'
import { HOST, openWebSocket } from './connect.mjs'

const EMPTY = Buffer.alloc(0)
const TIMEOUT_MS = 10_000
// Chromium's receive windows (6 MiB per stream, 15 MiB per session): the
// generator should never be the side whose flow control holds the server back.
const STREAM_WINDOW = 6 * 1024 * 1024
const SESSION_WINDOW = 15 * 1024 * 1024

/** { open(path) → Promise<{ socket, leftover }>, close() → Promise, stats() } for `job.transport`. */
export async function openTransport (job) {
  if (job.transport === 'h2') return await openSession(job.port, job.tls.ca)
  if (job.transport === 'tls') return tlsTransport(job.port, job.tls.ca)
  return {
    open: (path) => openWebSocket(job.port, path),
    close: async () => {},
    stats: () => ({})
  }
}

/**
 * HTTP/1.1 over TLS, as a browser opens a WebSocket it cannot put on an
 * HTTP/2 session: ALPN http/1.1 only, and the session ticket of an earlier
 * connection resumed (TLS 1.3 PSK with ECDHE, no certificate), as a browser
 * does for its second and later connections to a host.
 */
function tlsTransport (port, ca) {
  // Made once: given `ca`, tls.connect would build a new context (and
  // certificate store) per connection, the generator's largest cost.
  const secureContext = tls.createSecureContext({ ca })
  let ticket
  let handshakes = 0
  let resumed = 0
  const dial = () => {
    const socket = tls.connect({ host: HOST, port, secureContext, ALPNProtocols: ['http/1.1'], session: ticket })
    socket.once('session', (session) => { ticket = session })
    socket.once('secureConnect', () => {
      handshakes++
      if (socket.isSessionReused()) resumed++
    })
    return socket
  }
  return {
    open: (path) => openWebSocket(port, path, TIMEOUT_MS, null, dial),
    close: async () => {},
    stats: () => ({ handshakes, resumed })
  }
}

/**
 * One HTTP/2 session over TLS (ALPN h2), ready once the server's SETTINGS
 * allow extended CONNECT. Node's http2 client (nghttp2) does the HTTP/2
 * framing, HPACK and flow control; the WebSocket frames are still the job's.
 */
async function openSession (port, ca) {
  const authority = `${HOST}:${port}`
  const session = http2.connect(`https://${authority}`, { ca, settings: { enablePush: false, initialWindowSize: STREAM_WINDOW } })
  let failure = null
  session.on('error', (error) => { failure ??= error })
  const timer = setTimeout(() => session.destroy(new Error(`no HTTP/2 session within ${TIMEOUT_MS} ms`)), TIMEOUT_MS)
  try {
    // The server's first SETTINGS say whether it takes extended CONNECT.
    const settled = await Promise.race([once(session, 'remoteSettings'), once(session, 'close').then(() => 'closed')])
    if (settled === 'closed') throw failure ?? new Error('HTTP/2 session closed before its SETTINGS')
    if (session.remoteSettings.enableConnectProtocol !== true) throw new Error('the server does not allow extended CONNECT (RFC 8441)')
  } catch (error) {
    session.destroy()
    throw error
  } finally {
    clearTimeout(timer)
  }
  session.setLocalWindowSize(SESSION_WINDOW)
  let streams = 0
  return {
    open (path) {
      streams++
      return openStream(session, authority, path)
    },
    async close () {
      if (session.destroyed) return
      // GOAWAY once the streams are done; a session that does not end is destroyed.
      const closed = once(session, 'close')
      const timer = setTimeout(() => session.destroy(), 5000)
      session.close()
      await closed
      clearTimeout(timer)
    },
    stats: () => ({ streams, failure: failure?.message })
  }
}

/** An extended CONNECT (RFC 8441 §4) on `session`; resolves with the stream paused once the server answered 200. */
function openStream (session, authority, path) {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':authority': authority,
      ':path': path,
      'sec-websocket-version': '13'
    }, { endStream: false })
    const fail = (error) => {
      clearTimeout(timer)
      stream.destroy()
      reject(error)
    }
    const timer = setTimeout(() => fail(new Error(`extended CONNECT not answered within ${TIMEOUT_MS} ms`)), TIMEOUT_MS)
    const onClose = () => fail(new Error(`stream closed before the answer (RST_STREAM ${stream.rstCode})`))
    stream.once('error', fail)
    stream.once('close', onClose)
    stream.once('response', (headers) => {
      if (headers[':status'] !== 200) {
        fail(new Error(`extended CONNECT refused: ${headers[':status']}`))
        return
      }
      clearTimeout(timer)
      stream.off('error', fail)
      stream.off('close', onClose)
      // As openWebSocket leaves its socket: the job attaches its reader, then resumes.
      stream.pause()
      resolve({ socket: stream, leftover: EMPTY })
    })
  })
}
