import { randomBytes } from 'node:crypto'
// ioredis is an optional peer dependency: only this subpath (`fastify-rfc6455/redis`) loads it.
import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import { REDIS_ADAPTER_DEFAULTS } from '../defaults.js'
import { channels } from '../diagnostics.js'
import { invalidOption } from '../fastify/settings.js'
import type { TopicAdapter, TopicAdapterHost } from '../topics/adapter.js'
import { webSocketError } from '../protocol/errors.js'
import { decodeEnvelope, encodeEnvelope, HEADER_SIZE, MAX_SEQUENCE, ORIGIN_SIZE } from './envelope.js'

export interface RedisAdapterOptions {
  /**
   * An ioredis client (`Redis`, or `Cluster` with `sharded`), e.g. the one
   * `@fastify/redis` decorates as `app.redis`. Publishes go through it; the
   * adapter duplicates it for the subscriber connection, and closes only
   * the duplicate. Give either `client` or `url`.
   */
  client?: Redis | Cluster
  /** A Redis URL (`redis://127.0.0.1:6379`): the adapter opens, and closes, both connections. */
  url?: string
  /** Prepended to a topic to make its channel. Default `'ws:'`. */
  prefix?: string
  /**
   * Sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`, Redis ≥ 7): in a Redis
   * Cluster, each channel's messages stay on the shard that owns it
   * instead of going to every node. Default false.
   */
  sharded?: boolean
  /** Milliseconds `app.ready()` waits for Redis before starting without it. Default 10 s. */
  readyTimeout?: number
  /**
   * Bytes of publishes Redis has not answered yet past which more are
   * dropped (counted, as in an outage). Default 8 MiB.
   */
  maxPendingBytes?: number
}

/** What the adapter counts; read them as `adapter.stats`. */
export interface RedisAdapterStats {
  /** Publishes Redis took (answered). */
  published: number
  /** Publishes of other instances delivered here. */
  received: number
  /**
   * Publishes not carried to the other instances: Redis unreachable, or not
   * answering past `maxPendingBytes` (each also on the diagnostics channel).
   */
  dropped: number
  /** Publishes that arrived a second time and were not delivered again. */
  duplicates: number
  /** Messages on the adapter's channels that were not its envelopes (ignored). */
  foreign: number
}

export interface RedisAdapter extends TopicAdapter {
  readonly stats: Readonly<RedisAdapterStats>
  /** This instance's id in the envelopes, hex. */
  readonly instanceId: string
}

/**
 * Topics across instances on Redis pub/sub: `app.register(websocket, {
 * adapter: redisAdapter({ client: app.redis }) })`. README, "Topics and
 * scaling out", says what is guaranteed; how, in short:
 *
 * - each instance SUBSCRIBEs only to the channels of topics it has
 *   subscribers for (the plugin calls `subscribe` on the first and
 *   `unsubscribe` after the last), and restores them on every reconnect;
 * - a publish is delivered locally by the plugin first, then PUBLISHed once
 *   in an envelope (envelope.ts) carrying this instance's id, so the echo
 *   coming back is skipped, and a sequence number, so a publish resent by
 *   the client after a reconnect is not delivered twice;
 * - Redis pub/sub keeps the order of one connection's publishes per channel,
 *   so subscribers see a publisher's messages in order;
 * - while Redis is unreachable nothing is queued (memory stays bounded, and
 *   messages are not delivered minutes late): cross-instance publishes are
 *   dropped and counted, local delivery is untouched.
 */
export function redisAdapter (options: RedisAdapterOptions): RedisAdapter {
  return new RedisTopicAdapter(checkOptions(options))
}

type Client = Redis | Cluster
type Resolved = Required<Omit<RedisAdapterOptions, 'client' | 'url'>> & Pick<RedisAdapterOptions, 'client' | 'url'>

// The subscriber connection queues nothing while disconnected and does not
// resubscribe by itself: on every `ready` the adapter subscribes to the
// topics this instance has *now*, so topics left during an outage are not
// restored and nothing piles up while Redis is away.
const SUBSCRIBER_OPTIONS: Partial<RedisOptions> = { autoResubscribe: false, enableOfflineQueue: false, lazyConnect: false }
// A publisher the adapter opens itself: while Redis is away a publish is
// dropped and counted, never queued, and an in-flight one is not resent.
const PUBLISHER_OPTIONS: Partial<RedisOptions> = { enableOfflineQueue: false, autoResendUnfulfilledCommands: false }

class RedisTopicAdapter implements RedisAdapter {
  readonly stats: RedisAdapterStats = { published: 0, received: 0, dropped: 0, duplicates: 0, foreign: 0 }
  private readonly options: Resolved
  private origin = randomBytes(ORIGIN_SIZE)
  private originKey = this.origin.toString('latin1')
  private sequence = 0
  private host: TopicAdapterHost | null = null
  private publisher: Client | null
  private subscriber: Client | null = null
  private ownsPublisher = false
  // A Cluster in sharded mode: ioredis keeps the channel list (see `duplicate`).
  private clusterKeepsChannels = false
  private closed = false
  // Last sequence number per (publisher, topic), least recently seen first.
  private readonly lastSeen = new Map<string, number>()
  // Drops since Redis was last reachable: the first is logged, the rest summed when it is back.
  private droppedInOutage = 0
  // Bytes of publishes handed to the client and not answered yet (maxPendingBytes).
  private pendingBytes = 0

  constructor (options: Resolved) {
    this.options = options
    this.publisher = options.client ?? null
  }

  get instanceId (): string {
    return this.origin.toString('hex')
  }

  attach (host: TopicAdapterHost): void {
    if (this.host !== null) throw invalidOption('fastify-rfc6455: a Redis adapter serves one app; create one per app')
    this.host = host
  }

  async ready (): Promise<void> {
    if (this.subscriber !== null || this.closed) return
    // Connections open here, not at `redisAdapter()`, so an app that fails to register opens none.
    if (this.publisher === null) {
      this.publisher = new Redis(this.options.url!, PUBLISHER_OPTIONS)
      this.ownsPublisher = true
      this.publisher.on('error', this.onClientError)
    }
    // A client made with `lazyConnect` waits for its first command; the adapter needs it connected.
    if (this.publisher.status === 'wait') this.publisher.connect().catch(ignoreError)
    this.publisher.on('ready', this.onPublisherReady)
    this.clusterKeepsChannels = isCluster(this.publisher) && this.options.sharded
    this.subscriber = this.openSubscriber()
    await this.whenReady()
  }

  private openSubscriber (): Client {
    const subscriber = duplicate(this.publisher!, this.options.sharded)
    subscriber.on('error', this.onClientError)
    subscriber.on('ready', this.onSubscriberReady)
    subscriber.on(this.options.sharded ? 'smessageBuffer' : 'messageBuffer', this.onMessage)
    if (this.clusterKeepsChannels) subscriber.once('ready', () => subscriber.once('reconnecting', this.renewClusterSubscriber))
    return subscriber
  }

  /**
   * A sharded Cluster that was ready is reconnecting: replaced by a new one
   * (see `duplicate`), given this instance's topics now, which wait in its
   * offline queue with any (un)subscribe after them until it is ready.
   */
  private readonly renewClusterSubscriber = (): void => {
    const old = this.subscriber
    if (old === null || this.closed || this.host === null) return
    old.disconnect() // its 'error' listener stays: a late error is not thrown
    const subscriber = this.subscriber = this.openSubscriber()
    for (const topic of this.host.topics()) subscriber.ssubscribe(this.options.prefix + topic, ignoreError)
  }

  subscribe (topic: string): void {
    const subscriber = this.subscriber
    if (subscriber === null || (subscriber.status !== 'ready' && !this.clusterKeepsChannels)) return // subscribed with the others once it is
    const name = this.options.prefix + topic
    if (this.options.sharded) subscriber.ssubscribe(name, ignoreError)
    else subscriber.subscribe(name, ignoreError)
  }

  unsubscribe (topic: string): void {
    const subscriber = this.subscriber
    if (subscriber === null || (subscriber.status !== 'ready' && !this.clusterKeepsChannels)) return // a new connection starts without it
    const name = this.options.prefix + topic
    if (this.options.sharded) subscriber.sunsubscribe(name, ignoreError)
    else subscriber.unsubscribe(name, ignoreError)
  }

  publish (topic: string, payload: string | Buffer, binary: boolean): void {
    if (this.closed) return // app.close() has passed: there are no other instances to tell
    const publisher = this.publisher
    if (publisher?.status !== 'ready') {
      this.drop(topic, null)
      return
    }
    const size = (typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length) + HEADER_SIZE + REDIS_ADAPTER_DEFAULTS.publishOverhead
    if (this.pendingBytes + size > this.options.maxPendingBytes) {
      this.drop(topic, webSocketError('WS_ERR_ADAPTER_BACKLOG', `Redis has not answered ${this.pendingBytes} bytes of publishes (maxPendingBytes ${this.options.maxPendingBytes})`))
      return
    }
    if (this.sequence === MAX_SEQUENCE) {
      this.origin = randomBytes(ORIGIN_SIZE)
      this.originKey = this.origin.toString('latin1')
      this.sequence = 0
    }
    const envelope = encodeEnvelope(this.origin, ++this.sequence, payload, binary)
    const name = this.options.prefix + topic
    this.pendingBytes += size
    const done = (error: Error | null | undefined): void => {
      this.pendingBytes -= size
      if (error != null) this.drop(topic, error)
      else this.stats.published++
    }
    if (this.options.sharded) publisher.spublish(name, envelope, done)
    else publisher.publish(name, envelope, done)
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.publisher?.removeListener('ready', this.onPublisherReady)
    const clients = [this.subscriber, this.ownsPublisher ? this.publisher : null]
    this.subscriber = null
    await Promise.all(clients.map(async (client) => {
      if (client === null) return
      // QUIT lets Redis finish what was sent; a connection that is down is just dropped.
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect())
      else client.disconnect()
    }))
  }

  private readonly onMessage = (channelName: Buffer, message: Buffer): void => {
    const host = this.host
    if (host === null || this.closed) return
    const envelope = decodeEnvelope(message)
    if (envelope === null) {
      this.stats.foreign++
      return
    }
    if (envelope.origin === this.originKey) return // ours: delivered locally when published
    const topic = channelName.toString('utf8', Buffer.byteLength(this.options.prefix))
    if (!this.firstTime(envelope.origin + topic, envelope.sequence)) {
      this.stats.duplicates++
      return
    }
    this.stats.received++
    host.deliver(topic, envelope.payload, envelope.binary)
  }

  /** Whether this is the first time `sequence` of this (publisher, topic) arrives; remembers it. */
  private firstTime (key: string, sequence: number): boolean {
    const last = this.lastSeen.get(key)
    // A restarted publisher has a new id, so a lower number is a replay, never a restart.
    if (last !== undefined && sequence <= last) return false
    this.lastSeen.delete(key) // re-inserted last: the Map's order is least recently seen first
    this.lastSeen.set(key, sequence)
    if (this.lastSeen.size > REDIS_ADAPTER_DEFAULTS.dedupeEntries) {
      this.lastSeen.delete(this.lastSeen.keys().next().value!)
    }
    return true
  }

  // Drops happen at the publisher: its reconnect ends the outage the log told of.
  private readonly onPublisherReady = (): void => {
    if (this.droppedInOutage > 0) {
      this.host?.log.warn({ dropped: this.droppedInOutage }, 'fastify-rfc6455: Redis adapter reconnected; cross-instance publishes were dropped while it was unreachable')
      this.droppedInOutage = 0
    }
  }

  private readonly onSubscriberReady = (): void => {
    // A new connection has no subscriptions: take this instance's current topics.
    const subscriber = this.subscriber
    if (subscriber === null || this.host === null || this.clusterKeepsChannels) return
    const prefix = this.options.prefix
    let batch: string[] = []
    const flush = (): void => {
      if (this.options.sharded) subscriber.ssubscribe(...batch, ignoreError)
      else subscriber.subscribe(...batch, ignoreError)
      batch = []
    }
    for (const topic of this.host.topics()) {
      batch.push(prefix + topic)
      if (batch.length === REDIS_ADAPTER_DEFAULTS.resubscribeBatch) flush()
    }
    if (batch.length > 0) flush()
  }

  private drop (topic: string, error: Error | null): void {
    this.stats.dropped++
    if (this.droppedInOutage++ === 0) {
      this.host?.log.warn({ topic, err: error ?? undefined }, 'fastify-rfc6455: Redis adapter cannot reach Redis; cross-instance publishes are dropped until it can (local delivery goes on)')
    }
    if (channels.adapter.hasSubscribers) channels.adapter.publish({ event: 'dropped', topic, error, instanceId: this.instanceId })
  }

  private readonly onClientError = (error: Error): void => {
    // ioredis reports every failed reconnect; the drops say what it costs, once per outage.
    this.host?.log.debug({ err: error }, 'fastify-rfc6455: Redis adapter connection error')
  }

  private async whenReady (): Promise<void> {
    const clients = [this.publisher!, this.subscriber!].filter((client) => client.status !== 'ready')
    if (clients.length === 0) return
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(resolve, this.options.readyTimeout, false) })
    const allReady = Promise.all(clients.map(async (client) => await new Promise((resolve) => client.once('ready', resolve)))).then(() => true)
    const ready = await Promise.race([allReady, timeout])
    clearTimeout(timer)
    if (!ready) {
      this.host?.log.warn(`fastify-rfc6455: Redis adapter not connected after ${this.options.readyTimeout} ms; starting without it, it joins when Redis answers`)
    }
  }
}

function isCluster (client: Client): client is Cluster {
  return 'nodes' in client
}

/**
 * The subscriber connection. A Cluster in sharded mode is left to ioredis:
 * its sharded subscribers (one connection per master) take SSUBSCRIBE and
 * SUNSUBSCRIBE one slot at a time, record every channel as they route it,
 * and SSUBSCRIBE the recorded channels again when a node's connection is
 * replaced (a node restarted, slots moved). So the adapter does not
 * resubscribe on `ready` (one SSUBSCRIBE of all its topics would span slots,
 * and ioredis rejects it); it sends every subscribe and unsubscribe, one
 * channel each, and while the Cluster is not ready they wait in its offline
 * queue (subscriptions only: publishes go through the other client).
 *
 * When the whole Cluster reconnects, the adapter replaces it instead: in
 * ioredis 5.11, a reconnect that stops the sharded subscribers while one is
 * between its TCP connect and `ready` leaves that subscriber's start pending
 * forever (`stop()` removes the listeners that would settle it), and the
 * group never resets again: the Cluster says `ready` while it has no
 * subscriber connection and rejects every SSUBSCRIBE. A new Cluster has
 * recorded no channels, so it opens no subscriber before it is ready.
 */
function duplicate (client: Client, sharded: boolean): Client {
  if (isCluster(client)) return client.duplicate(undefined, sharded ? { shardedSubscribers: true, enableOfflineQueue: true } : { shardedSubscribers: false })
  return client.duplicate(SUBSCRIBER_OPTIONS)
}

// Failed (un)subscribes are for a connection that just went away: its replacement subscribes afresh on `ready`.
function ignoreError (): void {}

function checkOptions (options: RedisAdapterOptions): Resolved {
  if (options === null || typeof options !== 'object') throw invalidOption('redisAdapter: options must be an object with `client` or `url`')
  const { client, url } = options
  if ((client === undefined) === (url === undefined)) throw invalidOption('redisAdapter: give either `client` (an ioredis client) or `url`')
  if (client !== undefined && (client === null || typeof (client as Redis).duplicate !== 'function')) {
    throw invalidOption('redisAdapter: `client` must be an ioredis client (Redis or Cluster)')
  }
  if (url !== undefined && typeof url !== 'string') throw invalidOption('redisAdapter: `url` must be a string')
  const prefix = options.prefix ?? REDIS_ADAPTER_DEFAULTS.prefix
  if (typeof prefix !== 'string') throw invalidOption('redisAdapter: `prefix` must be a string')
  const readyTimeout = options.readyTimeout ?? REDIS_ADAPTER_DEFAULTS.readyTimeout
  if (!(readyTimeout >= 0 && readyTimeout < 2 ** 31)) throw invalidOption(`redisAdapter: \`readyTimeout\` must be a number of milliseconds, got ${readyTimeout}`)
  const maxPendingBytes = options.maxPendingBytes ?? REDIS_ADAPTER_DEFAULTS.maxPendingBytes
  if (!(maxPendingBytes > 0)) throw invalidOption(`redisAdapter: \`maxPendingBytes\` must be a positive number of bytes, got ${maxPendingBytes}`)
  return { client, url, prefix, sharded: options.sharded === true, readyTimeout, maxPendingBytes }
}
