import { createHash } from 'node:crypto'
import type { Test } from 'tap'
import type { FrameParserOptions, FrameParserSink, ProtocolError, ProtocolHandler } from '../../lib/protocol/index.js'
import { FrameParser, WebSocketProtocol } from '../../lib/protocol/index.js'

/** Small seeded PRNG (mulberry32) so that failures of randomised tests reproduce. */
export function prng (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** An integer in [min, max] drawn from `random`. */
export function randomInt (random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1))
}

export function randomBytesSeeded (random: () => number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) out[i] = (random() * 256) | 0
  return out
}

/** Random text of at least `byteLength` UTF-8 bytes, mixing 1- to 4-byte characters. */
export function randomText (random: () => number, byteLength: number): string {
  const samples = ['a', 'Z', '7', ' ', '~', 'é', 'ß', 'Ω', 'ж', '€', '中', '✓', '\u{ffff}', '😀', '𝄞', '\u{10ffff}']
  let out = ''
  let bytes = 0
  while (bytes < byteLength) {
    const ch = samples[(random() * samples.length) | 0]
    out += ch
    bytes += Buffer.byteLength(ch)
  }
  return out
}

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

/**
 * Builds a frame byte by byte, independently of the library's writer, so
 * parser tests do not rely on the code they would be checking it against.
 */
export function frame (f: RawFrame): Buffer {
  const payload = typeof f.payload === 'string' ? Buffer.from(f.payload, 'utf8') : Buffer.from(f.payload ?? [])
  const key = f.mask === true ? TEST_MASK_KEY : f.mask instanceof Uint8Array ? f.mask : null
  const length = payload.length
  const bits = f.lengthBits ?? (length < 126 ? 7 : length < 65536 ? 16 : 64)
  const head: number[] = []
  head.push((f.fin === false ? 0 : 0x80) | (f.rsv1 === true ? 0x40 : 0) | (f.rsv2 === true ? 0x20 : 0) |
    (f.rsv3 === true ? 0x10 : 0) | f.opcode)
  const maskBit = key !== null ? 0x80 : 0
  if (bits === 7) {
    head.push(maskBit | length)
  } else if (bits === 16) {
    head.push(maskBit | 126, (length >>> 8) & 0xff, length & 0xff)
  } else {
    const high = Math.floor(length / 0x100000000)
    head.push(maskBit | 127,
      (high >>> 24) & 0xff, (high >>> 16) & 0xff, (high >>> 8) & 0xff, high & 0xff,
      (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff)
  }
  if (key !== null) head.push(key[0], key[1], key[2], key[3])
  const body = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) body[i] = key !== null ? payload[i] ^ key[i & 3] : payload[i]
  return Buffer.concat([Buffer.from(head), body])
}

/** Builds several frames back to back. */
export function frames (...list: RawFrame[]): Buffer {
  return Buffer.concat(list.map(frame))
}

export function naiveMask (data: Uint8Array, key: Uint8Array, keyPhase = 0): Buffer {
  const out = Buffer.allocUnsafe(data.length)
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ key[(keyPhase + i) & 3]
  return out
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

/** Splits `data` into random chunks (possibly empty ones) using `random`. */
export function randomChunks (random: () => number, data: Buffer, maxChunk: number): Buffer[] {
  const out: Buffer[] = []
  let offset = 0
  while (offset < data.length) {
    const size = randomInt(random, 0, maxChunk)
    out.push(data.subarray(offset, offset + size))
    offset += size
  }
  return out
}

export interface DecodedFrame {
  fin: boolean
  rsv1: boolean
  rsv2: boolean
  rsv3: boolean
  opcode: number
  masked: boolean
  key: Buffer | null
  /** Unmasked payload. */
  payload: Buffer
}

/** Decodes complete frames from `data`, without validating anything. Throws if the data ends mid-frame. */
export function decodeFrames (data: Buffer): DecodedFrame[] {
  const out: DecodedFrame[] = []
  let i = 0
  while (i < data.length) {
    const b0 = data[i]
    const b1 = data[i + 1]
    let length = b1 & 0x7f
    let cursor = i + 2
    if (length === 126) {
      length = data.readUInt16BE(cursor)
      cursor += 2
    } else if (length === 127) {
      length = Number(data.readBigUInt64BE(cursor))
      cursor += 8
    }
    const masked = (b1 & 0x80) !== 0
    const key = masked ? Buffer.from(data.subarray(cursor, cursor + 4)) : null
    if (masked) cursor += 4
    if (cursor + length > data.length) throw new Error('truncated frame')
    const raw = data.subarray(cursor, cursor + length)
    out.push({
      fin: (b0 & 0x80) !== 0,
      rsv1: (b0 & 0x40) !== 0,
      rsv2: (b0 & 0x20) !== 0,
      rsv3: (b0 & 0x10) !== 0,
      opcode: b0 & 0x0f,
      masked,
      key,
      payload: key !== null ? naiveMask(raw, key) : Buffer.from(raw)
    })
    i = cursor + length
  }
  return out
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
  frames (): DecodedFrame[] {
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

// UTF-8 corpus shared by the validator and parser tests.

/** Bytes from hex, spaces allowed. */
export const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

export const VALID_TEXTS = [
  '',
  'hello',
  'héllo wörld', // 2-byte
  'ß Ω ж ־', // 2-byte
  '€ 中文 ✓ \u{ffff} \u{e000}', // 3-byte, including the highest BMP code point
  '\u{d7ff}', // 3-byte just below the surrogates
  '𝄞 😀 👍🏽 👨‍👩‍👧 \u{10000} \u{10ffff}', // 4-byte, emoji with modifiers and joiners
  'mixed a é € 😀 b\u0000c\u007f'
]

/** Invalid sequences by class; `failsAt` is the index of the byte where a streaming validator must notice. */
export const INVALID_SEQUENCES: Array<{ name: string, bytes: Buffer, failsAt: number }> = [
  { name: 'overlong 2-byte C0 80', bytes: hex('c0 80'), failsAt: 0 },
  { name: 'overlong 2-byte C1 BF', bytes: hex('c1 bf'), failsAt: 0 },
  { name: 'overlong 3-byte E0 80 80', bytes: hex('e0 80 80'), failsAt: 1 },
  { name: 'overlong 3-byte E0 9F BF', bytes: hex('e0 9f bf'), failsAt: 1 },
  { name: 'overlong 4-byte F0 80 80 80', bytes: hex('f0 80 80 80'), failsAt: 1 },
  { name: 'overlong 4-byte F0 8F BF BF', bytes: hex('f0 8f bf bf'), failsAt: 1 },
  { name: 'high surrogate ED A0 80', bytes: hex('ed a0 80'), failsAt: 1 },
  { name: 'low surrogate ED BF BF', bytes: hex('ed bf bf'), failsAt: 1 },
  { name: 'above U+10FFFF F4 90 80 80', bytes: hex('f4 90 80 80'), failsAt: 1 },
  { name: 'lead byte F5', bytes: hex('f5 80 80 80'), failsAt: 0 },
  { name: 'lead byte F7', bytes: hex('f7 bf bf bf'), failsAt: 0 },
  { name: 'lead byte F8 (5-byte form)', bytes: hex('f8 88 80 80 80'), failsAt: 0 },
  { name: 'lead byte FE', bytes: hex('fe'), failsAt: 0 },
  { name: 'byte FF', bytes: hex('ff'), failsAt: 0 },
  { name: 'lone continuation byte 80', bytes: hex('80'), failsAt: 0 },
  { name: 'lone continuation byte BF after text', bytes: hex('41 42 bf'), failsAt: 2 },
  { name: 'missing continuation (C3 41)', bytes: hex('c3 41'), failsAt: 1 },
  { name: 'missing continuation (E2 82 41)', bytes: hex('e2 82 41'), failsAt: 2 },
  { name: 'missing continuation (F0 9F 98 41)', bytes: hex('f0 9f 98 41'), failsAt: 3 },
  { name: 'extra continuation (C3 A9 A9)', bytes: hex('c3 a9 a9'), failsAt: 2 },
  { name: 'valid text then overlong', bytes: Buffer.concat([Buffer.from('abc €'), hex('e0 80 80')]), failsAt: 8 }
]

/** Valid prefixes that stop mid-code-point: fine so far, but a message may not end there. */
export const TRUNCATED_SEQUENCES: Array<{ name: string, bytes: Buffer }> = [
  { name: '2-byte lead only', bytes: hex('c3') },
  { name: '3-byte, 1 of 2 continuations', bytes: hex('e2 82') },
  { name: '3-byte lead only', bytes: hex('e2') },
  { name: '4-byte, 2 of 3 continuations', bytes: hex('f0 9f 98') },
  { name: 'text then 4-byte lead', bytes: Buffer.concat([Buffer.from('ok '), hex('f0')]) },
  { name: 'E0 with its lowest valid second byte', bytes: hex('e0 a0') },
  { name: 'F4 with its highest valid second byte', bytes: hex('f4 8f bf') }
]
