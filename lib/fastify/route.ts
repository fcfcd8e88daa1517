import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, RouteOptions, onRequestHookHandler } from 'fastify'
import type { JsonWebSocketConnection } from '../messages/index.js'
import { RouteMessages } from '../messages/index.js'
import { publishLimit } from '../diagnostics.js'
import { WebSocketError } from '../errors.js'
import { validateHandshake } from '../protocol/handshake.js'
import { headerHasToken } from '../protocol/header-lists.js'
import { checkRouteOptions } from './options.js'
import type { CountedRoute, Registry } from './registry.js'
import { INVALID_ROUTE, invalidOption, resolveSettings, type ResolvedSettings, type WebSocketRouteSettings } from './settings.js'
import { RETRY_AFTER_SECONDS } from './upgrade.js'
import { errorBody, kHandshake, kHttp2, kRefusal, kSocket, type UpgradeRequest } from './upgrade-request.js'

export type WsHandler = (this: FastifyInstance, conn: JsonWebSocketConnection<FastifyRequest>, request: FastifyRequest) => unknown

/** What a throwing or rejecting handler does: the route's errorHandler, or a log entry and close 1011. */
export type FailureHandler = (error: unknown, conn: JsonWebSocketConnection<FastifyRequest>) => void

/** A WebSocket route as the plugin keeps it. */
export interface WsRoute extends CountedRoute {
  handler: WsHandler
  settings: ResolvedSettings
  /** Compiled `schema.message` / `schema.outgoing` and the JSON policies. */
  messages: RouteMessages
  /** No `handler` for plain HTTP: the route only serves WebSocket connections. */
  wsOnly: boolean
  /** What a failing handler does; made on the route's first connection (it needs the route's instance). */
  fail?: FailureHandler
  /** With an errorHandler: the `error` listener of the route's connections, made with `fail`. */
  onError?: (this: JsonWebSocketConnection<FastifyRequest>, error: Error) => void
}

/** Accepts an upgrade that passed every hook: the 101, the connection, the handler (accept.ts). */
export type Accept = (this: FastifyInstance, route: WsRoute, request: FastifyRequest, reply: FastifyReply) => FastifyReply | undefined

// Fastify binds route handlers, so a request cannot be matched to its WebSocket
// route by handler identity; the route's config (copied per route) carries it instead.
const kRoute = Symbol('fastify-rfc6455.route')

type WsRouteOptions = RouteOptions & { websocket?: boolean | WebSocketRouteSettings, wsHandler?: WsHandler }

/**
 * WebSocket routes: the `onRoute` hook that turns `{ websocket }` and
 * `wsHandler` routes into one handler serving both plain HTTP and upgrades,
 * and the root `onRequest` hook that refuses bad handshakes and full routes
 * before the user's hooks see them.
 */
export class Routes {
  private readonly registry: Registry
  private readonly accept: Accept
  private readonly wrapped = new WeakSet<Function>()
  /** Routes whose message schemas compile when the app is ready. */
  readonly uncompiled: RouteMessages[] = []

  constructor (registry: Registry, accept: Accept) {
    this.registry = registry
    this.accept = accept
  }

  /** The `onRoute` hook (called with the route's instance as `this`). */
  onRoute (instance: FastifyInstance, routeOptions: WsRouteOptions): void {
    const declared = routeOptions.websocket
    const wsHandler = routeOptions.wsHandler
    if (!declared && wsHandler === undefined) return
    if (this.wrapped.has(routeOptions.handler)) return // already wrapped (e.g. the HEAD twin of a GET route)
    checkRouteShape(routeOptions)
    const httpHandler = wsHandler !== undefined ? routeOptions.handler : undefined
    const where = `WebSocket route ${String(routeOptions.method)} ${routeOptions.url}`
    const settings = resolveSettings(this.registry.settings, routeSettings(declared, where), where)
    // As declared, before hideFromDocs: a `hide` of the app's own hides the route from AsyncAPI too.
    this.registry.documented.push({
      instance,
      method: routeOptions.method,
      url: routeOptions.url,
      schema: routeOptions.schema as Record<string, unknown> | undefined,
      protocols: settings.protocols
    })
    if (httpHandler === undefined) hideFromDocs(routeOptions)
    const route: WsRoute = {
      handler: (wsHandler ?? routeOptions.handler) as WsHandler,
      settings,
      messages: new RouteMessages(instance, routeOptions, settings),
      wsOnly: httpHandler === undefined,
      open: 0
    }
    this.uncompiled.push(route.messages)

    const accept = this.accept
    const handler = function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      const raw = request.raw as UpgradeRequest
      if (raw[kSocket] === undefined) {
        if (httpHandler !== undefined) return httpHandler.call(this, request, reply)
        if (raw.httpVersionMajor === 2) {
          // HTTP/2 forbids Upgrade, which a 426 must carry: a WebSocket comes as an extended CONNECT there.
          return reply.code(400).send(errorBody(400, 'this route only accepts WebSocket connections (over HTTP/2: an extended CONNECT, RFC 8441)'))
        }
        return reply.code(426)
          .header('Upgrade', 'websocket')
          .header('Connection', 'Upgrade')
          .send(errorBody(426, 'this route only accepts WebSocket connections'))
      }
      return accept.call(this, route, request, reply)
    }
    this.wrapped.add(handler)
    routeOptions.handler = handler
    routeOptions.config = { ...routeOptions.config, [kRoute]: route } as typeof routeOptions.config
  }

  /** The root `onRequest` hook: a malformed handshake is refused before the user's hooks run. */
  readonly checkHandshake: onRequestHookHandler = (request, reply, done) => {
    const raw = request.raw as UpgradeRequest
    if (raw[kSocket] === undefined && raw.headers.upgrade === undefined) {
      done()
      return
    }
    const route = (request.routeOptions.config as { [kRoute]?: WsRoute } | undefined)?.[kRoute]
    if (route === undefined) {
      // Over HTTP/1.1 a route without a WebSocket handler answers as HTTP, which the
      // client takes as a refusal; over HTTP/2 its 200 would open the tunnel. A path
      // with no route at all is left to the 404 handler.
      if (raw[kHttp2] === true && !request.is404) {
        reply.code(404).send(errorBody(404, `no WebSocket route at ${request.url}`))
        return
      }
      done()
      return
    }
    if (raw[kSocket] === undefined) {
      // Node hands over the socket only if Connection also says Upgrade; a route that
      // serves nothing but WebSocket tells such a half-handshake which rule it broke.
      if (!route.wsOnly || !headerHasToken(raw.headers.upgrade, 'websocket') || !refuseInvalidHandshake(raw, reply)) done()
      return
    }
    if (!route.wsOnly && raw[kHttp2] !== true && !headerHasToken(raw.headers.upgrade, 'websocket')) {
      // Another protocol (h2c, say): the route's HTTP handler answers, ignoring Upgrade (RFC 9110 §7.8).
      raw[kSocket] = undefined
      done()
      return
    }
    if (refuseInvalidHandshake(raw, reply)) return
    // Refused before the user's hooks, so a full route costs no auth lookup.
    if (refuseAtCapacity(this.registry, route, reply)) return
    request.ws = true
    done()
  }
}

/**
 * A WebSocket route must be reachable as one: upgrades are GET requests (a
 * HEAD route, such as the twin Fastify adds to a GET route, is let be), and
 * its WebSocket handler must be a function. The messages are
 * @fastify/websocket's, word for word, for apps and tests that match them.
 */
function checkRouteShape (routeOptions: WsRouteOptions): void {
  const methods: unknown[] = Array.isArray(routeOptions.method) ? routeOptions.method : [routeOptions.method]
  if (methods.some((method) => method !== 'GET' && method !== 'HEAD')) {
    throw new WebSocketError(INVALID_ROUTE, 'websocket handler can only be declared in GET method')
  }
  if (typeof (routeOptions.wsHandler ?? routeOptions.handler) !== 'function') {
    throw new WebSocketError(INVALID_ROUTE, 'invalid wsHandler function')
  }
}

/**
 * Marks a WebSocket-only route `schema.hide`, as @fastify/websocket does:
 * @fastify/swagger leaves it out (it has no HTTP API to document), and hooks
 * that read `routeOptions.schema` find one. A copy, since the app's schema
 * object may be shared with HTTP routes; an explicit `hide` is kept.
 */
function hideFromDocs (routeOptions: RouteOptions): void {
  const schema = routeOptions.schema as (FastifySchema & { hide?: boolean }) | undefined
  if (schema?.hide !== undefined) return
  routeOptions.schema = { ...schema, hide: true } as FastifySchema
}

/** A route's `websocket: { … }`, its keys checked; undefined for `true` (or with only `wsHandler`). */
function routeSettings (declared: unknown, where: string): WebSocketRouteSettings | undefined {
  if (declared === undefined || typeof declared === 'boolean') return undefined
  if (declared === null || typeof declared !== 'object' || Array.isArray(declared)) {
    throw invalidOption(`${where}: websocket must be true, false or an object of settings, got ${String(declared)}`)
  }
  checkRouteOptions(declared, where)
  return declared
}

/** Validates the handshake once per request; answers 400/405/426 and returns true if it is invalid. */
export function refuseInvalidHandshake (raw: UpgradeRequest, reply: FastifyReply): boolean {
  if (raw[kHandshake] !== undefined) return false
  // An HTTP/2 extended CONNECT was checked before routing (http2.ts).
  const result = raw[kRefusal] ?? validateHandshake(raw)
  if (result.ok) {
    raw[kHandshake] = result
    return false
  }
  reply.log.info({ reason: result.reason, status: result.status }, 'websocket handshake refused')
  reply.code(result.status).headers(result.headers).send(errorBody(result.status, result.reason))
  return true
}

/** Answers 503 with Retry-After when the app or the route has its maxConnections open. */
export function refuseAtCapacity (registry: Registry, route: WsRoute, reply: FastifyReply): boolean {
  const limit = registry.limitReached(route)
  if (limit === 0) return false
  reply.log.warn({ limit, open: registry.clients.size, routeOpen: route.open }, 'websocket upgrade refused: maxConnections reached')
  publishLimit('maxConnections', undefined, undefined, reply.request.raw)
  closeConnection(reply.code(503).header('Retry-After', String(RETRY_AFTER_SECONDS)))
    .send(errorBody(503, `too many WebSocket connections (maxConnections ${limit}); retry later`))
  return true
}

/**
 * `Connection: close` on a refusal, so an HTTP/1.1 client does not reuse a
 * socket the server is about to end. HTTP/2 forbids the header (a refused
 * stream is closed on its own, http2.ts) and Node throws if it is set.
 */
export function closeConnection (reply: FastifyReply): FastifyReply {
  return reply.request.raw.httpVersionMajor === 2 ? reply : reply.header('Connection', 'close')
}
