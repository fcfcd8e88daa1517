import type { WebSocketData } from '../connection/connection.js'
import { compressOnce } from '../compression/shared.js'
import type { DeflateParams, ResolvedCompression } from '../compression/types.js'
import { encodeFrame, toBuffer } from '../protocol/frame-writer.js'
import { Opcode } from '../protocol/opcodes.js'

/** What a connection negotiated, for broadcasts: the agreed parameters and its route's preferences. */
export interface NegotiatedDeflate {
  params: DeflateParams
  settings: ResolvedCompression
}

/**
 * One broadcast message's compressed frames, made at most once per set of
 * route preferences: every receiver whose server side starts each message
 * with a fresh context (server_no_context_takeover) can take the same
 * compressed bytes, since they refer to nothing sent before. A receiver that
 * keeps the context gets the message compressed through its own context
 * (`undefined` here), as its peer's inflater expects.
 */
export class CompressedBroadcast {
  private readonly payload: Buffer
  private readonly binary: boolean
  // Route preferences → the compressed frame (or null: send it as it is). Few routes, so a Map.
  private readonly frames = new Map<ResolvedCompression, { frame: Buffer, windowBits: number } | null>()

  constructor (data: WebSocketData, binary: boolean) {
    this.payload = typeof data === 'string' ? Buffer.from(data) : toBuffer(data)
    this.binary = binary
  }

  /** The frame for a receiver that negotiated `deflate`: shared compressed bytes, null for the plain frame, undefined to compress through its own context. */
  frameFor (deflate: NegotiatedDeflate): Buffer | null | undefined {
    if (!deflate.params.serverNoContextTakeover) return undefined
    let entry = this.frames.get(deflate.settings)
    if (entry === undefined) {
      const compressed = compressOnce(this.payload, deflate.settings)
      entry = compressed === null
        ? null
        : { frame: Buffer.concat(encodeFrame(this.binary ? Opcode.Binary : Opcode.Text, compressed.payload, { rsv1: true })), windowBits: compressed.windowBits }
      this.frames.set(deflate.settings, entry)
    }
    if (entry === null) return null
    // Compressed with a larger window than this receiver allows (it asked for a smaller server_max_window_bits).
    if (entry.windowBits > deflate.params.serverMaxWindowBits) return undefined
    return entry.frame
  }
}
