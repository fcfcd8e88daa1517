import { STATUS_CODES, ServerResponse, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, preParsingHookHandler } from 'fastify'
import { channels, publishLimit } from '../diagnostics.js'
import { webSocketError } from '../protocol/errors.js'
import { headerHasToken } from '../protocol/header-lists.js'
import type { Registry } from './registry.js'
import { upgradeRequestBody } from './upgrade-body.js'
import { destroySocket, kBodySocket, kHead, kSocket, type UpgradeRequest } from './upgrade-request.js'

// Seconds a client refused at maxConnections is told to wait: long enough to
// spread a reconnect storm, short enough that capacity freed is used soon.
export const RETRY_AFTER_SECONDS = 5

// The timer bounding an upgrade request's handshake, on its socket.
const kHandshakeTimer = Symbol('fastify-rfc6455.handshakeTimer')
type TimedSocket = Duplex & { [kHandshakeTimer]?: NodeJS.Timeout }

const EMPTY = Buffer.alloc(0)

// Node marks a socket with the response bound to it (ServerResponse#assignSocket).
type SocketWithMessage = Duplex & { _httpMessage?: ServerResponse | null }

/**
 * The server's `upgrade` event: every upgrade request is run through
 * Fastify's router and hooks with a response bound to its socket, so every
 * refusal is an ordinary HTTP response and an accepted one ends in the
 * route's handler (route.ts, accept.ts). Upgrades between their head and
 * their answer are tracked here: they count against the plugin-level
 * maxConnections, and each is bounded by handshakeTimeout.
 */
export class UpgradeListener {
  /** Sockets of upgrade requests not answered yet. */
  readonly upgrading = new Set<Duplex>()
  private readonly fastify: FastifyInstance
  private readonly registry: Registry
  private readonly handshakeTimeout: number

  constructor (fastify: FastifyInstance, registry: Registry, handshakeTimeout: number) {
    this.fastify = fastify
    this.registry = registry
    this.handshakeTimeout = handshakeTimeout
    this.onUpgrade = this.onUpgrade.bind(this)
    this.onTimeout = this.onTimeout.bind(this)
    const listener = this
    this.onSocketClose = function (this: Duplex) { listener.handshakeDone(this) }
  }

  private readonly onSocketClose: (this: Duplex) => void

  onUpgrade (rawRequest: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Binding a response to a socket that has one throws ERR_HTTP_SOCKET_ASSIGNED out
    // of the event, uncaught, and takes the process down.
    const bound = (socket as SocketWithMessage)._httpMessage
    if (bound != null) {
      if (bound.req === rawRequest) {
        // Another `upgrade` listener, added before the plugin, bound it: the request is its to answer.
        this.fastify.log.warn({ url: rawRequest.url }, 'websocket upgrade left to another upgrade listener: it already assigned a response to the socket')
        return
      }
      // The response to a request pipelined before this one is still being written:
      // answer the upgrade once it is out, as HTTP/1.1 orders responses.
      this.afterEarlierResponse(bound, rawRequest, socket, head)
      return
    }
    socket.on('error', destroySocket)
    if (this.registry.closing) {
      this.refuseRaw(rawRequest, socket, 503, 'the server is shutting down')
      return
    }
    const websocket = headerHasToken(rawRequest.headers.upgrade, 'websocket')
    if (websocket && this.atCapacity(rawRequest)) {
      this.refuseRaw(rawRequest, socket, 503, 'maxConnections reached', `Retry-After: ${RETRY_AFTER_SECONDS}\r\n`)
      return
    }
    this.track(socket, rawRequest)
    const raw = rawRequest as UpgradeRequest
    raw[kSocket] = socket
    raw[kHead] = head
    raw[kBodySocket] = socket
    const response = new ServerResponse(rawRequest)
    response.shouldKeepAlive = false
    response.assignSocket(socket as any)
    response.once('finish', () => {
      this.handshakeDone(socket)
      if (websocket && channels.refused.hasSubscribers) channels.refused.publish({ request: rawRequest, statusCode: response.statusCode, reason: response.statusMessage })
      response.detachSocket(socket as any)
      // Nothing more is read from a refused upgrade, and a client that never ends its
      // side would keep the socket (and app.close()) waiting: close once the reply is out.
      socket.once('finish', destroySocket)
      socket.end()
    })
    this.fastify.routing(rawRequest, response)
  }

  /** Runs the upgrade once the response bound to its socket (a pipelined request's) has finished. */
  private afterEarlierResponse (earlier: ServerResponse, rawRequest: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node removed its socket listeners when it handed the upgrade over.
    socket.on('error', destroySocket)
    const onFinish = (): void => {
      socket.removeListener('close', onClose)
      socket.removeListener('error', destroySocket)
      // Node's own 'finish' listener, added first, has detached that response by now.
      if (!socket.destroyed) this.onUpgrade(rawRequest, socket, head)
    }
    const onClose = (): void => { earlier.removeListener('finish', onFinish) }
    earlier.once('finish', onFinish)
    socket.once('close', onClose)
  }

  /**
   * Whether the app has its maxConnections open, counting upgrades in
   * progress (logged and published when so). Checked before routing and
   * hooks: a flood of upgrades past the limit costs no user code.
   */
  atCapacity (rawRequest: IncomingMessage): boolean {
    const limit = this.registry.settings.maxConnections
    if (this.registry.clients.size + this.upgrading.size < limit) return false
    this.fastify.log.warn({ limit, open: this.registry.clients.size, upgrading: this.upgrading.size }, 'websocket upgrade refused: maxConnections reached')
    publishLimit('maxConnections', undefined, undefined, rawRequest)
    return true
  }

  /** Counts an upgrade (a socket, or an HTTP/2 stream) until it is answered, bounded by handshakeTimeout. */
  track (socket: Duplex, rawRequest: IncomingMessage): void {
    this.upgrading.add(socket)
    const timer = setTimeout(this.onTimeout, this.handshakeTimeout, socket, rawRequest)
    timer.unref()
    ;(socket as TimedSocket)[kHandshakeTimer] = timer
    // `on`, not `once`: handshakeDone removes it, and `once` would wrap it in a new closure per upgrade.
    socket.on('close', this.onSocketClose)
  }

  /** The upgrade request was answered (101 or a refusal), or its socket is gone. */
  handshakeDone (socket: Duplex): void {
    if (!this.upgrading.delete(socket)) return
    const timed = socket as TimedSocket
    clearTimeout(timed[kHandshakeTimer])
    timed[kHandshakeTimer] = undefined
    socket.removeListener('close', this.onSocketClose)
  }

  /** Stops every handshake timer (app.close()). */
  stop (): void {
    for (const socket of this.upgrading) this.handshakeDone(socket)
  }

  private onTimeout (socket: Duplex, rawRequest: IncomingMessage): void {
    this.handshakeDone(socket)
    const err = webSocketError('WS_ERR_HANDSHAKE_TIMEOUT', `the upgrade request was not answered within ${this.handshakeTimeout} ms`)
    this.fastify.log.warn({ err, url: rawRequest.url, handshakeTimeout: this.handshakeTimeout }, 'websocket upgrade request not answered within handshakeTimeout; closing its socket')
    publishLimit('handshakeTimeout', undefined, err, rawRequest)
    if (channels.refused.hasSubscribers) channels.refused.publish({ request: rawRequest, statusCode: 0, reason: 'handshakeTimeout' })
    socket.destroy()
  }

  /** Ends an upgrade request's socket with a bare response, before Fastify sees the request. */
  private refuseRaw (rawRequest: IncomingMessage, socket: Duplex, status: number, reason: string, extraHeaders = ''): void {
    if (channels.refused.hasSubscribers) channels.refused.publish({ request: rawRequest, statusCode: status, reason })
    // A client that never ends its side would otherwise keep the socket (and app.close()) waiting.
    socket.once('finish', destroySocket)
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n${extraHeaders}Content-Length: 0\r\n\r\n`)
  }
}

/**
 * A request that came through `upgrade` but is answered as plain HTTP (a route
 * without wsHandler, or Upgrade naming another protocol) may carry a body, and
 * Node stopped parsing after its head: the preParsing hook reads it from the socket.
 */
export const readUpgradeRequestBody: preParsingHookHandler = function readUpgradeRequestBody (request, reply, payload, done) {
  const raw = request.raw as UpgradeRequest
  const socket = raw[kBodySocket]
  if (socket === undefined) {
    done(null, payload)
    return
  }
  raw[kBodySocket] = undefined
  const body = request.ws ? null : upgradeRequestBody(raw.headers, raw[kHead] ?? EMPTY, socket, reply.raw)
  done(null, body ?? payload)
}
