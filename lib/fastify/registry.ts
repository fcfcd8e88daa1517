import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { WebSocketConnection, type WebSocketData } from '../connection/connection.js'
import { Heartbeats } from '../connection/heartbeat.js'
import { kInternal } from '../connection/internal.js'
import { channels } from '../diagnostics.js'
import type { SendOptions } from '../connection/types.js'
import { CloseCode } from '../protocol/close-codes.js'
import type { TopicAdapter } from '../topics/adapter.js'
import { TopicTable } from '../topics/topics.js'
import type { NegotiatedDeflate } from './compressed-broadcast.js'
import { kDeflate, OutgoingMessage } from './delivery.js'
import type { ResolvedSettings } from './settings.js'
import { buildDocument, type AddressSource, type DocumentedRoute } from '../asyncapi/document.js'
import { mergeAsyncApiOptions } from '../asyncapi/options.js'
import type { AsyncApiDocument, AsyncApiOptions } from '../asyncapi/types.js'
import { toYaml } from '../asyncapi/yaml.js'

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
  /**
   * Sends one message to every connection of this app subscribed to `topic`
   * (`conn.subscribe`), encoding its frame once (and compressing it once for
   * all receivers that can share the bytes). A subscriber whose queue is
   * full is dropped or skipped as its `onBufferFull` says, without slowing
   * the others. Returns how many connections it was queued on (0 for a
   * topic nobody is subscribed to).
   */
  publish (topic: string, data: WebSocketData, options?: SendOptions): number
  /** How many connections of this app are subscribed to `topic`. */
  subscriberCount (topic: string): number
  /** The effective plugin-level settings. */
  readonly settings: Readonly<ResolvedSettings>
  /**
   * The AsyncAPI 3.0 document of the app's WebSocket routes (README,
   * "AsyncAPI"): one channel per route, its messages from `schema.message`
   * and `schema.outgoing`. The plugin's `asyncapi` option gives the
   * defaults; `yaml: true` returns the document as YAML text.
   */
  asyncapi (options: AsyncApiOptions & { yaml: true }): string
  asyncapi (options?: AsyncApiOptions & { yaml?: false }): AsyncApiDocument
}

/** What the registry counts per route: its open connections, for its maxConnections. */
export interface CountedRoute {
  open: number
}

// The route a server connection belongs to, for its route's connection count;
// what it negotiated of permessage-deflate (kDeflate) is for broadcasts and publishes.
const kConnRoute = Symbol('fastify-rfc6455.connRoute')
type ServerConnection = WebSocketConnection<FastifyRequest> & { [kConnRoute]?: CountedRoute, [kDeflate]?: NegotiatedDeflate }

/**
 * The open connections of one app: `app.websocket`, the per-route counts,
 * heartbeats, and the 1001 round on shutdown.
 */
export class Registry implements WebSocketRegistry {
  readonly clients = new Set<WebSocketConnection<FastifyRequest>>()
  readonly settings: ResolvedSettings
  /** @internal The app's topics (lib/topics/topics.ts). */
  readonly topics: TopicTable
  /** Set once app.close() began: upgrades are refused from then on. */
  closing = false
  /** @internal The WebSocket routes as declared (route.ts adds them), for the AsyncAPI document. */
  readonly documented: DocumentedRoute[] = []
  readonly #server: AddressSource | undefined
  readonly #asyncapiDefaults: AsyncApiOptions
  private readonly heartbeats = new Heartbeats()
  // One listener for every connection of this app (no closure per connection).
  private readonly onTransportClosed: (this: ServerConnection, code: number, reason: string) => void

  constructor (settings: ResolvedSettings, adapter: TopicAdapter | null, log: FastifyBaseLogger, server?: AddressSource, asyncapiDefaults: AsyncApiOptions = {}) {
    this.settings = settings
    this.#server = server
    this.#asyncapiDefaults = asyncapiDefaults
    this.topics = new TopicTable(adapter, log)
    // Bound, so `const { broadcast, publish } = app.websocket` works.
    this.broadcast = this.broadcast.bind(this)
    this.publish = this.publish.bind(this)
    this.subscriberCount = this.subscriberCount.bind(this)
    this.asyncapi = this.asyncapi.bind(this)
    const registry = this
    this.onTransportClosed = function (code, reason) { registry.removeClient(this, code, reason) }
  }

  broadcast (data: WebSocketData, options?: BroadcastOptions): number {
    const message = new OutgoingMessage(data, options?.binary ?? typeof data !== 'string')
    const filter = options?.filter
    let count = 0
    for (const conn of options?.clients ?? this.clients) {
      if (filter !== undefined && !filter(conn)) continue
      if (message.deliverTo(conn)) count++
    }
    return count
  }

  publish (topic: string, data: WebSocketData, options?: SendOptions): number {
    return this.topics.publish(topic, data, options, null)
  }

  subscriberCount (topic: string): number {
    return this.topics.subscriberCount(topic)
  }

  asyncapi (options: AsyncApiOptions & { yaml: true }): string
  asyncapi (options?: AsyncApiOptions & { yaml?: false }): AsyncApiDocument
  asyncapi (options?: AsyncApiOptions & { yaml?: boolean }): AsyncApiDocument | string {
    const { yaml, ...merged } = mergeAsyncApiOptions(this.#asyncapiDefaults, options)
    const document = buildDocument(this.documented, merged, this.#server)
    return yaml === true ? toYaml(document) : document
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
    internal.topicHost = this.topics
    internal.onTransportClosed(this.onTransportClosed)
    if (channels.open.hasSubscribers) channels.open.publish({ connection: conn, request })
    if (heartbeatInterval > 0) this.heartbeats.add(internal, heartbeatInterval)
  }

  private removeClient (conn: ServerConnection, code: number, reason: string): void {
    if (!this.clients.delete(conn)) return
    conn[kConnRoute]!.open--
    this.topics.removeAll(conn)
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
