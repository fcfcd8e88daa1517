import type { MessageExtension } from '../protocol/extension.js'
import { deflateAsync, deflateSync, inflate, SYNC_DEFLATE_LIMIT } from './codec.js'
import { borrowContext, returnContext } from './context-pool.js'
import { sharedLimiter, type Limiter } from './pool.js'
import type { DeflateParams, ResolvedCompression } from './types.js'
import { ZlibContext, type ContextOptions } from './zlib-context.js'

/**
 * zlib's raw deflate has no 8-bit window (zlib ≥ 1.2.9 refuses it; Node
 * quietly makes it 9). A window of 9 bits is still correct where 8 was
 * agreed: zlib never looks further back than the window minus 262 bytes
 * (MAX_DIST), so with 9 bits (512) every distance it emits is ≤ 250 and fits
 * the 256-byte window the peer may have allocated (RFC 7692 §7.1.2.2 limits
 * the window used, which this is). test/compression/window.test.ts parses
 * the output and checks every distance.
 */
export function deflateWindowBits (agreed: number): number {
  return Math.max(agreed, 9)
}

/**
 * The most bytes a compressed message may take on the wire when its
 * decompressed size is at most `maxSize`. Incompressible data grows a little
 * when deflated: zlib falls back to stored blocks of up to lit_bufsize bytes
 * (2^(memLevel+6)) with a 5-byte header each, so +0.03% at memLevel 8 and
 * +3.9% at memLevel 1, the worst a peer can choose. Allowing 1/16 more keeps
 * an incompressible message of exactly `maxSize` from being refused for its
 * wrapping, and bounds what a peer can make us buffer all the same.
 */
export function deflatedSizeLimit (maxSize: number): number {
  return maxSize + Math.ceil(maxSize / 16) + 64
}

const EMPTY = Buffer.alloc(0)

function closedError (): Error {
  return new Error('permessage-deflate: the connection closed')
}

/**
 * permessage-deflate (RFC 7692) for one connection.
 *
 * Each direction keeps a zlib context of its own for the connection's life
 * only when that direction uses context takeover; otherwise each message
 * borrows a shared, reset context (context-pool.ts) and gives it back, so an
 * idle connection holds no zlib state at all. A kept context costs, as RSS
 * once it has seen traffic, Node stream and its 16 KiB output buffer
 * included (Node 20, `node --expose-gc scripts/measure-deflate.mjs memory`):
 * a compressor at window 15 / memLevel 8 ~270 KiB (memLevel 9: 330 KiB;
 * window 12 / memLevel 5: 118 KiB), a decompressor at window 15 ~89 KiB
 * (window 12: 60 KiB, 9: 58 KiB). zlib's own state is ~260 KiB and ~48 KiB
 * of that; an unused stream ~9 KiB. ws keeps both per connection once a
 * message went each way, context takeover or not (it resets, never frees).
 */
class PerMessageDeflate implements MessageExtension {
  readonly name = 'permessage-deflate'
  private readonly threshold: number
  private readonly deflateOptions: ContextOptions
  private readonly inflateOptions: ContextOptions
  private readonly keepDeflate: boolean
  private readonly keepInflate: boolean
  private readonly limiter: Limiter
  // The connection's own contexts, only with context takeover, made on first use.
  private deflater: ZlibContext | null = null
  private inflater: ZlibContext | null = null
  private closed = false

  constructor (params: DeflateParams, role: 'server' | 'client', settings: ResolvedCompression) {
    const server = role === 'server'
    this.threshold = settings.threshold
    this.keepDeflate = !(server ? params.serverNoContextTakeover : params.clientNoContextTakeover)
    this.keepInflate = !(server ? params.clientNoContextTakeover : params.serverNoContextTakeover)
    this.deflateOptions = {
      windowBits: deflateWindowBits(server ? params.serverMaxWindowBits : params.clientMaxWindowBits),
      level: settings.level,
      memLevel: settings.memLevel
    }
    // A context kept for the connection uses the peer's window: it needs no
    // more, and a smaller one is less memory. Shared contexts use 15, which
    // decodes whatever window a peer agreed to, so all connections share them.
    this.inflateOptions = { windowBits: this.keepInflate ? (server ? params.clientMaxWindowBits : params.serverMaxWindowBits) : 15 }
    this.limiter = sharedLimiter(settings.concurrency)
  }

  /** zlib contexts this connection holds now (0 when idle without context takeover). For tests. */
  get heldContexts (): number {
    return (this.deflater !== null ? 1 : 0) + (this.inflater !== null ? 1 : 0)
  }

  encodedSizeLimit (maxSize: number): number {
    return deflatedSizeLimit(maxSize)
  }

  encode (data: Buffer, done: (err: Error | null, result?: Buffer, transformed?: boolean) => void): void {
    // Too small to be worth it; an empty message can never shrink (and a
    // sync flush of nothing after a sync flush produces no block to strip).
    if (data.length < this.threshold || data.length === 0) {
      done(null, data, false)
      return
    }
    if (this.closed) {
      done(closedError())
      return
    }
    const keep = this.keepDeflate
    const context = keep ? this.ownDeflater() : borrowContext('deflate', this.deflateOptions)
    if (data.length <= SYNC_DEFLATE_LIMIT) {
      let payload: Buffer
      try {
        payload = deflateSync(context, data)
      } catch (err) {
        this.dropDeflater(context)
        done(err as Error)
        return
      }
      this.finishDeflate(context, data, payload, done)
      return
    }
    deflateAsync(context, data, this.limiter, (err, payload) => {
      if (err !== null) {
        this.dropDeflater(context)
        done(err)
        return
      }
      this.finishDeflate(context, data, payload!, done)
    })
  }

  decode (data: Buffer, maxSize: number, done: (err: Error | null, result?: Buffer) => void): void {
    // No DEFLATE block fits in nothing: an empty payload is an empty message,
    // and the context is left alone so that it stays in step with the peer's.
    if (data.length === 0) {
      done(null, EMPTY)
      return
    }
    if (this.closed) {
      done(closedError())
      return
    }
    const keep = this.keepInflate
    const context = keep ? this.ownInflater() : borrowContext('inflate', this.inflateOptions)
    inflate(context, data, maxSize, this.limiter, (err, result) => {
      if (keep) {
        if (err !== null || !context.usable) this.dropInflater(context)
        // A stream the peer ended with BFINAL starts afresh with its next
        // message; history it might refer to is gone (RFC 7692 §7.2.3.2 peers
        // use sync flushes, as every known implementation does).
        else if (context.ended) context.reset()
      } else {
        returnContext(context)
      }
      if (err !== null) done(err)
      else done(null, result)
    })
  }

  close (): void {
    this.closed = true
    this.deflater?.close()
    this.deflater = null
    this.inflater?.close()
    this.inflater = null
  }

  private ownDeflater (): ZlibContext {
    if (this.deflater === null) this.deflater = new ZlibContext('deflate', this.deflateOptions)
    return this.deflater
  }

  private ownInflater (): ZlibContext {
    if (this.inflater === null) this.inflater = new ZlibContext('inflate', this.inflateOptions)
    return this.inflater
  }

  private finishDeflate (context: ZlibContext, data: Buffer, payload: Buffer, done: (err: Error | null, result?: Buffer, transformed?: boolean) => void): void {
    if (this.keepDeflate) {
      // The peer's decompressor must see every message this context saw, so
      // the message goes compressed even if it did not shrink.
      done(null, payload, true)
      return
    }
    returnContext(context)
    if (payload.length >= data.length) done(null, data, false)
    else done(null, payload, true)
  }

  /** A context that failed (or whose connection closed meanwhile) is closed, never reused. */
  private dropDeflater (context: ZlibContext): void {
    if (this.keepDeflate) {
      if (this.deflater === context) this.deflater = null
      context.close()
    } else {
      returnContext(context)
    }
  }

  private dropInflater (context: ZlibContext): void {
    if (this.inflater === context) this.inflater = null
    context.close()
  }
}

/**
 * The permessage-deflate extension of one connection, with the parameters
 * negotiated for it (lib/protocol/permessage-deflate.ts) and the route's
 * `compression` setting. `role` is this end's: the server compresses with
 * the server's window and context-takeover rule, the client with the client's.
 */
export function createDeflateExtension (params: DeflateParams, role: 'server' | 'client', settings: ResolvedCompression): MessageExtension {
  return new PerMessageDeflate(params, role, settings)
}
