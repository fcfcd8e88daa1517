import type { EventEmitter } from 'node:events'
import { maxHeaderSize, type IncomingHttpHeaders } from 'node:http'
import { Readable, type Duplex } from 'node:stream'
import { ChunkedDecoder, badRequestBody } from './chunked-decoder.js'

/**
 * The body of a request that arrived through the server's `upgrade` event
 * (Node stops parsing after the head and hands over the socket) but is
 * answered as plain HTTP: the bytes that came with the head, then the
 * socket's, cut at `Content-Length` or decoded from chunked encoding.
 * Returns null when the request has no body.
 *
 * On a Node with `shouldUpgradeCallback` (lib/upgrade-filter.ts) only
 * WebSocket handshakes, which have no body, come this way, unless the app has
 * an `upgrade` listener of its own; on older Nodes every upgrade request does.
 *
 * `response` is the response bound to the socket: once it has finished, the
 * body is of no use to anyone, and the reader lets go of the socket.
 */
export function upgradeRequestBody (headers: IncomingHttpHeaders, head: Buffer, socket: Duplex, response?: EventEmitter): Readable | null {
  const te = headers['transfer-encoding']
  let decoder: BodyDecoder
  if (te !== undefined) {
    // Node has already refused "chunked" followed by another coding. A request
    // whose last coding is not chunked has no length it can be read to (RFC 9112
    // §6.3): Node answers 400 without an upgrade listener, so do we.
    if (te.toLowerCase().split(',').pop()!.trim() !== 'chunked') {
      return new FailedBody(badRequestBody('Transfer-Encoding of a request must end with chunked'))
    }
    decoder = new ChunkedDecoder({ maxTrailerSize: serverMaxHeaderSize(socket) })
  } else {
    // Node has checked Content-Length (digits only, not repeated, not with Transfer-Encoding).
    const length = Number(headers['content-length'] ?? 0)
    if (!(length > 0)) return null
    decoder = new LengthDecoder(length)
  }
  const body = new UpgradeBody(head, socket, decoder)
  if (response !== undefined) {
    const release = body.release.bind(body)
    response.once('finish', release)
    response.once('close', release)
  }
  return body
}

/** The limit Node applies to this server's heads (and trailers): its `maxHeaderSize` option, else the process-wide one. */
function serverMaxHeaderSize (socket: Duplex): number {
  const server = (socket as { server?: { maxHeaderSize?: number } }).server
  return server?.maxHeaderSize ?? maxHeaderSize
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


/** A body that fails as soon as it is read: framing Node would refuse. */
class FailedBody extends Readable {
  private readonly error: Error

  constructor (error: Error) {
    super()
    this.error = error
    this.on('error', ignore)
  }

  override _read (): void {
    this.destroy(this.error)
  }
}

/**
 * Pulls from the socket only while the body's consumer reads, and lets go of
 * it at the end, on an error, or once the response has finished.
 */
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
    // Fastify removes its listeners when it stops reading (at bodyLimit, say)
    // while the socket may still end early or bring malformed framing: an
    // 'error' then must not be an unhandled one, which would end the process.
    // Whoever still listens gets it as well.
    this.on('error', ignore)
  }

  /** The response has gone out: stop reading, and end quietly. */
  release (): void {
    this.detach()
    this.head = null
    if (!this.destroyed) this.destroy()
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

function ignore (): void {}
