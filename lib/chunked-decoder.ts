// Chunk-size and trailer lines are short; a peer sending an endless one is refused.
const MAX_LINE = 8 * 1024

const SIZE = 0
const DATA = 1
const DATA_END = 2
const TRAILER = 3
const DONE = 4

/**
 * Incremental RFC 9112 §7.1 chunked transfer decoding, fed bytes as they
 * arrive; chunk extensions and trailers are read and ignored.
 */
export class ChunkedDecoder {
  private state = SIZE
  private line = ''
  private left = 0

  /** The terminating zero-size chunk and the trailer section have been read. */
  get done (): boolean {
    return this.state === DONE
  }

  /** Appends the data bytes in `chunk` to `out`; throws (status 400) on malformed framing. */
  decode (chunk: Buffer, out: Buffer[]): void {
    let i = 0
    while (i < chunk.length && this.state !== DONE) {
      if (this.state === DATA) {
        const take = Math.min(this.left, chunk.length - i)
        out.push(chunk.subarray(i, i + take))
        i += take
        this.left -= take
        if (this.left === 0) this.state = DATA_END
        continue
      }
      const byte = chunk[i++]
      if (byte !== 0x0a) {
        if (this.line.length >= MAX_LINE) throw badRequestBody('chunked body: line too long')
        this.line += String.fromCharCode(byte)
        continue
      }
      // A line ended (CRLF, or a bare LF tolerated as RFC 9112 §2.2 allows).
      const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line
      this.line = ''
      if (this.state === SIZE) {
        const sizeText = line.split(';', 1)[0].trim()
        if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) throw badRequestBody('chunked body: invalid chunk size')
        this.left = parseInt(sizeText, 16)
        this.state = this.left === 0 ? TRAILER : DATA
      } else if (this.state === DATA_END) {
        if (line !== '') throw badRequestBody('chunked body: chunk data not followed by CRLF')
        this.state = SIZE
      } else if (line === '') {
        this.state = DONE
      }
    }
  }
}

/** An error about a request body that Fastify's body reader answers with this status. */
export function badRequestBody (message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode: 400 })
}
