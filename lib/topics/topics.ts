import type { WebSocketConnection, WebSocketData } from '../connection/connection.js'
import { kInternal } from '../connection/internal.js'
import type { SendOptions, TopicHost } from '../connection/types.js'
import { invalidArgument } from '../protocol/errors.js'
import { OutgoingMessage } from '../fastify/delivery.js'
import { ReadyState } from '../protocol/protocol.js'

type Conn = WebSocketConnection<any>

/**
 * The topics of one app, in this process: topic → its subscribers, and on
 * each connection (`conn[kInternal].topics`) the topics it is in, so every
 * call is a couple of Map/Set operations whatever the number of topics, and
 * closing leaves each of the connection's topics without walking the others.
 * A topic exists only while it has subscribers: the last one leaving deletes
 * its entry, so topics cost nothing once empty.
 *
 * The seam for cross-process adapters (not public yet): everything that
 * changes which topics this process has subscribers for passes through
 * `onFirstSubscriber` / `onLastSubscriberGone`, and every publish, from the
 * app or from a connection, through `publish`. A Redis adapter would
 * subscribe and unsubscribe its channel in the two hooks, and in `publish`
 * deliver locally (`deliverLocal`) and forward the payload to the other
 * instances, which call their own `deliverLocal` on receipt.
 */
export class TopicTable implements TopicHost {
  private readonly subscribers = new Map<string, Set<Conn>>()

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
    return this.deliverLocal(topic, data, options?.binary ?? typeof data !== 'string', except)
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

  /** The first subscriber in this process joined `topic`. In-process: nothing to do (adapter seam). */
  protected onFirstSubscriber (_topic: string): void {}

  /** The last subscriber in this process left `topic`. In-process: nothing to do (adapter seam). */
  protected onLastSubscriberGone (_topic: string): void {}

  private leave (conn: Conn, topic: string): void {
    const set = this.subscribers.get(topic)!
    set.delete(conn)
    if (set.size > 0) return
    this.subscribers.delete(topic)
    this.onLastSubscriberGone(topic)
  }
}

function checkTopic (topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw invalidArgument(new TypeError(`a topic is a non-empty string, got ${topic === '' ? "''" : typeof topic}`))
  }
}
