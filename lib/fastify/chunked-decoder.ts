/*
 * Chunked transfer decoding (RFC 9112 §7.1) exactly as strict as Node's own
 * HTTP parser (llhttp, without its lenient flags), so a body the plugin reads
 * itself never frames differently from the same bytes read by Node: a second
 * parser that is laxer than the first is how request smuggling starts.
 *
 * What llhttp accepts, and so what this accepts (checked byte for byte by the
 * differential test in test/chunked-decoder.test.ts):
 *   chunk      = 1*HEXDIG *( ";" ext-name [ "=" ext-value ] ) CRLF data CRLF
 *   ext-name   = *tchar            (may be empty, but not at the end of the line)
 *   ext-value  = *tchar, then optionally one quoted-string ("x" and x"y" both pass)
 *   trailers   = *( field-name ":" OWS field-value CRLF ) CRLF
 * No whitespace anywhere in the size line (no BWS around ";" or "="), CRLF
 * only (a bare LF or a bare CR is an error everywhere), no obs-fold, no
 * Content-Length or Transfer-Encoding field in the trailers.
 */

// llhttp's chunk-size counter is 64-bit; ours must stay exact in a double.
// A body of 2^53 bytes (8 PiB) can never be received, so refusing larger
// sizes at once changes no request that could ever complete.
const MAX_CHUNK_SIZE = Number.MAX_SAFE_INTEGER

// Node (node_http_parser.cc, kMaxChunkExtensionsSize) refuses a chunk whose
// extension names and values add up to more than 16 KiB, with 413.
const MAX_CHUNK_EXTENSIONS = 16 * 1024

// Node counts trailer names and values against the server's maxHeaderSize
// (default 16 KiB), as it does for the head, and answers 431 past it.
const DEFAULT_MAX_TRAILER_SIZE = 16 * 1024

const enum S {
  SizeFirst, Size, SizeLf,
  ExtStart, ExtName, ExtValue, ExtQuoted, ExtQuotedPair, ExtQuotedDone,
  Data, DataCr, DataLf,
  TrailerStart, TrailerName, TrailerOws, TrailerValue, TrailerLf, TrailersEndLf,
  Done
}

const CR = 0x0d
const LF = 0x0a
const SP = 0x20
const HTAB = 0x09
const DQUOTE = 0x22
const BACKSLASH = 0x5c

// Byte classes, one bit each.
const TCHAR = 1
const HEX = 2
const QDTEXT = 4
const QUOTED_PAIR = 8
const FIELD_VCHAR = 16
const CLASS = new Uint8Array(256)
for (let c = 0; c < 256; c++) {
  const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
  if (alnum || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c))) CLASS[c] |= TCHAR
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)) CLASS[c] |= HEX
  // RFC 9110 §5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
  if (c === HTAB || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80) CLASS[c] |= QDTEXT
  // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
  if (c === HTAB || (c >= 0x20 && c <= 0x7e) || c >= 0x80) CLASS[c] |= QUOTED_PAIR
  // Field values: HTAB, SP, VCHAR and obs-text; no other control bytes, no DEL.
  if (c === HTAB || (c >= 0x20 && c !== 0x7f)) CLASS[c] |= FIELD_VCHAR
}

function hexValue (c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57
}

export interface ChunkedDecoderOptions {
  /** Bytes of trailer names and values refused with 431, as Node does with its `maxHeaderSize`. Default 16 KiB. */
  maxTrailerSize?: number
}

/**
 * Incremental chunked decoding, fed bytes as they arrive; chunk extensions
 * and trailers are checked and dropped. Carries no line buffer: memory stays
 * constant whatever the peer sends.
 */
export class ChunkedDecoder {
  private state = S.SizeFirst
  private left = 0
  private extensionBytes = 0
  private trailerBytes = 0
  private readonly maxTrailerSize: number
  // The first letters of the current trailer name, lower-cased, to spot the framing fields.
  private fieldName = ''

  constructor (options: ChunkedDecoderOptions = {}) {
    this.maxTrailerSize = options.maxTrailerSize ?? DEFAULT_MAX_TRAILER_SIZE
  }

  /** The terminating zero-size chunk and the trailer section have been read. */
  get done (): boolean {
    return this.state === S.Done
  }

  /**
   * Appends the data bytes in `chunk` to `out` (as views of `chunk`); throws
   * an error with `statusCode` 400 (malformed), 413 (extensions too long) or
   * 431 (trailers too long) as Node would answer. Bytes after the end are ignored.
   */
  decode (chunk: Buffer, out: Buffer[]): void {
    let i = 0
    const n = chunk.length
    while (i < n) {
      const state = this.state
      if (state === S.Data) {
        const take = Math.min(this.left, n - i)
        out.push(chunk.subarray(i, i + take))
        i += take
        this.left -= take
        if (this.left === 0) this.state = S.DataCr
        continue
      }
      if (state === S.Done) return
      this.step(chunk[i++])
    }
  }

  private step (c: number): void {
    switch (this.state) {
      case S.SizeFirst:
        if ((CLASS[c] & HEX) === 0) throw malformed('invalid character in chunk size')
        this.left = hexValue(c)
        this.extensionBytes = 0
        this.state = S.Size
        return
      case S.Size:
        if ((CLASS[c] & HEX) !== 0) {
          this.left = this.left * 16 + hexValue(c)
          if (this.left > MAX_CHUNK_SIZE) throw malformed('chunk size too large')
        } else if (c === CR) {
          this.state = S.SizeLf
        } else if (c === 0x3b) { // ;
          this.state = S.ExtStart
        } else {
          throw malformed('invalid character in chunk size')
        }
        return
      case S.SizeLf:
        if (c !== LF) throw malformed('chunk size line not ended by CRLF')
        this.state = this.left === 0 ? S.TrailerStart : S.Data
        return
      case S.ExtStart:
        // llhttp refuses whitespace after ";" and a ";" that ends the line;
        // anything else is read as the (possibly empty) name.
        if (c === SP || c === CR) throw malformed('invalid character in chunk extension')
        this.state = S.ExtName
        this.step(c)
        return
      case S.ExtName:
        if ((CLASS[c] & TCHAR) !== 0) this.countExtension()
        else if (c === 0x3d) this.state = S.ExtValue // =
        else this.endExtension(c, 'invalid character in chunk extension name')
        return
      case S.ExtValue:
        if (c === DQUOTE) {
          this.countExtension()
          this.state = S.ExtQuoted
        } else if ((CLASS[c] & TCHAR) !== 0) {
          this.countExtension()
        } else {
          this.endExtension(c, 'invalid character in chunk extension value')
        }
        return
      case S.ExtQuoted:
        if (c === DQUOTE) this.state = S.ExtQuotedDone
        else if (c === BACKSLASH) this.state = S.ExtQuotedPair
        else if ((CLASS[c] & QDTEXT) === 0) throw malformed('invalid character in chunk extension quoted value')
        this.countExtension()
        return
      case S.ExtQuotedPair:
        if ((CLASS[c] & QUOTED_PAIR) === 0) throw malformed('invalid quoted-pair in chunk extension value')
        this.countExtension()
        this.state = S.ExtQuoted
        return
      case S.ExtQuotedDone:
        this.endExtension(c, 'invalid character after chunk extension quoted value')
        return
      case S.DataCr:
        if (c !== CR) throw malformed('chunk data not followed by CRLF')
        this.state = S.DataLf
        return
      case S.DataLf:
        if (c !== LF) throw malformed('chunk data not followed by CRLF')
        this.state = S.SizeFirst
        return
      case S.TrailerStart:
        if (c === CR) {
          this.state = S.TrailersEndLf
        } else if ((CLASS[c] & TCHAR) !== 0) {
          // A line that starts with whitespace (obs-fold) or a bare LF lands in the error below.
          this.fieldName = String.fromCharCode(c | 0x20)
          this.countTrailer()
          this.state = S.TrailerName
        } else {
          throw malformed('invalid character in trailer field name')
        }
        return
      case S.TrailerName:
        if ((CLASS[c] & TCHAR) !== 0) {
          if (this.fieldName.length < 18) this.fieldName += String.fromCharCode(c | 0x20)
          this.countTrailer()
        } else if (c === 0x3a) { // :
          // As in llhttp: these framing fields are refused in the trailer section of a chunked request.
          if (this.fieldName === 'content-length' || this.fieldName === 'transfer-encoding') {
            throw malformed(`a ${this.fieldName} trailer field is not allowed`)
          }
          this.state = S.TrailerOws
        } else {
          throw malformed('invalid character in trailer field name')
        }
        return
      case S.TrailerOws:
        // Leading whitespace is not part of the value (nor counted by Node).
        if (c === SP || c === HTAB) return
        this.state = S.TrailerValue
        this.step(c)
        return
      case S.TrailerValue:
        if (c === CR) this.state = S.TrailerLf
        else if ((CLASS[c] & FIELD_VCHAR) !== 0) this.countTrailer()
        else throw malformed('invalid character in trailer field value')
        return
      case S.TrailerLf:
        if (c !== LF) throw malformed('trailer field not ended by CRLF')
        this.state = S.TrailerStart
        return
      case S.TrailersEndLf:
        if (c !== LF) throw malformed('trailer section not ended by CRLF')
        this.state = S.Done
    }
  }

  /** What may follow an extension name or value: another extension or the end of the size line. */
  private endExtension (c: number, reason: string): void {
    if (c === 0x3b) this.state = S.ExtStart
    else if (c === CR) this.state = S.SizeLf
    else throw malformed(reason)
  }

  private countExtension (): void {
    if (++this.extensionBytes > MAX_CHUNK_EXTENSIONS) throw bodyError(413, 'chunk extensions too long')
  }

  private countTrailer (): void {
    if (++this.trailerBytes >= this.maxTrailerSize) throw bodyError(431, 'trailer section too large')
  }
}

function malformed (reason: string): Error & { statusCode: number } {
  return badRequestBody(`chunked body: ${reason}`)
}

function bodyError (statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode, code: 'WS_ERR_INVALID_REQUEST_BODY' })
}

/** An error about a request body that Fastify's body reader answers with this status. */
export function badRequestBody (message: string): Error & { statusCode: number } {
  return bodyError(400, message)
}
