// Test doubles for lib/compression: settings and parameters in one line, two
// WebSocketProtocols with permessage-deflate wired back to back with random
// chunking, and a DEFLATE reader (RFC 1951) that reports how far back a
// stream's matches reach, to check window sizes on what we send.

import { createDeflateExtension } from '../../lib/compression/deflate.js'
import type { DeflateParams, ResolvedCompression } from '../../lib/compression/types.js'
import { WebSocketProtocol, type MessageExtension } from '../../lib/protocol/index.js'
import { RecordingHandler, type HandlerEvent } from './protocol.js'

export function settings (overrides: Partial<ResolvedCompression> = {}): ResolvedCompression {
  return {
    threshold: 0,
    level: 6,
    memLevel: 8,
    serverContextTakeover: true,
    clientContextTakeover: true,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
    concurrency: 2,
    ...overrides
  }
}

export function params (overrides: Partial<DeflateParams> = {}): DeflateParams {
  return { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, ...overrides }
}

/** The extension's internal view, for tests of the memory it holds. */
export type InspectableExtension = MessageExtension & { heldContexts: number }

/** A RecordingHandler that also records decode-backlog signals. */
export class BacklogHandler extends RecordingHandler {
  readonly backlog: boolean[] = []
  onDecodeBacklog (backlogged: boolean): void {
    this.backlog.push(backlogged)
  }
}

/**
 * A client and a server protocol with permessage-deflate. What one side
 * writes is delivered to the other on `pump()` (or on the next macrotask
 * when `autoPump`), cut into chunks by `chunker` (default: as written).
 */
export class DeflatePair {
  readonly client: WebSocketProtocol
  readonly server: WebSocketProtocol
  readonly clientExt: InspectableExtension
  readonly serverExt: InspectableExtension
  readonly clientHandler = new BacklogHandler()
  readonly serverHandler = new BacklogHandler()
  chunker: (data: Buffer) => Buffer[] = (data) => [data]
  private readonly toServer: Buffer[] = []
  private readonly toClient: Buffer[] = []
  private scheduled = false

  constructor (options: { params?: DeflateParams, settings?: ResolvedCompression, maxMessageSize?: number, maxDecodeBacklog?: number } = {}) {
    const p = options.params ?? params()
    const s = options.settings ?? settings()
    const maxMessageSize = options.maxMessageSize ?? 1 << 20
    this.clientExt = createDeflateExtension(p, 'client', s) as InspectableExtension
    this.serverExt = createDeflateExtension(p, 'server', s) as InspectableExtension
    this.client = new WebSocketProtocol({ role: 'client', maxMessageSize, extension: this.clientExt, maxDecodeBacklog: options.maxDecodeBacklog }, this.clientHandler)
    this.server = new WebSocketProtocol({ role: 'server', maxMessageSize, extension: this.serverExt, maxDecodeBacklog: options.maxDecodeBacklog }, this.serverHandler)
    this.clientHandler.onWrite = (data) => { this.toServer.push(data); this.schedule() }
    this.serverHandler.onWrite = (data) => { this.toClient.push(data); this.schedule() }
  }

  private schedule (): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.pump()
    })
  }

  /** Delivers everything written so far. */
  pump (): void {
    const toServer = Buffer.concat(this.toServer.splice(0))
    const toClient = Buffer.concat(this.toClient.splice(0))
    if (toServer.length > 0) for (const chunk of this.chunker(toServer)) this.server.receive(chunk)
    if (toClient.length > 0) for (const chunk of this.chunker(toClient)) this.client.receive(chunk)
  }
}

/** Messages a handler received so far. */
export function received (h: RecordingHandler): Array<{ data: Buffer, isBinary: boolean }> {
  return h.events.flatMap((e) => e.type === 'message' ? [{ data: e.data, isBinary: e.isBinary }] : [])
}

/** Resolves once `h` has recorded `count` events matching `match` (at once if it has). */
export function until (h: RecordingHandler, count: number, match: (e: HandlerEvent) => boolean = (e) => e.type === 'message'): Promise<void> {
  const seen = (): number => h.events.filter(match).length
  if (seen() >= count) return Promise.resolve()
  return new Promise((resolve) => {
    const wait = (): void => {
      void h.waitFor(match).then(() => seen() >= count ? resolve() : wait())
    }
    wait()
  })
}

/** Resolves with the first error `h` records. */
export async function firstError (h: RecordingHandler): Promise<Error & { code?: string, closeCode?: number }> {
  const existing = h.events.find((e) => e.type === 'error')
  const event = existing ?? await h.waitFor((e) => e.type === 'error')
  return (event as { error: Error }).error
}

// --- A DEFLATE reader (RFC 1951 §3.2), slow and plain: only for checking what we send.

const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
const DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
const CODE_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

interface Huffman { counts: number[], symbols: number[] }

function huffman (lengths: number[]): Huffman {
  const counts = new Array<number>(16).fill(0)
  for (const l of lengths) counts[l]++
  counts[0] = 0
  const offsets = [0, 0]
  for (let i = 1; i < 15; i++) offsets[i + 1] = offsets[i] + counts[i]
  const symbols: number[] = []
  lengths.forEach((l, symbol) => { if (l !== 0) symbols[offsets[l]++] = symbol })
  return { counts, symbols }
}

const FIXED_LIT = huffman([...new Array<number>(144).fill(8), ...new Array<number>(112).fill(9), ...new Array<number>(24).fill(7), ...new Array<number>(8).fill(8)])
const FIXED_DIST = huffman(new Array<number>(30).fill(5))

/**
 * Reads a sequence of DEFLATE streams that share one history (messages of a
 * connection with context takeover, each with its 00 00 ff ff put back) and
 * reports the output and the farthest match distance seen.
 */
export class DeflateInspector {
  maxDistance = 0
  private history: number[] = []
  private data = Buffer.alloc(0)
  private pos = 0
  private bit = 0

  /** Decodes one message's payload (trailer appended here); returns its bytes. */
  message (payload: Buffer): Buffer {
    this.data = Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])])
    this.pos = 0
    this.bit = 0
    const start = this.history.length
    while (this.pos < this.data.length) {
      const final = this.bits(1)
      const type = this.bits(2)
      if (type === 0) this.stored()
      else if (type === 1) this.codes(FIXED_LIT, FIXED_DIST)
      else if (type === 2) this.dynamic()
      else throw new Error('invalid block type')
      if (final === 1) break
    }
    return Buffer.from(this.history.slice(start))
  }

  private bits (n: number): number {
    let value = 0
    for (let i = 0; i < n; i++) {
      if (this.pos >= this.data.length) throw new Error('out of input')
      value |= ((this.data[this.pos] >> this.bit) & 1) << i
      if (++this.bit === 8) { this.bit = 0; this.pos++ }
    }
    return value
  }

  private decode (h: Huffman): number {
    let code = 0
    let first = 0
    let index = 0
    for (let len = 1; len < 16; len++) {
      code |= this.bits(1)
      const count = h.counts[len]
      if (code - count < first) return h.symbols[index + (code - first)]
      index += count
      first = (first + count) << 1
      code <<= 1
    }
    throw new Error('bad code')
  }

  private stored (): void {
    if (this.bit !== 0) { this.bit = 0; this.pos++ }
    const len = this.data.readUInt16LE(this.pos)
    this.pos += 4
    for (let i = 0; i < len; i++) this.history.push(this.data[this.pos++])
  }

  private dynamic (): void {
    const nlen = this.bits(5) + 257
    const ndist = this.bits(5) + 1
    const ncode = this.bits(4) + 4
    const codeLengths = new Array<number>(19).fill(0)
    for (let i = 0; i < ncode; i++) codeLengths[CODE_ORDER[i]] = this.bits(3)
    const lencode = huffman(codeLengths)
    const lengths: number[] = []
    while (lengths.length < nlen + ndist) {
      const symbol = this.decode(lencode)
      if (symbol < 16) lengths.push(symbol)
      else if (symbol === 16) { const prev = lengths[lengths.length - 1]; for (let r = 3 + this.bits(2); r > 0; r--) lengths.push(prev) } else if (symbol === 17) { for (let r = 3 + this.bits(3); r > 0; r--) lengths.push(0) } else { for (let r = 11 + this.bits(7); r > 0; r--) lengths.push(0) }
    }
    this.codes(huffman(lengths.slice(0, nlen)), huffman(lengths.slice(nlen)))
  }

  private codes (lit: Huffman, dist: Huffman): void {
    for (;;) {
      const symbol = this.decode(lit)
      if (symbol < 256) {
        this.history.push(symbol)
      } else if (symbol === 256) {
        return
      } else {
        const l = symbol - 257
        const length = LENGTH_BASE[l] + this.bits(LENGTH_EXTRA[l])
        const d = this.decode(dist)
        const distance = DIST_BASE[d] + this.bits(DIST_EXTRA[d])
        if (distance > this.history.length) throw new Error('distance too far back')
        if (distance > this.maxDistance) this.maxDistance = distance
        for (let i = 0; i < length; i++) this.history.push(this.history[this.history.length - distance])
      }
    }
  }
}
