import { STATUS_CODES, ServerResponse, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { WebSocketConnection, type BufferFullPolicy, type WebSocketData } from './connection/connection.js'
import { Heartbeats } from './connection/heartbeat.js'
import { kInternal } from './connection/internal.js'
import { DEFAULTS as SETTING_DEFAULTS } from './defaults.js'
import { channels, publishLimit } from './diagnostics.js'
import { injectWebSocket, type InjectWSOptions } from './inject.js'
import { buildUpgradeResponse, selectSubprotocol, validateHandshake, type HandshakeAccepted, type SubprotocolSelector } from './protocol/handshake.js'
import { CloseCode } from './protocol/close-codes.js'
import { CompilerCache, JsonWebSocketConnection, RouteMessages, checkMessageSettings, kSetFailureHandler, type BinaryMessagePolicy, type InvalidMessagePolicy, type JsonMessageSettings } from './messages/index.js'
import { encodeMessageFrame } from './protocol/frame-writer.js'
import { headerHasToken } from './protocol/header-lists.js'
import { pieceLimits } from './protocol/piece-limit.js'
import { upgradeRequestBody } from './upgrade-body.js'
import { installUpgradeFilter } from './upgrade-filter.js'

/** Settings that apply to every WebSocket route, and that a route may override. */
export interface WebSocketRouteSettings extends JsonMessageSettings {
  /** Largest incoming message in bytes (sum of fragments). Default 1 MiB; past it, close 1009. */
  maxMessageSize?: number
  /**
   * A message may arrive in this many pieces (a frame's bytes from one read,
   * or an empty frame), plus one per `minAveragePieceSize` bytes; past that,
   * close 1008 (`WS_ERR_MESSAGE_TOO_FRAGMENTED`). Defaults 1024 and 256.
   */
  maxMessagePieces?: number
  minAveragePieceSize?: number
  /** Milliseconds to wait for the peer to complete the closing handshake. Default 5000. */
  closeTimeout?: number
  /** Subprotocols the server speaks, in order of preference, or a function choosing one of the client's. */
  protocols?: SubprotocolSelector
  /** `send` returns false once this many bytes wait to be written. Default 1 MiB. */
  highWaterMark?: number
  /**
   * Most bytes a connection may have waiting to be written (messages, pings,
   * pongs) before `onBufferFull` applies. Default 4 MiB.
   */
  maxBufferedAmount?: number
  /**
   * Past `maxBufferedAmount`: `'close'` (default) drops the connection, whose
   * `close` event reports 1008; `'refuse'` keeps it and rejects the send with
   * a `WebSocketError` coded `WS_ERR_BUFFER_FULL` (thrown, or given to the send callback).
   */
  onBufferFull?: BufferFullPolicy
  /**
   * Most connections open at once: at plugin level across the app (upgrades
   * in progress count too), on a route for that route. Past it, upgrades get
   * 503 with `Retry-After`; open connections are not touched. Default: no limit.
   */
  maxConnections?: number
  /** Reply to pings automatically. Default true. */
  autoPong?: boolean
  /**
   * Milliseconds between heartbeat pings. A connection whose peer sent
   * nothing (not even the pong) by the next ping is terminated, so peers that
   * vanished without closing do not hold connections for ever. Default 0: off.
   */
  heartbeatInterval?: number
  /**
   * Keep the upgrade request as `conn.request` for the connection's
   * lifetime. Default true. With false, `conn.request` is cleared once the
   * handler returns (or its promise settles): about 1.4 KiB less per
   * idle connection. Close over what you need from `req` in the handler.
   */
  retainRequest?: boolean
  /**
   * Decides what a throwing or rejecting `wsHandler` does. Default: log the
   * error through `request.log` and close the connection with 1011.
   */
  errorHandler?: (this: FastifyInstance, error: unknown, conn: WebSocketConnection<FastifyRequest>, request: FastifyRequest) => void
}

export interface WebSocketPluginOptions extends WebSocketRouteSettings {
  /**
   * Milliseconds from an upgrade request's head to its answer (hooks,
   * validation, auth): past it the socket is destroyed. Default 10 s.
   */
  handshakeTimeout?: number
}

interface ResolvedSettings {
  maxMessageSize: number
  maxMessagePieces: number
  minAveragePieceSize: number
  closeTimeout: number
  protocols: SubprotocolSelector | undefined
  highWaterMark: number
  maxBufferedAmount: number
  onBufferFull: BufferFullPolicy
  maxConnections: number
  autoPong: boolean
  heartbeatInterval: number
  retainRequest: boolean
  errorHandler: WebSocketRouteSettings['errorHandler']
  onInvalidMessage: InvalidMessagePolicy
  onBinaryMessage: BinaryMessagePolicy
}

export type WsHandler = (this: FastifyInstance, conn: JsonWebSocketConnection<FastifyRequest>, request: FastifyRequest) => unknown

interface WsRoute {
  handler: WsHandler
  settings: ResolvedSettings
  /** Compiled `schema.message` / `schema.outgoing` and the JSON policies. */
  messages: RouteMessages
  /** No `handler` for plain HTTP: the route only serves WebSocket connections. */
  wsOnly: boolean
  /** Connections open on this route (its `maxConnections`). */
  open: number
  /** What a failing handler does; made on the route's first connection (it needs the route's instance). */
  fail?: FailureHandler
}

export interface BroadcastOptions {
  binary?: boolean
  /** Receivers; default every open connection of the app. */
  clients?: Iterable<WebSocketConnection<any>>
  /** Skip connections for which this returns false. */
  filter?: (conn: WebSocketConnection<any>) => boolean
}

/** What the plugin adds to the Fastify instance as `app.websocket`. */
export interface WebSocketRegistry {
  /** Open connections, across all routes. */
  readonly clients: Set<WebSocketConnection<FastifyRequest>>
  /**
   * Sends one message to many connections, encoding its frame once.
   * Returns how many connections it was queued on.
   */
  broadcast (data: WebSocketData, options?: BroadcastOptions): number
  /** The effective plugin-level settings. */
  readonly settings: Readonly<ResolvedSettings>
}

const kSocket = Symbol('fastify-rfc6455.socket')
const kHead = Symbol('fastify-rfc6455.head')
const kHandshake = Symbol('fastify-rfc6455.handshake')
const kBodySocket = Symbol('fastify-rfc6455.bodySocket')
// Fastify binds route handlers, so a request cannot be matched to its WebSocket
// route by handler identity; the route's config (copied per route) carries it instead.
const kRoute = Symbol('fastify-rfc6455.route')
// Marks a server that already has the plugin's upgrade listener: two would both answer every upgrade.
const kRegistered = Symbol('fastify-rfc6455.registered')
// The route a server connection belongs to, for its route's connection count.
const kConnRoute = Symbol('fastify-rfc6455.connRoute')
// The timer bounding an upgrade request's handshake, on its socket.
const kHandshakeTimer = Symbol('fastify-rfc6455.handshakeTimer')
// Seconds a client refused at maxConnections is told to wait: long enough to
// spread a reconnect storm, short enough that capacity freed is used soon.
const RETRY_AFTER_SECONDS = 5

type ServerConnection = WebSocketConnection<FastifyRequest> & { [kConnRoute]?: WsRoute }
type TimedSocket = Duplex & { [kHandshakeTimer]?: NodeJS.Timeout }

interface UpgradeRequest extends IncomingMessage {
  [kSocket]?: Duplex
  [kBodySocket]?: Duplex
  [kHead]?: Buffer
  [kHandshake]?: HandshakeAccepted
}

const DEFAULTS: ResolvedSettings = {
  maxMessageSize: SETTING_DEFAULTS.maxMessageSize,
  maxMessagePieces: SETTING_DEFAULTS.maxMessagePieces,
  minAveragePieceSize: SETTING_DEFAULTS.minAveragePieceSize,
  closeTimeout: SETTING_DEFAULTS.closeTimeout,
  protocols: undefined,
  highWaterMark: SETTING_DEFAULTS.highWaterMark,
  maxBufferedAmount: SETTING_DEFAULTS.maxBufferedAmount,
  onBufferFull: SETTING_DEFAULTS.onBufferFull,
  maxConnections: SETTING_DEFAULTS.maxConnections,
  autoPong: SETTING_DEFAULTS.autoPong,
  heartbeatInterval: SETTING_DEFAULTS.heartbeatInterval,
  retainRequest: SETTING_DEFAULTS.retainRequest,
  errorHandler: undefined,
  onInvalidMessage: 'reply',
  onBinaryMessage: 'close'
}

// Headers of the 101 response that hooks may not override.
const RESERVED_RESPONSE_HEADERS = new Set([
  'upgrade', 'connection', 'sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions',
  'content-length', 'content-type', 'transfer-encoding', 'keep-alive'
])

function resolveSettings (base: ResolvedSettings, overrides: WebSocketRouteSettings | undefined): ResolvedSettings {
  const out = { ...base }
  if (overrides === undefined) return out
  for (const key of Object.keys(DEFAULTS) as Array<keyof ResolvedSettings>) {
    if (overrides[key] !== undefined) (out as any)[key] = overrides[key]
  }
  if (!Number.isSafeInteger(out.maxMessageSize) || out.maxMessageSize < 0) {
    throw new TypeError(`maxMessageSize must be a non-negative integer, got ${out.maxMessageSize}`)
  }
  pieceLimits(out) // throws a RangeError naming the bad one
  if (!(out.closeTimeout > 0)) throw new TypeError(`closeTimeout must be a positive number of milliseconds, got ${out.closeTimeout}`)
  if (!(out.maxBufferedAmount > 0)) throw new TypeError(`maxBufferedAmount must be a positive number of bytes, got ${out.maxBufferedAmount}`)
  if (out.onBufferFull !== 'close' && out.onBufferFull !== 'refuse') {
    throw new TypeError(`onBufferFull must be 'close' or 'refuse', got ${String(out.onBufferFull)}`)
  }
  if (!(out.maxConnections === Infinity || (Number.isSafeInteger(out.maxConnections) && out.maxConnections > 0))) {
    throw new TypeError(`maxConnections must be a positive integer or Infinity, got ${out.maxConnections}`)
  }
  if (!(out.heartbeatInterval >= 0 && out.heartbeatInterval < 2 ** 31)) {
    throw new TypeError(`heartbeatInterval must be 0 (off) or a number of milliseconds, got ${out.heartbeatInterval}`)
  }
  return out
}

function errorBody (status: number, message: string): { statusCode: number, error: string, message: string } {
  return { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message }
}

const websocketPlugin: FastifyPluginAsync<WebSocketPluginOptions> = async function websocketPlugin (fastify, options) {
  const server = fastify.server as typeof fastify.server & { [kRegistered]?: true }
  if (server[kRegistered]) {
    throw new Error('fastify-rfc6455 is already registered on this server: register it once, at the root, before WebSocket routes')
  }
  const settings = resolveSettings(DEFAULTS, options)
  const handshakeTimeout = options.handshakeTimeout ?? SETTING_DEFAULTS.handshakeTimeout
  if (!(handshakeTimeout > 0 && handshakeTimeout < 2 ** 31)) {
    throw new TypeError(`handshakeTimeout must be a positive number of milliseconds, got ${handshakeTimeout}`)
  }
  // Checked here too, so a bad plugin-level policy fails at register, not at the first route.
  checkMessageSettings(settings, 'fastify-rfc6455')
  const clients = new Set<WebSocketConnection<FastifyRequest>>()
  const heartbeats = new Heartbeats()
  const routes = new WeakMap<Function, WsRoute>()
  // Upgrade requests between their head and their answer: they count
  // against the plugin-level maxConnections, and each has a handshake timer.
  const upgrading = new Set<Duplex>()
  let closing = false

  const registry: WebSocketRegistry = {
    clients,
    settings,
    broadcast (data, opts) {
      const frame = encodeMessageFrame(data, opts?.binary)
      const filter = opts?.filter
      let count = 0
      for (const conn of opts?.clients ?? clients) {
        if (filter !== undefined && !filter(conn)) continue
        // A slow receiver is dropped or skipped by its own buffer limit; the others are not slowed.
        if (conn[kInternal].enqueueFrame(frame)) count++
      }
      return count
    }
  }
  fastify.decorate('websocket', registry)
  fastify.decorate('injectWS', function injectWS (this: FastifyInstance, path = '/', opts?: InjectWSOptions) {
    return (async () => {
      await this.ready()
      return injectWebSocket(this.server, path, opts)
    })()
  })
  fastify.decorateRequest('ws', false)

  // Message schemas compile once per route, when the app is ready (after Fastify compiled its own).
  const compilers = new CompilerCache()
  const uncompiled: RouteMessages[] = []
  fastify.addHook('onReady', function compileMessageSchemas (done) {
    try {
      for (const messages of uncompiled.splice(0)) messages.compile(compilers)
    } catch (error) {
      done(error as Error)
      return
    }
    done()
  })

  // A request that came through `upgrade` but is answered as plain HTTP (a route
  // without wsHandler, or Upgrade naming another protocol) may carry a body, and
  // Node stopped parsing after its head: read the body from the socket here.
  fastify.addHook('preParsing', function readUpgradeRequestBody (request, reply, payload, done) {
    const raw = request.raw as UpgradeRequest
    const socket = raw[kBodySocket]
    if (socket === undefined) {
      done(null, payload)
      return
    }
    raw[kBodySocket] = undefined
    const body = request.ws ? null : upgradeRequestBody(raw.headers, raw[kHead] ?? EMPTY, socket, reply.raw)
    done(null, body ?? payload)
  })

  fastify.addHook('onRoute', function (this: FastifyInstance, routeOptions: RouteOptions & { websocket?: boolean | WebSocketRouteSettings, wsHandler?: WsHandler }) {
    const declared = routeOptions.websocket
    const wsHandler = routeOptions.wsHandler
    if (!declared && wsHandler === undefined) return
    if (routes.has(routeOptions.handler)) return // already wrapped (e.g. the HEAD twin of a GET route)
    const httpHandler = wsHandler !== undefined ? routeOptions.handler : undefined
    const routeSettings = resolveSettings(settings, typeof declared === 'object' ? declared : undefined)
    const route: WsRoute = {
      handler: (wsHandler ?? routeOptions.handler) as WsHandler,
      settings: routeSettings,
      messages: new RouteMessages(this, routeOptions, routeSettings),
      wsOnly: httpHandler === undefined,
      open: 0
    }
    if (typeof route.handler !== 'function') throw new TypeError(`WebSocket route ${routeOptions.url}: the handler must be a function`)
    uncompiled.push(route.messages)

    const wrapped = function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      const raw = request.raw as UpgradeRequest
      if (raw[kSocket] === undefined) {
        if (httpHandler !== undefined) return httpHandler.call(this, request, reply)
        return reply.code(426)
          .header('Upgrade', 'websocket')
          .header('Connection', 'Upgrade')
          .send(errorBody(426, 'this route only accepts WebSocket connections'))
      }
      return upgrade.call(this, route, request, reply)
    }
    routes.set(wrapped, route)
    routeOptions.handler = wrapped
    routeOptions.config = { ...routeOptions.config, [kRoute]: route } as typeof routeOptions.config
  })

  // Refuses a malformed handshake before the user's hooks run: they never see it.
  fastify.addHook('onRequest', function checkHandshake (request, reply, done) {
    const raw = request.raw as UpgradeRequest
    if (raw[kSocket] === undefined && raw.headers.upgrade === undefined) {
      done()
      return
    }
    const route = (request.routeOptions.config as { [kRoute]?: WsRoute } | undefined)?.[kRoute]
    if (route === undefined) {
      done()
      return
    }
    if (raw[kSocket] === undefined) {
      // Node hands over the socket only if Connection also says Upgrade; a route that
      // serves nothing but WebSocket tells such a half-handshake which rule it broke.
      if (!route.wsOnly || !headerHasToken(raw.headers.upgrade, 'websocket') || !refuseInvalidHandshake(raw, reply)) done()
      return
    }
    if (!route.wsOnly && !headerHasToken(raw.headers.upgrade, 'websocket')) {
      // Another protocol (h2c, say): the route's HTTP handler answers, ignoring Upgrade (RFC 9110 §7.8).
      raw[kSocket] = undefined
      done()
      return
    }
    if (refuseInvalidHandshake(raw, reply)) return
    // Refused before the user's hooks, so a full route costs no auth lookup.
    if (refuseAtCapacity(route, reply)) return
    request.ws = true
    done()
  })

  /** Answers 503 with Retry-After when the app or the route has its maxConnections open. */
  function refuseAtCapacity (route: WsRoute, reply: FastifyReply): boolean {
    let limit: number
    if (clients.size >= settings.maxConnections) limit = settings.maxConnections
    else if (route.open >= route.settings.maxConnections) limit = route.settings.maxConnections
    else return false
    reply.log.warn({ limit, open: clients.size, routeOpen: route.open }, 'websocket upgrade refused: maxConnections reached')
    publishLimit('maxConnections', undefined, undefined, reply.request.raw)
    reply.code(503).header('Retry-After', String(RETRY_AFTER_SECONDS)).header('Connection', 'close')
      .send(errorBody(503, `too many WebSocket connections (maxConnections ${limit}); retry later`))
    return true
  }

  function refuseInvalidHandshake (raw: UpgradeRequest, reply: FastifyReply): boolean {
    if (raw[kHandshake] !== undefined) return false
    const result = validateHandshake(raw)
    if (result.ok) {
      raw[kHandshake] = result
      return false
    }
    reply.log.info({ reason: result.reason, status: result.status }, 'websocket handshake refused')
    reply.code(result.status).headers(result.headers).send(errorBody(result.status, result.reason))
    return true
  }

  function upgrade (this: FastifyInstance, route: WsRoute, request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
    const raw = request.raw as UpgradeRequest
    // Routes from instances that missed the onRequest hook are still checked.
    if (refuseInvalidHandshake(raw, reply)) return reply
    if (closing) {
      // Its hooks were still running when app.close() began: the 1001 round has
      // passed, and an upgrade now would keep the server from closing.
      return reply.code(503).header('Connection', 'close').send(errorBody(503, 'the server is shutting down'))
    }
    // Checked again: other upgrades may have completed while this one's hooks ran.
    if (refuseAtCapacity(route, reply)) return reply
    route.messages.prepare(compilers, request, reply) // no-op once compiled
    request.ws = true
    const handshake = raw[kHandshake]!
    const socket = raw[kSocket]!
    const head = raw[kHead]
    const protocol = selectSubprotocol(handshake.protocols, route.settings.protocols)

    const extraHeaders: Record<string, string | number | readonly string[]> = {}
    const hookHeaders = reply.getHeaders()
    for (const name of Object.keys(hookHeaders)) {
      const value = hookHeaders[name]
      if (value !== undefined && !RESERVED_RESPONSE_HEADERS.has(name.toLowerCase())) extraHeaders[name] = value as string | number | readonly string[]
    }
    const response = buildUpgradeResponse({ accept: handshake.accept, protocol, headers: extraHeaders })

    reply.hijack()
    reply.raw.detachSocket(socket as any)
    raw[kSocket] = undefined
    raw[kHead] = undefined
    socket.removeListener('error', destroySocket)
    handshakeDone(socket)
    if (socket.destroyed || !socket.writable) return
    ;(socket as any).setTimeout?.(0)
    ;(socket as any).setNoDelay?.(true)
    socket.write(response)

    const s = route.settings
    const conn = new JsonWebSocketConnection<FastifyRequest>(socket, request, {
      role: 'server',
      maxMessageSize: s.maxMessageSize,
      maxMessagePieces: s.maxMessagePieces,
      minAveragePieceSize: s.minAveragePieceSize,
      closeTimeout: s.closeTimeout,
      highWaterMark: s.highWaterMark,
      autoPong: s.autoPong,
      maxBufferedAmount: s.maxBufferedAmount,
      onBufferFull: s.onBufferFull,
      protocol,
      logger: request.log
    }, route.messages)
    clients.add(conn)
    route.open++
    ;(conn as ServerConnection)[kConnRoute] = route
    const internal = conn[kInternal]
    internal.onTransportClosed(removeClient)
    if (channels.open.hasSubscribers) channels.open.publish({ connection: conn, request })
    if (s.heartbeatInterval > 0) heartbeats.add(internal, s.heartbeatInterval)

    // No closure in this function may capture the request: with retainRequest off,
    // the connection must not keep it alive once the handler is done with it.
    const fail = route.fail ??= failureHandler(this, s.errorHandler)
    conn[kSetFailureHandler](fail)
    let result: Promise<unknown> | undefined
    try {
      result = route.handler.call(this, conn, request) as Promise<unknown> | undefined
    } catch (error) {
      fail(error, conn)
    }
    const settles = result !== undefined && result !== null && typeof result.then === 'function'
    if (settles) {
      internal.handlerStarted()
      result!.then(settleHandler.bind(null, conn), (error: unknown) => {
        fail(error, conn)
        internal.handlerSettled()
      })
    } else {
      internal.handlerSettled()
    }
    if (!s.retainRequest) {
      if (settles) result!.then(releaseRequest.bind(null, conn), releaseRequest.bind(null, conn))
      else releaseRequest(conn)
    }
    if (head !== undefined) internal.receiveHead(head)
    return undefined
  }

  function removeClient (this: ServerConnection, code: number, reason: string): void {
    if (!clients.delete(this)) return
    this[kConnRoute]!.open--
    heartbeats.remove(this[kInternal])
    if (channels.close.hasSubscribers) channels.close.publish({ connection: this, code, reason, wasClean: this.wasClean })
  }

  /** Ends an upgrade request's socket with a bare response, before Fastify sees the request. */
  function refuseRaw (rawRequest: IncomingMessage, socket: Duplex, status: number, reason: string, extraHeaders = ''): void {
    if (channels.refused.hasSubscribers) channels.refused.publish({ request: rawRequest, statusCode: status, reason })
    // A client that never ends its side would otherwise keep the socket (and app.close()) waiting.
    socket.once('finish', destroySocket)
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n${extraHeaders}Content-Length: 0\r\n\r\n`)
  }

  function onUpgrade (rawRequest: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroySocket)
    if (closing) {
      refuseRaw(rawRequest, socket, 503, 'the server is shutting down')
      return
    }
    const websocket = headerHasToken(rawRequest.headers.upgrade, 'websocket')
    if (websocket && clients.size + upgrading.size >= settings.maxConnections) {
      // Refused before routing and hooks: a flood of upgrades past the limit costs no user code.
      fastify.log.warn({ limit: settings.maxConnections, open: clients.size, upgrading: upgrading.size }, 'websocket upgrade refused: maxConnections reached')
      publishLimit('maxConnections', undefined, undefined, rawRequest)
      refuseRaw(rawRequest, socket, 503, 'maxConnections reached', `Retry-After: ${RETRY_AFTER_SECONDS}\r\n`)
      return
    }
    upgrading.add(socket)
    const timer = setTimeout(onHandshakeTimeout, handshakeTimeout, socket, rawRequest)
    timer.unref()
    ;(socket as TimedSocket)[kHandshakeTimer] = timer
    socket.once('close', onUpgradingSocketClose)
    const raw = rawRequest as UpgradeRequest
    raw[kSocket] = socket
    raw[kHead] = head
    raw[kBodySocket] = socket
    // Run the request through Fastify's router and hooks with a response
    // bound to the socket, so every refusal is an ordinary HTTP response.
    const response = new ServerResponse(rawRequest)
    response.shouldKeepAlive = false
    response.assignSocket(socket as any)
    response.once('finish', () => {
      handshakeDone(socket)
      if (websocket && channels.refused.hasSubscribers) channels.refused.publish({ request: rawRequest, statusCode: response.statusCode, reason: response.statusMessage })
      response.detachSocket(socket as any)
      // Nothing more is read from a refused upgrade, and a client that never ends its
      // side would keep the socket (and app.close()) waiting: close once the reply is out.
      socket.once('finish', destroySocket)
      socket.end()
    })
    fastify.routing(rawRequest, response)
  }

  /** The upgrade request was answered (101 or a refusal), or its socket is gone. */
  function handshakeDone (socket: Duplex): void {
    if (!upgrading.delete(socket)) return
    const timed = socket as TimedSocket
    clearTimeout(timed[kHandshakeTimer])
    timed[kHandshakeTimer] = undefined
    socket.removeListener('close', onUpgradingSocketClose)
  }

  function onUpgradingSocketClose (this: Duplex): void {
    handshakeDone(this)
  }

  function onHandshakeTimeout (socket: Duplex, rawRequest: IncomingMessage): void {
    handshakeDone(socket)
    fastify.log.warn({ url: rawRequest.url, handshakeTimeout }, 'websocket upgrade request not answered within handshakeTimeout; closing its socket')
    publishLimit('handshakeTimeout', undefined, undefined, rawRequest)
    if (channels.refused.hasSubscribers) channels.refused.publish({ request: rawRequest, statusCode: 0, reason: 'handshakeTimeout' })
    socket.destroy()
  }

  server[kRegistered] = true
  server.on('upgrade', onUpgrade)
  // Where Node allows it, only WebSocket handshakes come to onUpgrade; the rest are parsed by Node.
  const removeUpgradeFilter = installUpgradeFilter(server, onUpgrade)

  fastify.addHook('preClose', function goingAway (done) {
    closing = true
    if (clients.size === 0) {
      done()
      return
    }
    let left = clients.size
    const onClose = (): void => {
      if (--left === 0) done()
    }
    for (const conn of clients) {
      conn[kInternal].onTransportClosed(onClose)
      conn.close(CloseCode.GoingAway, 'server shutting down')
    }
  })

  fastify.addHook('onClose', function detach (_instance, done) {
    for (const socket of upgrading) handshakeDone(socket)
    server.removeListener('upgrade', onUpgrade)
    removeUpgradeFilter()
    server[kRegistered] = undefined
    heartbeats.stop()
    done()
  })
}

/** What a throwing or rejecting handler does: the route's errorHandler, or a log entry and close 1011. */
type FailureHandler = (error: unknown, conn: JsonWebSocketConnection<FastifyRequest>) => void

function failureHandler (instance: FastifyInstance, errorHandler: WebSocketRouteSettings['errorHandler']): FailureHandler {
  return (error, conn) => {
    if (errorHandler !== undefined) {
      try {
        errorHandler.call(instance, error, conn, conn.request)
        return
      } catch (handlerError) {
        error = handlerError
      }
    }
    ;(conn.log ?? instance.log).error({ err: error }, 'websocket handler failed')
    if (conn.readyState === WebSocketConnection.OPEN) conn.close(CloseCode.InternalError, 'internal error')
  }
}

function settleHandler (conn: WebSocketConnection<FastifyRequest>): void {
  conn[kInternal].handlerSettled()
}

function releaseRequest (conn: WebSocketConnection<FastifyRequest>): void {
  conn.request = undefined as unknown as FastifyRequest
}

const EMPTY = Buffer.alloc(0)

/**
 * A socket listener that destroys it: on `finish` of a refusal (the client may
 * never end its side), and on `error` before the upgrade completes (a client
 * that vanishes then concerns nobody else).
 */
function destroySocket (this: Duplex): void {
  this.destroy()
}

export default fp(websocketPlugin, {
  fastify: '5.x',
  name: 'fastify-rfc6455'
})
