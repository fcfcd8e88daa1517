import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { BufferFullPolicy } from '../connection/connection.js'
import { DEFAULTS } from '../defaults.js'
import { WebSocketError } from '../errors.js'
import type { BinaryMessagePolicy, InvalidMessagePolicy, JsonMessageSettings, JsonWebSocketConnection } from '../messages/index.js'
import type { SubprotocolSelector } from '../protocol/handshake.js'
import { pieceLimits } from '../protocol/piece-limit.js'
import { resolveCompression } from '../compression/settings.js'
import type { CompressionOptions, ResolvedCompression } from '../compression/types.js'
import type { TopicAdapter } from '../topics/adapter.js'
import type { AsyncApiPluginOptions } from '../asyncapi/types.js'

/** Settings that apply to every WebSocket route, and that a route may override. */
export interface WebSocketRouteSettings extends JsonMessageSettings {
  /** Largest incoming message in bytes (sum of fragments). Default 1 MiB; past it, close 1009. */
  maxMessageSize?: number
  /**
   * permessage-deflate (RFC 7692): `false` (default), `true`, or preferences.
   * Accepted when the client offers it (browsers always do). README, "Compression".
   */
  compression?: boolean | CompressionOptions
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
   * handler returns (or its promise settles): about 0.9 KiB less per
   * idle connection (the request is kept without its IncomingMessage, see
   * upgraded-request.ts). Close over what you need from `req` in the handler.
   */
  retainRequest?: boolean
  /**
   * Called when the handler throws or rejects, a listener throws, or the
   * connection emits `error` (a peer's protocol violation, a socket error).
   * Default: for a failing handler or listener, log the error through
   * `request.log` and close the connection with 1011; connection errors
   * are logged at debug level and end in `close` in any case.
   */
  errorHandler?: WebSocketErrorHandler
}

/**
 * A route's `errorHandler`, with the route's instance as `this`. `error` is
 * always an `Error` (a thrown non-Error arrives wrapped, as its `cause`).
 * With `retainRequest: false`, `request` and `reply` are `undefined` for
 * errors after the handler has returned (or its promise settled): they are
 * not kept for the connection's life.
 */
export type WebSocketErrorHandler = (
  this: FastifyInstance,
  error: Error,
  conn: JsonWebSocketConnection<FastifyRequest>,
  request: FastifyRequest,
  reply: FastifyReply
) => void

export interface WebSocketPluginOptions extends WebSocketRouteSettings {
  /**
   * Milliseconds from an upgrade request's head to its answer (hooks,
   * validation, auth): past it the socket is destroyed. Default 10 s.
   */
  handshakeTimeout?: number
  /**
   * Replaces the shutdown round (every open connection closed with 1001,
   * then waited for) with your own, as a `preClose` hook: `preClose(done)`
   * or `async preClose()`, with the Fastify instance as `this`. Close the
   * connections (`this.websocket.clients`) the way you want; upgrades are
   * refused from the moment it starts.
   */
  preClose?: WebSocketPreClose
  /**
   * Carries topics across processes: a publish on any instance reaches the
   * subscribers on every instance (README, "Topics and scaling out"), e.g.
   * `redisAdapter({ client })` from `fastify-rfc6455/redis`. Default: none,
   * topics live in this process.
   */
  adapter?: TopicAdapter
  /**
   * The AsyncAPI document of the WebSocket routes (README, "AsyncAPI"):
   * defaults for `app.websocket.asyncapi()` (`info`, `servers`, `id`), and
   * with `routePrefix`, where the app serves it (an HTML page, `/json`, `/yaml`).
   */
  asyncapi?: AsyncApiPluginOptions
}

/**
 * Fastify's `preClose` hook, either form. One signature rather than
 * Fastify's union of two, so that `async preClose () { this… }` gets the
 * instance as `this` (a union gives a function without parameters no
 * contextual type).
 */
export type WebSocketPreClose = (this: FastifyInstance, done: HookHandlerDoneFunction) => void | Promise<unknown>

/** A route's settings: the plugin's, then the route's own, every one filled in and checked. */
export interface ResolvedSettings {
  maxMessageSize: number
  compression: ResolvedCompression | false
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

// The defaults with their reasons are in lib/defaults.ts (the JSON policies' in
// the README's Typed JSON messages section); this only lists which settings exist.
export const ROUTE_DEFAULTS: ResolvedSettings = {
  maxMessageSize: DEFAULTS.maxMessageSize,
  compression: false,
  maxMessagePieces: DEFAULTS.maxMessagePieces,
  minAveragePieceSize: DEFAULTS.minAveragePieceSize,
  closeTimeout: DEFAULTS.closeTimeout,
  protocols: undefined,
  highWaterMark: DEFAULTS.highWaterMark,
  maxBufferedAmount: DEFAULTS.maxBufferedAmount,
  onBufferFull: DEFAULTS.onBufferFull,
  maxConnections: DEFAULTS.maxConnections,
  autoPong: DEFAULTS.autoPong,
  heartbeatInterval: DEFAULTS.heartbeatInterval,
  retainRequest: DEFAULTS.retainRequest,
  errorHandler: undefined,
  onInvalidMessage: 'reply',
  onBinaryMessage: 'close'
}

/** An option that does not exist here (or belongs to ws / @fastify/websocket): see options.ts. */
export const UNKNOWN_OPTION = 'WS_ERR_UNKNOWN_OPTION'
/** An option with a value it cannot take. */
export const INVALID_OPTION = 'WS_ERR_INVALID_OPTION'
/** A route that can never serve a WebSocket (a method other than GET, a handler that is not a function). */
export const INVALID_ROUTE = 'WS_ERR_INVALID_ROUTE'

/** The error for a bad option value, thrown at registration. */
export function invalidOption (message: string): WebSocketError {
  return new WebSocketError(INVALID_OPTION, message)
}

/**
 * Merges `overrides` (plugin options over the defaults, or a route's
 * `websocket: { ... }` over the plugin's) and checks the result, so a bad
 * value fails at registration rather than at the first connection. Unknown
 * keys are options.ts's concern, checked before this.
 */
export function resolveSettings (base: ResolvedSettings, overrides: WebSocketRouteSettings | undefined, where: string): ResolvedSettings {
  const invalid = (message: string): WebSocketError => invalidOption(`${where}: ${message}`)
  const out = { ...base }
  if (overrides === undefined) return out
  for (const key of Object.keys(ROUTE_DEFAULTS) as Array<keyof ResolvedSettings>) {
    if (overrides[key] !== undefined) (out as any)[key] = overrides[key]
  }
  if (overrides.compression !== undefined) {
    try {
      out.compression = resolveCompression(overrides.compression, base.compression)
    } catch (error) {
      throw invalid((error as Error).message)
    }
  }
  if (!Number.isSafeInteger(out.maxMessageSize) || out.maxMessageSize < 0) {
    throw invalid(`maxMessageSize must be a non-negative integer, got ${out.maxMessageSize}`)
  }
  try {
    pieceLimits(out)
  } catch (error) {
    throw invalid((error as Error).message) // a RangeError naming the bad one
  }
  if (!(out.closeTimeout > 0)) throw invalid(`closeTimeout must be a positive number of milliseconds, got ${out.closeTimeout}`)
  if (!(out.highWaterMark >= 0)) throw invalid(`highWaterMark must be a number of bytes, got ${String(out.highWaterMark)}`)
  if (!(out.maxBufferedAmount > 0)) throw invalid(`maxBufferedAmount must be a positive number of bytes, got ${out.maxBufferedAmount}`)
  if (out.onBufferFull !== 'close' && out.onBufferFull !== 'refuse') {
    throw invalid(`onBufferFull must be 'close' or 'refuse', got ${String(out.onBufferFull)}`)
  }
  if (!(out.maxConnections === Infinity || (Number.isSafeInteger(out.maxConnections) && out.maxConnections > 0))) {
    throw invalid(`maxConnections must be a positive integer or Infinity, got ${out.maxConnections}`)
  }
  if (!(out.heartbeatInterval >= 0 && out.heartbeatInterval < 2 ** 31)) {
    throw invalid(`heartbeatInterval must be 0 (off) or a number of milliseconds, got ${out.heartbeatInterval}`)
  }
  for (const key of ['autoPong', 'retainRequest'] as const) {
    if (typeof out[key] !== 'boolean') throw invalid(`${key} must be true or false, got ${String(out[key])}`)
  }
  // @fastify/websocket's message, word for word.
  if (out.errorHandler !== undefined && typeof out.errorHandler !== 'function') throw invalidOption('invalid errorHandler function')
  const protocols = out.protocols
  if (protocols !== undefined && typeof protocols !== 'function' &&
      !(Array.isArray(protocols) && protocols.every((p) => typeof p === 'string'))) {
    throw invalid(`protocols must be an array of subprotocol names or a function (offered) => chosen, got ${String(protocols)}`)
  }
  return out
}

/** The plugin-level-only `handshakeTimeout`, checked. */
export function resolveHandshakeTimeout (options: WebSocketPluginOptions): number {
  const timeout = options.handshakeTimeout ?? DEFAULTS.handshakeTimeout
  if (!(timeout > 0 && timeout < 2 ** 31)) {
    throw invalidOption(`fastify-rfc6455: handshakeTimeout must be a positive number of milliseconds, got ${timeout}`)
  }
  return timeout
}

const ADAPTER_METHODS = ['attach', 'subscribe', 'unsubscribe', 'publish', 'close'] as const

/** The plugin-level-only `adapter`, checked: an object with the TopicAdapter methods, or undefined. */
export function resolveAdapter (options: WebSocketPluginOptions): TopicAdapter | null {
  const adapter = options.adapter
  if (adapter === undefined) return null
  const missing = adapter === null || typeof adapter !== 'object'
    ? ADAPTER_METHODS
    : ADAPTER_METHODS.filter((name) => typeof adapter[name] !== 'function')
  if (missing.length > 0) {
    throw invalidOption(`fastify-rfc6455: adapter must be a topic adapter (e.g. redisAdapter() from 'fastify-rfc6455/redis'), missing ${missing.join(', ')}`)
  }
  if (adapter.ready !== undefined && typeof adapter.ready !== 'function') throw invalidOption('fastify-rfc6455: adapter.ready must be a function')
  return adapter
}

/** The plugin-level-only `preClose`, checked (@fastify/websocket's message, word for word). */
export function resolvePreClose (options: WebSocketPluginOptions): WebSocketPluginOptions['preClose'] {
  const preClose = options.preClose
  if (preClose !== undefined && typeof preClose !== 'function') throw invalidOption('invalid preClose function')
  return preClose
}
