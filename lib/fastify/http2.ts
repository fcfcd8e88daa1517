import type { IncomingMessage } from 'node:http'
import { constants, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2'
import type { FastifyInstance } from 'fastify'
import { channels } from '../diagnostics.js'
import { EXTENDED_CONNECT_PROTOCOL, validateExtendedConnect } from '../protocol/extended-connect.js'
import type { Registry } from './registry.js'
import { RETRY_AFTER_SECONDS, type UpgradeListener } from './upgrade.js'
import { errorBody, kHandshake, kHttp2, kRefusal, kSocket, type UpgradeRequest } from './upgrade-request.js'

/** What the plugin needs of an HTTP/2 server (`Fastify({ http2: true })`, with or without TLS). */
interface Http2ServerLike {
  updateSettings (settings: { enableConnectProtocol?: boolean }): void
  on (event: 'connect', listener: (req: Http2ServerRequest, res: Http2ServerResponse) => void): unknown
  removeListener (event: 'connect', listener: (req: Http2ServerRequest, res: Http2ServerResponse) => void): unknown
  listenerCount (event: string): number
}

/**
 * WebSocket over HTTP/2 (RFC 8441). The server advertises
 * SETTINGS_ENABLE_CONNECT_PROTOCOL, and an extended CONNECT with `:protocol
 * websocket` goes where an HTTP/1.1 upgrade goes: Fastify's router, as the
 * GET route at its `:path`, with the same hooks, constraints and schemas,
 * then accept.ts, which answers 200 and runs the connection on the stream.
 * Node emits a CONNECT as the server's `connect` event (answering 405 when
 * nobody listens), never as `request`, so Fastify would not see it alone.
 * Returns null on a server that is not HTTP/2.
 */
export function installHttp2 (fastify: FastifyInstance, server: unknown, registry: Registry, upgrades: UpgradeListener): Http2WebSockets | null {
  const h2 = server as Http2ServerLike
  if (typeof h2.updateSettings !== 'function') return null
  // Sessions that carried a WebSocket, for the GOAWAY after the shutdown round.
  const sessions = new Set<ServerHttp2Session>()
  const forget = function (this: ServerHttp2Session): void { sessions.delete(this) }
  // The response's 'finish', one function for every extended CONNECT (a closure per
  // request would be kept, with the request, for the WebSocket's whole life).
  const onAnswered = function (this: Http2ServerResponse): void {
    const raw = this.req as unknown as UpgradeRequest
    const stream = this.stream
    // Accepted: accept.ts took the stream off the request; its 'finish' is the WebSocket's end.
    if (raw[kHandshake] !== undefined && raw[kSocket] === undefined) return
    upgrades.handshakeDone(stream)
    // Refused through Fastify (the ones refused before routing, and timeouts, publish their own).
    if (raw[kHttp2] === true && this.headersSent && channels.refused.hasSubscribers) {
      channels.refused.publish({ request: raw, statusCode: this.statusCode, reason: errorReason(this) })
    }
    // Whatever the answer, a refused stream is closed once it is out.
    endStream(stream)
  }
  // Sent in the SETTINGS of every session opened from now on: the plugin is registered before listen().
  h2.updateSettings({ enableConnectProtocol: true })

  const onConnect = (req: Http2ServerRequest, res: Http2ServerResponse): void => {
    if (req.headers[':protocol'] !== EXTENDED_CONNECT_PROTOCOL) {
      // Another CONNECT (a tunnel, another :protocol) is not ours: Node's own answer
      // when nobody listens, unless the app listens for it too.
      if (h2.listenerCount('connect') === 1) {
        res.statusCode = 405
        res.end()
      }
      return
    }
    const raw = req as unknown as UpgradeRequest
    const stream = req.stream as ServerHttp2Stream
    const session = stream.session as ServerHttp2Session | undefined
    if (session !== undefined && !sessions.has(session)) {
      sessions.add(session)
      session.once('close', forget)
    }
    res.once('finish', onAnswered)
    if (registry.closing) {
      refuseRaw(res, 503, 'the server is shutting down', {})
      return
    }
    if (upgrades.atCapacity(raw)) {
      refuseRaw(res, 503, 'maxConnections reached', { 'retry-after': String(RETRY_AFTER_SECONDS) })
      return
    }
    // Checked now: routing as a GET replaces :method, which the checks read.
    const result = validateExtendedConnect(req.headers)
    if (result.ok) raw[kHandshake] = result
    else raw[kRefusal] = result
    raw[kHttp2] = true
    raw[kSocket] = stream
    upgrades.track(stream, raw)
    // The route is the GET route at :path, as for an HTTP/1.1 upgrade.
    ;(req as { method: string }).method = 'GET'
    fastify.routing(req as unknown as IncomingMessage, res as any)
  }
  h2.on('connect', onConnect)
  return {
    closeSessions () {
      for (const session of sessions) session.close()
    },
    remove () {
      h2.removeListener('connect', onConnect)
    }
  }
}

export interface Http2WebSockets {
  /**
   * GOAWAY on every session that carried a WebSocket, once the shutdown
   * round closed them: in-flight requests finish, no new stream starts.
   * Fastify closes HTTP/2 sessions itself only with `forceCloseConnections:
   * true` (or Node 24's server.close()); without this, a browser's idle
   * session would keep app.close() waiting for http2SessionTimeout.
   */
  closeSessions (): void
  remove (): void
}

/** A refusal before routing (shutting down, at capacity): an ordinary HTTP/2 response. */
function refuseRaw (res: Http2ServerResponse, status: number, reason: string, headers: Record<string, string>): void {
  const request = res.req as unknown as IncomingMessage
  if (channels.refused.hasSubscribers) channels.refused.publish({ request, statusCode: status, reason })
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8' })
  res.end(JSON.stringify(errorBody(status, reason)))
}

/**
 * After a refusal: the client opened the stream to send frames, and would
 * keep its side open (and the session, and app.close(), waiting). RFC 9113
 * §8.1 lets a server that answered in full ask it to stop, without error.
 */
function endStream (stream: ServerHttp2Stream): void {
  if (!stream.closed && !stream.destroyed && stream.headersSent) stream.close(constants.NGHTTP2_NO_ERROR)
}

function errorReason (res: Http2ServerResponse): string {
  // HTTP/2 has no reason phrase; the status is what there is to tell.
  return `HTTP/2 status ${res.statusCode}`
}
