import { Duplex } from 'node:stream'

/**
 * One end of an in-memory, full-duplex byte pipe: what one end writes, the
 * other reads. Ending one side's writes ends the other's reads (a TCP FIN);
 * destroying one end destroys both (a reset).
 */
class PipeEnd extends Duplex {
  peer: PipeEnd | null = null
  remoteAddress = '127.0.0.1'
  remotePort = 0

  override _read (): void {}

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    // Copied so neither end can observe the other mutating a buffer after writing it.
    this.peer?.push(Buffer.from(chunk))
    callback()
  }

  override _final (callback: (err?: Error | null) => void): void {
    this.peer?.push(null)
    callback()
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    const peer = this.peer
    this.peer = null
    if (peer !== null && !peer.destroyed) process.nextTick(() => peer.destroy())
    callback(err)
  }

  // The socket methods an HTTP server calls when they exist.
  setNoDelay (): this { return this }
  setKeepAlive (): this { return this }
  setTimeout (): this { return this }
}

/** Two connected ends of an in-memory duplex pipe. */
export function createDuplexPair (): [Duplex, Duplex] {
  const a = new PipeEnd()
  const b = new PipeEnd()
  a.peer = b
  b.peer = a
  return [a, b]
}
