import type { FastifyBaseLogger } from 'fastify'
import type { WebSocketConnection, WebSocketData } from '../connection/connection.js'
import { kInternal } from '../connection/internal.js'
import type { SendOptions, TopicHost } from '../connection/types.js'
import { invalidArgument } from '../protocol/errors.js'
import { OutgoingMessage } from '../fastify/delivery.js'
import { ReadyState } from '../protocol/protocol.js'
import type { TopicAdapter, TopicAdapterHost } from './adapter.js'

type Conn = WebSocketConnection<any>

/**
 * The topics of one app, in this process: topic → its subscribers, and on
 * each connection (`conn[kInternal].topics`) the topics it is in, so every
 * call is a couple of Map/Set operations whatever the number of topics, and
 * closing leaves each of the connection's topics without walking the others.
 * A topic exists only while it has subscribers: the last one leaving deletes
 * its entry, so topics cost nothing once empty.
 *
 * With an adapter (lib/topics/adapter.ts), everything that changes which
 * topics this process has subscribers for passes through `onFirstSubscriber`
 * / `onLastSubscriberGone`, and every publish, from the app or from a
 * connection, through `publish`: delivered here first, then handed to the
 * adapter, which carries it to the other instances; they deliver it with
 * `deliverLocal` (the host's `deliver`).
 */
export class TopicTable implements TopicHost {
  private readonly subscribers = new Map<string, Set<Conn>>()

  constructor (private readonly adapter: TopicAdapter | null, private readonly log: FastifyBaseLogger) {
    // Once, as the app registers the plugin: what the adapter sees of this table.
    const host: TopicAdapterHost = {
      deliver: (topic, payload, binary) => this.deliverLocal(topic, payload, binary, null),
      topics: () => this.subscribers.keys(),
      log
    }
    adapter?.attach(host)
  }

  /** How many topics have subscribers (an empty topic has no entry). */
  get size (): number {
    return this.subscribers.size
  }

  subscribe (conn: Conn, topic: string): boolean {
    checkTopic(topic)
    const internal = conn[kInternal]
    // Its topics were already left when its transport closed: joining now would leak it.
    if (internal.core.readyState === ReadyState.CLOSED) return false
    const mine = internal.topics ??= new Set()
    if (mine.has(topic)) return false
    mine.add(topic)
    let set = this.subscribers.get(topic)
    if (set === undefined) {
      set = new Set()
      this.subscribers.set(topic, set)
      set.add(conn)
      this.onFirstSubscriber(topic)
    } else {
      set.add(conn)
    }
    return true
  }

  unsubscribe (conn: Conn, topic: string): boolean {
    checkTopic(topic)
    const internal = conn[kInternal]
    const mine = internal.topics
    if (mine === null || !mine.delete(topic)) return false
    if (mine.size === 0) internal.topics = null
    this.leave(conn, topic)
    return true
  }

  isSubscribed (conn: Conn, topic: string): boolean {
    checkTopic(topic)
    return conn[kInternal].topics?.has(topic) ?? false
  }

  topicsOf (conn: Conn): string[] {
    const mine = conn[kInternal].topics
    return mine === null ? [] : [...mine]
  }

  subscriberCount (topic: string): number {
    checkTopic(topic)
    return this.subscribers.get(topic)?.size ?? 0
  }

  /** Leaves every topic of `conn`: its transport closed. */
  removeAll (conn: Conn): void {
    const internal = conn[kInternal]
    const mine = internal.topics
    if (mine === null) return
    internal.topics = null
    for (const topic of mine) this.leave(conn, topic)
  }

  /**
   * Every publish, from `app.websocket.publish` or `conn.publish` (which
   * passes itself as `except`). In-process, it is local delivery; an adapter
   * would also forward the message from here.
   */
  publish (topic: string, data: WebSocketData, options: SendOptions | undefined, except: Conn | null): number {
    checkTopic(topic)
    const binary = options?.binary ?? typeof data !== 'string'
    const count = this.deliverLocal(topic, data, binary, except)
    // Other instances may have subscribers even when this one has none.
    if (this.adapter !== null) this.toAdapter('publish', topic, payloadOf(data), binary)
    return count
  }

  /** Queues the message on this process's subscribers of `topic`, encoded once; returns on how many. */
  deliverLocal (topic: string, data: WebSocketData, binary: boolean, except: Conn | null): number {
    const set = this.subscribers.get(topic)
    // Nothing to encode for a topic nobody here is in.
    if (set === undefined || (set.size === 1 && except !== null && set.has(except))) return 0
    const message = new OutgoingMessage(data, binary)
    let count = 0
    for (const conn of set) {
      if (conn !== except && message.deliverTo(conn)) count++
    }
    return count
  }

  /** The first subscriber in this process joined `topic`. */
  private onFirstSubscriber (topic: string): void {
    if (this.adapter !== null) this.toAdapter('subscribe', topic)
  }

  /** The last subscriber in this process left `topic`. */
  private onLastSubscriberGone (topic: string): void {
    if (this.adapter !== null) this.toAdapter('unsubscribe', topic)
  }

  /**
   * An adapter must not throw (it drops and counts when its broker is away);
   * one that does anyway must not break the table's state or a closing
   * connection, so the error is logged here, after the table was updated.
   */
  private toAdapter (method: 'subscribe' | 'unsubscribe' | 'publish', topic: string, payload?: string | Buffer, binary?: boolean): void {
    try {
      if (method === 'publish') this.adapter!.publish(topic, payload!, binary!)
      else this.adapter![method](topic)
    } catch (error) {
      this.log.error({ err: error, topic }, `fastify-rfc6455: the topic adapter threw in ${method}`)
    }
  }

  private leave (conn: Conn, topic: string): void {
    const set = this.subscribers.get(topic)!
    set.delete(conn)
    if (set.size > 0) return
    this.subscribers.delete(topic)
    this.onLastSubscriberGone(topic)
  }
}

/** What an adapter is handed: a string as it is, bytes as a Buffer over the same memory. */
function payloadOf (data: WebSocketData): string | Buffer {
  if (typeof data === 'string' || Buffer.isBuffer(data)) return data
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return Buffer.from(data)
}

function checkTopic (topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw invalidArgument(new TypeError(`a topic is a non-empty string, got ${topic === '' ? "''" : typeof topic}`))
  }
}
