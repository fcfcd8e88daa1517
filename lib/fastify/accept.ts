import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { WebSocketConnection } from '../connection/connection.js'
import { kInternal } from '../connection/internal.js'
import { CompilerCache, JsonWebSocketConnection, kSetFailureHandler } from '../messages/index.js'
import { CloseCode } from '../protocol/close-codes.js'
import { extendedConnectResponseHeaders } from '../protocol/extended-connect.js'
import { buildUpgradeResponse, selectSubprotocol } from '../protocol/handshake.js'
import { formatExtensions } from '../protocol/header-lists.js'
import { negotiateDeflate } from '../protocol/permessage-deflate.js'
import { createDeflateExtension } from '../compression/deflate.js'
import type { ResolvedCompression } from '../compression/types.js'
import type { NegotiatedDeflate } from './compressed-broadcast.js'
import type { Registry } from './registry.js'
import { closeConnection, refuseAtCapacity, refuseInvalidHandshake, type Accept, type FailureHandler, type WsRoute } from './route.js'
import type { WebSocketErrorHandler } from './settings.js'
import type { UpgradeListener } from './upgrade.js'
import { destroySocket, errorBody, kHandshake, kHead, kHttp2, kSocket, UPGRADE_KEYS, type UpgradeRequest } from './upgrade-request.js'
import { compactUpgradeRequest } from './upgraded-request.js'

// Headers of the 101 response that hooks may not override.
const RESERVED_RESPONSE_HEADERS = new Set([
  'upgrade', 'connection', 'sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions',
  'content-length', 'content-type', 'transfer-encoding', 'keep-alive'
])

/**
 * The end of an upgrade request that passed every hook: the last checks,
 * the 101 (with the headers hooks set), the connection, the route's handler.
 */
export function createAccept (registry: Registry, upgrades: UpgradeListener, compilers: CompilerCache): Accept {
  return function accept (this: FastifyInstance, route: WsRoute, request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined {
    const raw = request.raw as UpgradeRequest
    // Routes from instances that missed the onRequest hook are still checked.
    if (refuseInvalidHandshake(raw, reply)) return reply
    if (registry.closing) {
      // Its hooks were still running when app.close() began: the 1001 round has
      // passed, and an upgrade now would keep the server from closing.
      return closeConnection(reply.code(503)).send(errorBody(503, 'the server is shutting down'))
    }
    // Checked again: other upgrades may have completed while this one's hooks ran.
    if (refuseAtCapacity(registry, route, reply)) return reply
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
    // permessage-deflate, when the route has it on and the client offered terms it can accept.
    const compression = route.settings.compression
    const agreed = compression === false ? null : negotiateDeflate(handshake.extensions, compression)
    const extensions = agreed === null ? undefined : [agreed.response]

    reply.hijack()
    raw[kSocket] = undefined
    raw[kHead] = undefined
    upgrades.handshakeDone(socket)
    if (raw[kHttp2] === true) {
      // RFC 8441: a 200 on the stream, which then carries the frames.
      const stream = socket as ServerHttp2Stream
      if (stream.destroyed || stream.closed || stream.headersSent) return
      stream.respond(extendedConnectResponseHeaders(protocol, extensions, extraHeaders) as OutgoingHttpHeaders)
    } else {
      reply.raw.detachSocket(socket as any)
      socket.removeListener('error', destroySocket)
      if (socket.destroyed || !socket.writable) return
      ;(socket as any).setTimeout?.(0)
      ;(socket as any).setNoDelay?.(true)
      socket.write(buildUpgradeResponse({ accept: handshake.accept, protocol, extensions, headers: extraHeaders }))
      compactUpgradeRequest(request, UPGRADE_KEYS)
    }

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
      extension: agreed === null ? null : createDeflateExtension(agreed.params, 'server', compression as ResolvedCompression),
      extensions: extensions === undefined ? '' : formatExtensions(extensions),
      logger: request.log
    }, route.messages)
    const deflate: NegotiatedDeflate | undefined = agreed === null ? undefined : { params: agreed.params, settings: compression as ResolvedCompression }
    registry.add(conn, route, s.heartbeatInterval, request, deflate)
    if (s.errorHandler !== undefined) replies.set(conn, reply)
    runHandler.call(this, route, conn, request, head)
    return undefined
  }
}

/**
 * Calls the route's handler. Messages and the close are held while an async
 * handler runs without listening (the connection's inbox); once it settled,
 * unread messages are dropped. No closure here may capture the request: with
 * retainRequest off, the connection must not keep it alive once the handler is done.
 */
function runHandler (this: FastifyInstance, route: WsRoute, conn: JsonWebSocketConnection<FastifyRequest>, request: FastifyRequest, head: Buffer | undefined): void {
  const internal = conn[kInternal]
  const errorHandler = route.settings.errorHandler
  const fail = route.fail ??= failureHandler(this, errorHandler)
  conn[kSetFailureHandler](fail)
  if (errorHandler !== undefined) conn.on('error', route.onError ??= connectionErrorListener(this, errorHandler))
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
  if (!route.settings.retainRequest) {
    if (settles) result!.then(releaseRequest.bind(null, conn), releaseRequest.bind(null, conn))
    else releaseRequest(conn)
  }
  if (head !== undefined) internal.receiveHead(head)
}

// The upgrade's reply, the errorHandler's fourth argument: kept only for
// connections of routes with an errorHandler, and with retainRequest off only
// until the handler settled (the reply holds the request).
const replies = new WeakMap<WebSocketConnection<FastifyRequest>, FastifyReply>()

function failureHandler (instance: FastifyInstance, errorHandler: WebSocketErrorHandler | undefined): FailureHandler {
  return (error, conn) => {
    if (errorHandler !== undefined) callErrorHandler(instance, errorHandler, error, conn, handlerFailed)
    else handlerFailed(instance, conn, error)
  }
}

/** A handler or listener failed, and no errorHandler took care of it: log, close 1011. */
function handlerFailed (instance: FastifyInstance, conn: JsonWebSocketConnection<FastifyRequest>, error: unknown): void {
  ;(conn.log ?? instance.log).error({ err: error }, 'websocket handler failed')
  if (conn.readyState === WebSocketConnection.OPEN) conn.close(CloseCode.InternalError, 'internal error')
}

/**
 * The `error` listener of a route with an errorHandler, shared by its
 * connections (the connection is `this`): a peer's protocol violation, a
 * socket error. The connection is failing already and closes with its own
 * code; the errorHandler is told, and if it fails, that is logged.
 */
function connectionErrorListener (instance: FastifyInstance, errorHandler: WebSocketErrorHandler): NonNullable<WsRoute['onError']> {
  return function onConnectionError (error) {
    callErrorHandler(instance, errorHandler, error, this, errorHandlerFailed)
  }
}

function errorHandlerFailed (instance: FastifyInstance, conn: JsonWebSocketConnection<FastifyRequest>, error: unknown): void {
  ;(conn.log ?? instance.log).error({ err: error }, 'websocket errorHandler failed')
}

/**
 * Calls the errorHandler with `(error, conn, request, reply)`. If it throws,
 * or returns a promise that rejects, `failed` gets what it threw.
 */
function callErrorHandler (
  instance: FastifyInstance,
  errorHandler: WebSocketErrorHandler,
  error: unknown,
  conn: JsonWebSocketConnection<FastifyRequest>,
  failed: (instance: FastifyInstance, conn: JsonWebSocketConnection<FastifyRequest>, error: unknown) => void
): void {
  try {
    const result: unknown = errorHandler.call(instance, asError(error), conn, conn.request, replies.get(conn)!)
    if (result instanceof Promise) result.then(undefined, (rejection: unknown) => { failed(instance, conn, rejection) })
  } catch (thrown) {
    failed(instance, conn, thrown)
  }
}

/** The errorHandler is promised an Error: anything else thrown arrives as the cause of one. */
function asError (value: unknown): Error {
  return value instanceof Error ? value : new Error(`non-error thrown: ${String(value)}`, { cause: value })
}

function settleHandler (conn: WebSocketConnection<FastifyRequest>): void {
  conn[kInternal].handlerSettled()
}

function releaseRequest (conn: WebSocketConnection<FastifyRequest>): void {
  conn.request = undefined as unknown as FastifyRequest
  replies.delete(conn)
}
