import { maskInto } from './mask.js'
import type { Utf8Validator } from './utf8.js'

/**
 * Frames up to this size that span reads get their whole buffer at once (one
 * copy, unmasked on the way); larger ones are collected as their bytes
 * arrive, so memory follows what the peer sent, not what its header claims.
 */
export const EAGER_PAYLOAD_LIMIT = 64 * 1024
// A piece of a read is kept as a view of it only from this size on: a view
// costs a Buffer object (about a hundred bytes of heap) whatever its length,
// which is noise against 4 KiB (~2.5 %) but 100 times the payload of a 1-byte
// read. Node 20 and 24 hand each TCP or TLS read over in an ArrayBuffer of
// exactly its size (up to 64 KiB for TCP, 16 KiB for TLS), so the large
// reads of a fast peer pass this and are not copied.
const VIEW_MIN = 4 * 1024
// Smaller pieces are gathered into a tail buffer of up to this size: the
// first tail of a frame is VIEW_MIN, later ones grow with the bytes received,
// never past what the frame still owes.
const TAIL_SIZE = 64 * 1024

/**
 * The payload of one frame that spans reads (a control frame, or a data
 * message in one frame), collected as it arrives, unmasked on the way.
 *
 * A frame over EAGER_PAYLOAD_LIMIT is kept as pieces, joined at the end.
 * A piece is a view of its chunk (no copy) where what the view pins is
 * bounded: the frame's last piece (joined at once, so pinned for no time),
 * its first piece of VIEW_MIN or more (one chunk per frame), and any piece of
 * VIEW_MIN or more whose chunk is at most twice its size (a fast peer's
 * reads all are). Otherwise a piece of VIEW_MIN or more is copied into a
 * buffer of its own size, and smaller ones are gathered into the open tail,
 * set aside when full, or when a view comes next: kept as a view of the tail
 * if they fill half of it, else copied out at their size.
 *
 * So, per payload byte received and whatever the segmentation, at most 2
 * bytes are held (a view pins at most twice itself, a copy holds 1), plus at
 * most two Buffer objects (~100 bytes each) per 4 KiB, plus the first
 * piece's chunk and the open tail (each up to 64 KiB with TCP reads):
 * held ≤ 2 × received + 128 KiB + ~5 %. Keeping every read as a view, as
 * before, held over 100 bytes per byte for 1-byte reads (a Buffer object
 * each, and for reads that are slices of a larger buffer, all of it).
 */
export class FramePayload {
  readonly length: number
  received = 0
  // null for a frame within EAGER_PAYLOAD_LIMIT: `tail` is then its whole payload.
  private readonly pieces: Buffer[] | null
  private tail: Buffer | null = null
  private tailFilled = 0

  /** `length`: the frame's payload length, from its header. */
  constructor (length: number) {
    this.length = length
    if (length <= EAGER_PAYLOAD_LIMIT) {
      this.pieces = null
      this.tail = Buffer.allocUnsafe(length)
    } else {
      this.pieces = []
    }
  }

  /** Bytes the frame still owes. */
  get missing (): number {
    return this.length - this.received
  }

  /**
   * Adds `count` (at most `missing`) bytes of `chunk` from `offset`,
   * unmasking them with `key` when given and checking them with `utf8` when
   * given. Returns false if they are not valid UTF-8. A piece kept as a view
   * is unmasked in place: the parser owns the chunks it is given.
   */
  add (chunk: Buffer, offset: number, count: number, key: Uint8Array | null, utf8: Utf8Validator | null): boolean {
    const pieces = this.pieces
    if (pieces === null) {
      const at = this.tailFilled
      this.tailFilled = at + count
      return this.copy(chunk, offset, this.tail!, at, count, key, utf8)
    }
    const last = count === this.missing
    if (count >= VIEW_MIN || last) {
      if (last || this.received === 0 || chunk.buffer.byteLength <= 2 * count) {
        if (this.tailFilled > 0) this.setTailAside(last)
        const piece = chunk.subarray(offset, offset + count)
        pieces.push(piece)
        // Unmasked as it arrives, while the bytes are still in cache: deferring
        // that to the end of a large frame adds its whole cost to the latency.
        return this.copy(piece, 0, piece, 0, count, key, utf8)
      }
      if (this.tailFilled === 0) {
        const own = Buffer.allocUnsafeSlow(count)
        pieces.push(own)
        return this.copy(chunk, offset, own, 0, count, key, utf8)
      }
    }
    // Not the last piece, so the frame does not complete in this loop.
    while (count > 0) {
      let tail = this.tail
      if (tail === null) {
        // allocUnsafeSlow: a buffer of its own, not a slice that would pin Node's shared pool.
        const size = Math.min(this.missing, Math.max(VIEW_MIN, Math.min(this.received, TAIL_SIZE)))
        tail = this.tail = Buffer.allocUnsafeSlow(size)
      }
      const at = this.tailFilled
      const n = Math.min(count, tail.length - at)
      if (!this.copy(chunk, offset, tail, at, n, key, utf8)) return false
      offset += n
      count -= n
      if (at + n === tail.length) {
        pieces.push(tail)
        this.tail = null
        this.tailFilled = 0
      } else {
        this.tailFilled = at + n
      }
    }
    return true
  }

  /** The whole payload, once `missing` is 0. */
  take (): Buffer {
    return this.pieces === null ? this.tail! : Buffer.concat(this.pieces, this.length)
  }

  /**
   * Ends the tail's piece before a view. Kept as a view of the tail if the
   * frame is about to be joined or it fills half the tail; else copied out,
   * and the tail is reused.
   */
  private setTailAside (joinedNow: boolean): void {
    const tail = this.tail!
    const filled = this.tailFilled
    if (joinedNow || 2 * filled >= tail.length) {
      this.pieces!.push(tail.subarray(0, filled))
      this.tail = null
    } else {
      const own = Buffer.allocUnsafeSlow(filled)
      tail.copy(own, 0, 0, filled)
      this.pieces!.push(own)
    }
    this.tailFilled = 0
  }

  /** Copies (unmasking with `key`, if given) `count` bytes and checks them with `utf8`, if given; counts them as received. */
  private copy (source: Buffer, from: number, target: Buffer, at: number, count: number, key: Uint8Array | null, utf8: Utf8Validator | null): boolean {
    if (key !== null) {
      maskInto(source, from, target, at, count, key, this.received & 3)
    } else if (source !== target) {
      source.copy(target, at, from, from + count)
    }
    this.received += count
    return utf8 === null || utf8.push(target.subarray(at, at + count))
  }
}
