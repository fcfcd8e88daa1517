// Test doubles for lib/protocol: sinks and handlers that record what a parser
// or a WebSocketProtocol reports and writes, two protocols wired back to back,
// and frames written as a test describes them (object form, fixed mask key).

import { createHash } from 'node:crypto'
import type { Test } from 'tap'
import type { FrameParserOptions, FrameParserSink, ProtocolError, ProtocolHandler } from '../../lib/protocol/index.js'
import { FrameParser, WebSocketProtocol } from '../../lib/protocol/index.js'
import { decodeFrames, encodeFrame, type Frame } from './wire.cjs'

/** The key of `mask: true` frames: fixed, so that a failing input is the same bytes on every run. */
export const TEST_MASK_KEY = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d)

export interface RawFrame {
  opcode: number
  payload?: Uint8Array | string
  fin?: boolean
  rsv1?: boolean
  rsv2?: boolean
  rsv3?: boolean
  /** true: mask with TEST_MASK_KEY; a key: mask with it; false/absent: unmasked. */
  mask?: boolean | Uint8Array
  /** Force the length encoding (7-bit, 16-bit or 64-bit) instead of the minimal one. */
  lengthBits?: 7 | 16 | 64
}

/** One frame as `f` describes it (wire.cjs encodes it). */
export function frame (f: RawFrame): Buffer {
  return encodeFrame(f.opcode, f.payload, { ...f, mask: f.mask === true ? TEST_MASK_KEY : f.mask ?? false })
}

/** Several frames back to back. */
export function frames (...list: RawFrame[]): Buffer {
  return Buffer.concat(list.map(frame))
}

export type ParserEvent =
  | { type: 'message', data: Buffer, isBinary: boolean, compressed: boolean }
  | { type: 'ping', data: Buffer }
  | { type: 'pong', data: Buffer }
  | { type: 'close', code: number, reason: string }
  | { type: 'error', code: number, message: string }

export class RecordingSink implements FrameParserSink {
  readonly events: ParserEvent[] = []
  onMessage (data: Buffer, isBinary: boolean, compressed: boolean): void {
    this.events.push({ type: 'message', data, isBinary, compressed })
  }

  onPing (data: Buffer): void {
    this.events.push({ type: 'ping', data })
  }

  onPong (data: Buffer): void {
    this.events.push({ type: 'pong', data })
  }

  onClose (code: number, reason: string): void {
    this.events.push({ type: 'close', code, reason })
  }

  onProtocolError (error: ProtocolError): void {
    this.events.push({ type: 'error', code: error.closeCode, message: error.message })
  }
}

function sameEvent (a: ParserEvent, b: ParserEvent): boolean {
  if (a.type !== b.type) return false
  switch (a.type) {
    case 'message': {
      const o = b as typeof a
      return a.isBinary === o.isBinary && a.compressed === o.compressed && a.data.equals(o.data)
    }
    case 'ping':
    case 'pong':
      return a.data.equals((b as typeof a).data)
    case 'close':
      return a.code === (b as typeof a).code && a.reason === (b as typeof a).reason
    case 'error':
      return a.code === (b as typeof a).code && a.message === (b as typeof a).message
  }
}

export function sameEvents (a: ParserEvent[], b: ParserEvent[]): boolean {
  return a.length === b.length && a.every((e, i) => sameEvent(e, b[i]))
}

function describeData (data: Buffer): string {
  if (data.length <= 48) return data.toString('hex')
  return `${data.length} bytes, sha1 ${createHash('sha1').update(data).digest('hex').slice(0, 16)}`
}

/** A printable form of events, for assertions and diagnostics (large payloads are summarised). */
export function summarize (events: ParserEvent[]): Array<Record<string, unknown>> {
  return events.map((e) => {
    if (e.type === 'message') return { type: e.type, data: describeData(e.data), isBinary: e.isBinary, compressed: e.compressed }
    if (e.type === 'ping' || e.type === 'pong') return { type: e.type, data: describeData(e.data) }
    return { ...e }
  })
}

/** Runs a fresh parser over `chunks` (each copied first: the parser unmasks in place). */
export function parseChunks (options: FrameParserOptions, chunks: Uint8Array[]): ParserEvent[] {
  const sink = new RecordingSink()
  const parser = new FrameParser(options, sink)
  for (const chunk of chunks) parser.push(Buffer.from(chunk))
  return sink.events
}

/**
 * Feeds `input` to a parser (a) whole, (b) split in two at every byte
 * boundary, (c) one byte at a time, and asserts that all runs report the
 * same events. Returns the events of the whole-input run.
 */
export function parseEveryWay (t: Test, input: Uint8Array, options: FrameParserOptions): ParserEvent[] {
  const bytes = Buffer.from(input)
  const reference = parseChunks(options, [bytes])

  let firstBadSplit = -1
  let badSplitEvents: ParserEvent[] = []
  // One scratch copy, refreshed for every run (the parser may unmask it in
  // place); each run's events are compared before the next overwrites it.
  const scratch = Buffer.allocUnsafe(bytes.length)
  for (let cut = 0; cut <= bytes.length; cut++) {
    bytes.copy(scratch)
    const sink = new RecordingSink()
    const parser = new FrameParser(options, sink)
    parser.push(scratch.subarray(0, cut))
    parser.push(scratch.subarray(cut))
    const events = sink.events
    if (!sameEvents(reference, events)) {
      firstBadSplit = cut
      badSplitEvents = events
      break
    }
  }
  t.ok(firstBadSplit === -1, 'same events when split in two at every byte boundary',
    firstBadSplit === -1 ? {} : { cut: firstBadSplit, found: summarize(badSplitEvents), wanted: summarize(reference) })

  const sink = new RecordingSink()
  const parser = new FrameParser(options, sink)
  for (let i = 0; i < bytes.length; i++) parser.push(Buffer.of(bytes[i]))
  t.ok(sameEvents(reference, sink.events), 'same events when fed one byte at a time',
    { found: summarize(sink.events), wanted: summarize(reference) })
  return reference
}

export type HandlerEvent =
  | { type: 'message', data: Buffer, isBinary: boolean }
  | { type: 'ping', data: Buffer }
  | { type: 'pong', data: Buffer }
  | { type: 'closeFrame', code: number, reason: string }
  | { type: 'error', error: Error }
  | { type: 'closeTransport' }

/** A ProtocolHandler that records everything; `written` holds copies of the bytes written. */
export class RecordingHandler implements ProtocolHandler {
  readonly events: HandlerEvent[] = []
  readonly written: Buffer[] = []
  /** Writes and events interleaved, in order: 'write', 'message', 'closeFrame', 'closeTransport'... */
  readonly log: string[] = []
  closeTransportCalls = 0
  /** Called after each write, e.g. to forward the bytes to a peer. */
  onWrite: ((data: Buffer) => void) | null = null
  /** Called after each recorded event. */
  onEvent: ((event: HandlerEvent) => void) | null = null

  write (data: Buffer): void {
    const copy = Buffer.from(data)
    this.written.push(copy)
    this.log.push('write')
    this.onWrite?.(copy)
  }

  private record (event: HandlerEvent): void {
    this.events.push(event)
    this.log.push(event.type)
    this.onEvent?.(event)
  }

  onMessage (data: Buffer, isBinary: boolean): void {
    this.record({ type: 'message', data: Buffer.from(data), isBinary })
  }

  onPing (data: Buffer): void {
    this.record({ type: 'ping', data: Buffer.from(data) })
  }

  onPong (data: Buffer): void {
    this.record({ type: 'pong', data: Buffer.from(data) })
  }

  onCloseFrame (code: number, reason: string): void {
    this.record({ type: 'closeFrame', code, reason })
  }

  onError (error: Error): void {
    this.record({ type: 'error', error })
  }

  closeTransport (): void {
    this.closeTransportCalls++
    this.record({ type: 'closeTransport' })
  }

  /** Every frame written so far, decoded. */
  frames (): Frame[] {
    return decodeFrames(Buffer.concat(this.written))
  }

  /** Text of the messages received so far. */
  texts (): string[] {
    const out: string[] = []
    for (const e of this.events) if (e.type === 'message') out.push(e.data.toString('utf8'))
    return out
  }

  /** A promise for the first future event matching `match`. */
  waitFor (match: (event: HandlerEvent) => boolean): Promise<HandlerEvent> {
    return new Promise((resolve) => {
      const previous = this.onEvent
      this.onEvent = (event) => {
        previous?.(event)
        if (match(event)) {
          this.onEvent = previous
          resolve(event)
        }
      }
    })
  }
}

/**
 * A client and a server WebSocketProtocol wired back to back. Writes are
 * queued and delivered by `flush()` (or automatically when `autoFlush` is
 * set), so neither side is re-entered from inside its own parser.
 */
export class Link {
  readonly client: WebSocketProtocol
  readonly server: WebSocketProtocol
  readonly clientHandler = new RecordingHandler()
  readonly serverHandler = new RecordingHandler()
  private readonly toServer: Buffer[] = []
  private readonly toClient: Buffer[] = []
  private flushing = false
  autoFlush: boolean
  /** Set when a side asked for the transport to close: the link is then cut in both directions. */
  transportClosed = false

  constructor (options: {
    maxMessageSize?: number
    client?: Partial<ConstructorParameters<typeof WebSocketProtocol>[0]>
    server?: Partial<ConstructorParameters<typeof WebSocketProtocol>[0]>
    autoFlush?: boolean
  } = {}) {
    const maxMessageSize = options.maxMessageSize ?? 1 << 20
    this.client = new WebSocketProtocol({ maxMessageSize, ...options.client, role: 'client' }, this.clientHandler)
    this.server = new WebSocketProtocol({ maxMessageSize, ...options.server, role: 'server' }, this.serverHandler)
    this.autoFlush = options.autoFlush ?? true
    this.clientHandler.onWrite = (data) => {
      this.toServer.push(data)
      if (this.autoFlush) this.flush()
    }
    this.serverHandler.onWrite = (data) => {
      this.toClient.push(data)
      if (this.autoFlush) this.flush()
    }
    const cut = (): void => {
      // Takes effect at the end of the current flush, so bytes already written still arrive.
      this.transportClosed = true
      if (this.autoFlush) this.flush()
    }
    this.clientHandler.onEvent = (e) => { if (e.type === 'closeTransport') cut() }
    this.serverHandler.onEvent = (e) => { if (e.type === 'closeTransport') cut() }
  }

  flush (): void {
    if (this.flushing) return
    this.flushing = true
    try {
      while (this.toServer.length > 0 || this.toClient.length > 0) {
        const s = this.toServer.shift()
        if (s !== undefined) this.server.receive(s)
        const c = this.toClient.shift()
        if (c !== undefined) this.client.receive(c)
      }
      if (this.transportClosed) {
        this.toServer.length = 0
        this.toClient.length = 0
        this.client.transportClosed()
        this.server.transportClosed()
      }
    } finally {
      this.flushing = false
    }
  }
}
