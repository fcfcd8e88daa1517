import type { Duplex } from 'node:stream'
import { PENDING_BYTES_FLOOR } from '../defaults.js'
import { emitSafely, reportListenerFailure, type ConnectionEmitter } from './events.js'
import { CLOSE_DEFERRED, CLOSE_EMITTED, DROP_UNCONSUMED, HANDLER_RUNNING } from './flags.js'
import { MessageIterator, type Message, type MessageSource } from './message-iterator.js'
import { Outbox } from './outbox.js'
import type { ConnectionOptions } from './types.js'

/** Why reading from the socket is paused (bits of Inbox#pauseReasons); it resumes when none is left. */
export const PauseReason = {
  /** Held messages passed `maxPendingBytes`. */
  Held: 1,
  /** An async iterator's consumer lags. */
  Iterator: 2,
  /** A client connection waits for its creator to attach listeners (ConnectionInternals#startAfterCurrentTask). */
  Starting: 4,
  /** The readable side of a stream adapter (lib/stream.ts) is full. */
  Stream: 8,
  /** The application called `conn.pause()`. */
  Application: 16,
  /** Received messages wait for an asynchronous decode (permessage-deflate) past their budget. */
  Decoding: 32
} as const

interface HeldMessage extends Message {
  /** What holding it costs: its bytes, or the whole chunk it is a view of, plus the entry. */
  cost: number
}

/** Messages held for a handler that is not listening yet; created only when there are some. */
interface Held {
  messages: HeldMessage[]
  /** Sum of their costs: reading pauses past `maxPendingBytes`. */
  bytes: number
  /** The last ArrayBuffer a held message viewed: it is counted once, in full. */
  lastBuffer: ArrayBufferLike | null
}

// Bookkeeping per held message, so a flood of empty messages is bounded too.
const HELD_ENTRY_COST = 64

/**
 * The read side of one connection, between the protocol and the
 * application: messages go to the `message` listeners and iterators, or are
 * held while the route handler has not started listening yet (an async
 * handler still awaiting), or dropped once it finished without listening.
 * The `close` event is held back likewise, so a handler that attaches its
 * listeners late still hears of every message and of the close, in order.
 *
 * A layer of the connection's one internal object (see Outbox).
 */
export abstract class Inbox extends Outbox implements MessageSource {
  // Messages that arrived while nobody listened (e.g. an async handler still awaiting).
  private held: Held | null = null
  // PauseReason bits.
  private pauseReasons = 0
  private iterators: Set<MessageIterator> | null = null
  private readonly maxPendingBytes: number

  constructor (conn: ConnectionEmitter, socket: Duplex, options: ConnectionOptions) {
    super(conn, socket, options)
    this.maxPendingBytes = options.maxPendingBytes ?? Math.max(options.maxMessageSize, PENDING_BYTES_FLOOR)
  }

  /** True once `close` was emitted: no further events come. */
  get closeEmitted (): boolean {
    return (this.flags & CLOSE_EMITTED) !== 0
  }

  /** Bytes (costs) of the messages held for the handler; for tests of the cap. */
  get heldBytes (): number {
    return this.held?.bytes ?? 0
  }

  /** The route handler was called and returned a promise that has not settled yet. */
  handlerStarted (): void {
    this.flags |= HANDLER_RUNNING
  }

  /**
   * The route handler is done. From now on, messages that nobody listens to
   * are dropped; a `close` held back for the handler is emitted.
   */
  handlerSettled (): void {
    this.flags = (this.flags & ~HANDLER_RUNNING) | DROP_UNCONSUMED
    if (this.held !== null && !this.hasConsumer()) {
      this.conn.log?.debug({ messages: this.held.messages.length }, 'websocket handler finished without listening for messages; dropping those received')
      this.held = null
      this.resumeFrom(PauseReason.Held)
    }
    if ((this.flags & CLOSE_DEFERRED) !== 0) this.releaseHeld()
  }

  /** A message from the protocol: to the consumers, held for a handler not listening yet, or dropped. */
  receive (data: Buffer, isBinary: boolean): void {
    if (this.held !== null || !this.hasConsumer()) {
      if (this.held === null && (this.flags & DROP_UNCONSUMED) !== 0) return
      this.hold(data, isBinary)
      return
    }
    this.emitMessage(data, isBinary)
  }

  /** A new `for await` over the connection. */
  openIterator (): MessageIterator {
    const iterator = new MessageIterator(this)
    if (this.iterators === null) this.iterators = new Set()
    this.iterators.add(iterator)
    this.releaseHeldSoon()
    return iterator
  }

  removeIterator (iterator: MessageIterator): void {
    this.iterators?.delete(iterator)
  }

  /** Puts back messages an iterator took but its consumer never read. */
  requeue (messages: Message[]): void {
    if (messages.length === 0 || (this.flags & CLOSE_EMITTED) !== 0) return
    const back = messages.map((m) => ({ data: m.data, isBinary: m.isBinary, cost: m.data.length + HELD_ENTRY_COST }))
    let bytes = 0
    for (const m of back) bytes += m.cost
    if (this.held === null) {
      this.held = { messages: back, bytes, lastBuffer: null }
    } else {
      this.held.messages = back.concat(this.held.messages)
      this.held.bytes += bytes
    }
    this.releaseHeldSoon()
  }

  pauseReading (): void {
    this.pauseFor(PauseReason.Iterator)
  }

  resumeReading (): void {
    this.resumeFrom(PauseReason.Iterator)
  }

  /**
   * Delivers held messages (and a held-back close) to a listener being added
   * now, once it is added and the rest of the caller's code has run.
   */
  releaseHeldSoon (): void {
    if (this.held !== null || (this.flags & CLOSE_DEFERRED) !== 0) queueMicrotask(() => this.releaseHeld())
  }

  /**
   * The transport is gone: `close` is emitted now, or held back while the
   * handler is not listening yet or messages held for it are undelivered.
   */
  closeAfterHeld (): void {
    if ((this.flags & HANDLER_RUNNING) !== 0 && !this.hasConsumer()) {
      // An async handler still awaiting would attach its listeners to a closed
      // connection and never hear of the messages or the close: keep both for it.
      this.flags |= CLOSE_DEFERRED
      return
    }
    if (this.held !== null && this.hasConsumer()) {
      this.flags |= CLOSE_DEFERRED // emitted once the held messages are delivered
      return
    }
    this.emitClose()
  }

  /** `close` was emitted, or is held back: the transport's end was already dealt with. */
  get closeHandled (): boolean {
    return (this.flags & (CLOSE_EMITTED | CLOSE_DEFERRED)) !== 0
  }

  /** Stops reading from the socket for `reason` (a PauseReason) until `resumeFrom(reason)`. */
  pauseFor (reason: number): void {
    this.pauseReasons |= reason
    this.socket.pause()
  }

  /** Drops `reason`; reading resumes once no reason is left. */
  resumeFrom (reason: number): void {
    if ((this.pauseReasons & reason) === 0) return
    this.pauseReasons &= ~reason
    if (this.pauseReasons === 0) this.socket.resume()
  }

  /** Whether reading is paused for `reason`. */
  pausedFor (reason: number): boolean {
    return (this.pauseReasons & reason) !== 0
  }

  private hasConsumer (): boolean {
    return this.conn.listenerCount('message') > 0 || (this.iterators !== null && this.iterators.size > 0)
  }

  /** Gives a message to the iterators and the `message` listeners. */
  private emitMessage (data: Buffer, isBinary: boolean): void {
    if (this.iterators !== null && this.iterators.size > 0) {
      // A message nobody else saw goes back to the connection if its iterator stops early.
      const sole = this.iterators.size === 1 && this.conn.listenerCount('message') === 0
      for (const it of this.iterators) it.push(data, isBinary, sole)
    }
    try {
      this.conn.emit('message', data, isBinary)
    } catch (error) {
      // A listener's exception must not escape into the socket's data event and
      // take the process (and every other connection) down with it.
      reportListenerFailure(this.conn, error)
    }
  }

  private hold (data: Buffer, isBinary: boolean): void {
    // A message may be a view of a larger chunk that holding it keeps alive:
    // count that chunk, once, so tiny messages cannot pin unbounded memory.
    let held = this.held
    if (held === null) held = this.held = { messages: [], bytes: 0, lastBuffer: null }
    let cost = data.length + HELD_ENTRY_COST
    if (data.buffer !== held.lastBuffer) {
      held.lastBuffer = data.buffer
      cost += data.buffer.byteLength - data.length
    }
    held.messages.push({ data, isBinary, cost })
    held.bytes += cost
    if (held.bytes > this.maxPendingBytes) this.pauseFor(PauseReason.Held)
  }

  private releaseHeld (): void {
    while (this.held !== null && this.hasConsumer()) {
      const item = this.held.messages.shift()
      if (item === undefined) {
        this.held = null
        break
      }
      this.held.bytes -= item.cost
      this.emitMessage(item.data, item.isBinary)
    }
    if (this.held === null) this.resumeFrom(PauseReason.Held)
    // A held-back close follows the held messages; someone who only waits for
    // the close (no message listener) gets it too, without the messages.
    if ((this.flags & CLOSE_DEFERRED) !== 0 && (this.held === null || this.conn.listenerCount('close') > 0)) this.emitClose()
  }

  private emitClose (): void {
    if ((this.flags & CLOSE_EMITTED) !== 0) return
    this.flags = (this.flags | CLOSE_EMITTED) & ~CLOSE_DEFERRED
    // Messages still held for a handler that never listened are dropped with the connection.
    this.held = null
    if (this.iterators !== null) {
      for (const it of this.iterators) it.end()
    }
    emitSafely(this.conn, 'close', this.core.closeCode, this.core.closeReason)
  }
}
