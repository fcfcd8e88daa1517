import type { FastifyRequest } from 'fastify'
import { WebSocketConnection, type WebSocketData } from '../connection/connection.js'
import { Heartbeats } from '../connection/heartbeat.js'
import { kInternal } from '../connection/internal.js'
import { channels } from '../diagnostics.js'
import { CloseCode } from '../protocol/close-codes.js'
import { encodeMessageFrame } from '../protocol/frame-writer.js'
import { CompressedBroadcast, type NegotiatedDeflate } from './compressed-broadcast.js'
import type { ResolvedSettings } from './settings.js'

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

/** What the registry counts per route: its open connections, for its maxConnections. */
export interface CountedRoute {
  open: number
}

// The route a server connection belongs to, for its route's connection count;
// and what it negotiated of permessage-deflate, for broadcasts.
const kConnRoute = Symbol('fastify-rfc6455.connRoute')
const kDeflate = Symbol('fastify-rfc6455.deflate')
type ServerConnection = WebSocketConnection<FastifyRequest> & { [kConnRoute]?: CountedRoute, [kDeflate]?: NegotiatedDeflate }

/**
 * The open connections of one app: `app.websocket`, the per-route counts,
 * heartbeats, and the 1001 round on shutdown.
 */
export class Registry implements WebSocketRegistry {
  readonly clients = new Set<WebSocketConnection<FastifyRequest>>()
  readonly settings: ResolvedSettings
  /** Set once app.close() began: upgrades are refused from then on. */
  closing = false
  private readonly heartbeats = new Heartbeats()
  // One listener for every connection of this app (no closure per connection).
  private readonly onTransportClosed: (this: ServerConnection, code: number, reason: string) => void

  constructor (settings: ResolvedSettings) {
    this.settings = settings
    this.broadcast = this.broadcast.bind(this)
    const registry = this
    this.onTransportClosed = function (code, reason) { registry.removeClient(this, code, reason) }
  }

  broadcast (data: WebSocketData, options?: BroadcastOptions): number {
    const binary = options?.binary ?? typeof data !== 'string'
    const frame = encodeMessageFrame(data, binary)
    const filter = options?.filter
    let compressed: CompressedBroadcast | undefined
    let count = 0
    for (const conn of options?.clients ?? this.clients) {
      if (filter !== undefined && !filter(conn)) continue
      const internal = conn[kInternal]
      const deflate = (conn as ServerConnection)[kDeflate]
      let own = frame
      if (deflate !== undefined) {
        compressed ??= new CompressedBroadcast(data, binary)
        const shared = compressed.frameFor(deflate)
        if (shared === undefined) {
          // This receiver's peer keeps our context: compress through it, in order.
          if (internal.canSend && internal.admit(undefined, false)) {
            internal.core.send(data, binary)
            count++
          }
          continue
        }
        if (shared !== null) own = shared
      }
      // A slow receiver is dropped or skipped by its own buffer limit; the others are not slowed.
      if (internal.enqueueFrame(own)) count++
    }
    return count
  }

  /** Whether the app, or `route`, has its maxConnections open; the limit reached, or 0. */
  limitReached (route: CountedRoute & { settings: ResolvedSettings }, upgrading = 0): number {
    if (this.clients.size + upgrading >= this.settings.maxConnections) return this.settings.maxConnections
    if (route.open >= route.settings.maxConnections) return route.settings.maxConnections
    return 0
  }

  /** Counts a newly accepted connection until its transport closes. */
  add (conn: WebSocketConnection<FastifyRequest>, route: CountedRoute, heartbeatInterval: number, request: FastifyRequest, deflate?: NegotiatedDeflate): void {
    this.clients.add(conn)
    route.open++
    ;(conn as ServerConnection)[kConnRoute] = route
    if (deflate !== undefined) (conn as ServerConnection)[kDeflate] = deflate
    const internal = conn[kInternal]
    internal.onTransportClosed(this.onTransportClosed)
    if (channels.open.hasSubscribers) channels.open.publish({ connection: conn, request })
    if (heartbeatInterval > 0) this.heartbeats.add(internal, heartbeatInterval)
  }

  private removeClient (conn: ServerConnection, code: number, reason: string): void {
    if (!this.clients.delete(conn)) return
    conn[kConnRoute]!.open--
    this.heartbeats.remove(conn[kInternal])
    if (channels.close.hasSubscribers) channels.close.publish({ connection: conn, code, reason, wasClean: conn.wasClean })
  }

  /** Sends 1001 to every open connection; `done` once all their transports closed. */
  goAway (done: () => void): void {
    this.closing = true
    if (this.clients.size === 0) {
      done()
      return
    }
    let left = this.clients.size
    const onClose = (): void => {
      if (--left === 0) done()
    }
    for (const conn of this.clients) {
      conn[kInternal].onTransportClosed(onClose)
      conn.close(CloseCode.GoingAway, 'server shutting down')
    }
  }

  stop (): void {
    this.heartbeats.stop()
  }
}
