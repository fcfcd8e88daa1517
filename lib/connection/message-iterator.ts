export interface Message {
  data: Buffer
  isBinary: boolean
}

/** What an iterator needs from the connection it reads (the Inbox). */
export interface MessageSource {
  /** `close` was emitted: an iterator made now has nothing to wait for. */
  readonly closeEmitted: boolean
  /** The consumer lags: stop reading from the socket until it catches up. */
  pauseReading (): void
  resumeReading (): void
  removeIterator (iterator: MessageIterator): void
  /** Messages the iterator took but its consumer never read, to be delivered to whoever listens next. */
  requeue (messages: Message[]): void
}

/** Pull-based reading (`for await (… of conn)`): pauses the socket while unread messages pile up. */
export class MessageIterator implements AsyncIterableIterator<Message> {
  private readonly source: MessageSource
  private readonly buffer: Array<{ data: Buffer, isBinary: boolean, sole: boolean }> = []
  private waiting: ((result: IteratorResult<Message>) => void) | null = null
  private ended = false

  constructor (source: MessageSource) {
    this.source = source
    // A close held back for a handler still delivers the held messages first.
    if (source.closeEmitted) this.ended = true
  }

  /** A message arrived. `sole`: no other consumer saw it, so it goes back if this iterator stops early. */
  push (data: Buffer, isBinary: boolean, sole: boolean): void {
    if (this.waiting !== null) {
      const resolve = this.waiting
      this.waiting = null
      resolve({ value: { data, isBinary }, done: false })
      return
    }
    this.buffer.push({ data, isBinary, sole })
    // The consumer lags: stop reading until it catches up.
    this.source.pauseReading()
  }

  /** The connection closed: the iteration ends once the buffered messages are read. */
  end (): void {
    this.ended = true
    if (this.waiting !== null) {
      const resolve = this.waiting
      this.waiting = null
      resolve({ value: undefined, done: true })
    }
  }

  next (): Promise<IteratorResult<Message>> {
    const item = this.buffer.shift()
    if (item !== undefined) {
      if (this.buffer.length === 0) this.source.resumeReading()
      return Promise.resolve({ value: { data: item.data, isBinary: item.isBinary }, done: false })
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true })
    this.source.resumeReading()
    return new Promise((resolve) => { this.waiting = resolve })
  }

  return (): Promise<IteratorResult<Message>> {
    this.ended = true
    const unread = this.buffer.filter((m) => m.sole).map((m) => ({ data: m.data, isBinary: m.isBinary }))
    this.buffer.length = 0
    this.source.removeIterator(this)
    this.source.requeue(unread)
    this.source.resumeReading()
    return Promise.resolve({ value: undefined, done: true })
  }

  [Symbol.asyncIterator] (): this {
    return this
  }
}
