import type { WebSocketConnection, WebSocketData } from '../connection/connection.js'
import { kInternal } from '../connection/internal.js'
import { encodeMessageFrame } from '../protocol/frame-writer.js'
import { CompressedBroadcast, type NegotiatedDeflate } from './compressed-broadcast.js'

// What a server connection negotiated of permessage-deflate (set by the
// registry when it is accepted), so one message can be compressed once for it
// and every other receiver with the same route preferences.
export const kDeflate = Symbol('fastify-rfc6455.deflate')
export type DeflatingConnection = WebSocketConnection<any> & { [kDeflate]?: NegotiatedDeflate }

/**
 * One message for many receivers: `app.websocket.broadcast` and topic
 * publishes both go through `deliverTo`, so there is one delivery path. The
 * plain frame is encoded once when this is made; the compressed one at most
 * once per set of route preferences, on the first receiver that can take it.
 */
export class OutgoingMessage {
  private readonly frame: Buffer
  private compressed: CompressedBroadcast | undefined = undefined

  constructor (private readonly data: WebSocketData, private readonly binary: boolean) {
    this.frame = encodeMessageFrame(data, binary)
  }

  /** Queues the message on `conn`; false if it was not queued (closing, or refused or dropped at its `maxBufferedAmount`). */
  deliverTo (conn: WebSocketConnection<any>): boolean {
    const internal = conn[kInternal]
    const deflate = (conn as DeflatingConnection)[kDeflate]
    let own = this.frame
    if (deflate !== undefined) {
      this.compressed ??= new CompressedBroadcast(this.data, this.binary)
      const shared = this.compressed.frameFor(deflate)
      if (shared === undefined) {
        // This receiver's peer keeps our context: compress through it, in order.
        if (!internal.canSend || !internal.admit(undefined, false)) return false
        internal.core.send(this.data, this.binary)
        return true
      }
      if (shared !== null) own = shared
    }
    // A slow receiver is dropped or skipped by its own buffer limit (onBufferFull); the others are not slowed.
    return internal.enqueueFrame(own)
  }
}
