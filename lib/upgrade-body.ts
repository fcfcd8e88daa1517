import type { IncomingHttpHeaders } from 'node:http'
import { Readable, type Duplex } from 'node:stream'
import { ChunkedDecoder, badRequestBody } from './chunked-decoder.js'

/**
 * The body of a request that arrived through the server's `upgrade` event
 * (Node stops parsing after the head and hands over the socket) but is
 * answered as plain HTTP: the bytes that came with the head, then the
 * socket's, cut at `Content-Length` or decoded from chunked encoding.
 * Returns null when the request has no body.
 */
export function upgradeRequestBody (headers: IncomingHttpHeaders, head: Buffer, socket: Duplex): Readable | null {
  const te = headers['transfer-encoding']
  if (te !== undefined && te.toLowerCase().split(',').pop()!.trim() === 'chunked') {
    return new UpgradeBody(head, socket, new ChunkedDecoder())
  }
  const length = Number(headers['content-length'] ?? 0)
  if (!(length > 0)) return null
  return new UpgradeBody(head, socket, new LengthDecoder(length))
}

/** Turns raw socket bytes into body bytes; `done` once the body is complete. */
interface BodyDecoder {
  readonly done: boolean
  /** Appends the body bytes in `chunk` to `out`; throws on malformed framing. */
  decode (chunk: Buffer, out: Buffer[]): void
}

class LengthDecoder implements BodyDecoder {
  private left: number
  constructor (length: number) {
    this.left = length
  }

  get done (): boolean {
    return this.left === 0
  }

  decode (chunk: Buffer, out: Buffer[]): void {
    const take = Math.min(this.left, chunk.length)
    if (take > 0) out.push(chunk.subarray(0, take))
    this.left -= take
  }
}


/** Pulls from the socket only while the body's consumer reads, and lets go of it at the end. */
class UpgradeBody extends Readable {
  private readonly socket: Duplex
  private readonly decoder: BodyDecoder
  private head: Buffer | null
  private attached = false

  constructor (head: Buffer, socket: Duplex, decoder: BodyDecoder) {
    super()
    this.head = head.length > 0 ? head : null
    this.socket = socket
    this.decoder = decoder
    this.onData = this.onData.bind(this)
    this.onEnd = this.onEnd.bind(this)
  }

  override _read (): void {
    if (this.head !== null) {
      const head = this.head
      this.head = null
      if (!this.feed(head)) return
    }
    if (this.decoder.done) return
    if (!this.attached) {
      this.attached = true
      this.socket.on('data', this.onData)
      this.socket.on('end', this.onEnd)
      this.socket.on('close', this.onEnd)
    }
    this.socket.resume()
  }

  /** Returns false once the body is complete or failed. */
  private feed (chunk: Buffer): boolean {
    const out: Buffer[] = []
    try {
      this.decoder.decode(chunk, out)
    } catch (error) {
      this.detach()
      this.destroy(error as Error)
      return false
    }
    let wantsMore = true
    for (const piece of out) wantsMore = this.push(piece)
    if (this.decoder.done) {
      this.detach()
      this.push(null)
      return false
    }
    if (!wantsMore) this.socket.pause()
    return true
  }

  private onData (chunk: Buffer): void {
    this.feed(chunk)
  }

  private onEnd (): void {
    if (this.decoder.done) return
    this.detach()
    this.destroy(badRequestBody('the connection ended before the request body was complete'))
  }

  private detach (): void {
    if (!this.attached) return
    this.attached = false
    this.socket.removeListener('data', this.onData)
    this.socket.removeListener('end', this.onEnd)
    this.socket.removeListener('close', this.onEnd)
    this.socket.pause()
  }
}
