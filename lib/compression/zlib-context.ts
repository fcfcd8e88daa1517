import zlib from 'node:zlib'

/**
 * One raw DEFLATE compression or decompression context (a Node zlib stream)
 * that lives across messages, run either synchronously on the caller's
 * thread or asynchronously on libuv's thread pool.
 *
 * This is the one file that reaches into Node's zlib internals. Node has no
 * public synchronous call on a context that outlives the call: its
 * `zlib.deflateRawSync()` family builds a stream, runs it once through
 * `_processChunk` and closes it (so `_processChunk` cannot be used on a
 * stream we keep). What those helpers run underneath is the handle's
 * `writeSync(flush, input, inOffset, inLength, output, outOffset, outLength)`,
 * which leaves the output and input still available in the stream's
 * `_writeState` ([availOut, availIn]) and reports a zlib error through the
 * stream (`errored`, then an `error` event). That is what `runSync` uses.
 * It is the same on Node 20, 22 and 24; test/compression/zlib-context.test.ts
 * checks the shape and the behaviour, and fails loudly if a version changes it.
 * The asynchronous path uses only the public stream API.
 */

interface ZlibHandle {
  writeSync (flush: number, input: Uint8Array, inOffset: number, inLength: number,
    output: Uint8Array, outOffset: number, outLength: number): void
}
type ZlibStream = (zlib.DeflateRaw | zlib.InflateRaw) & {
  _handle: ZlibHandle | null
  _writeState: Uint32Array
}

export type ContextKind = 'deflate' | 'inflate'

export interface ContextOptions {
  windowBits: number
  level?: number
  memLevel?: number
}

const { Z_SYNC_FLUSH } = zlib.constants

/** Counters for tests and diagnostics: contexts open now, and bytes inflated in total. */
export const zlibStats = { open: 0, inflated: 0 }

// Output of synchronous runs lands here first and is copied out, at its
// exact size, before the run returns: a small message then costs a slice of
// Node's buffer pool, not a fresh 64 KiB allocation pinned by a small view.
const SCRATCH_SIZE = 64 * 1024
let scratch: Buffer | null = null
// Later output buffers of a large result.
const CHUNK_SIZE = 64 * 1024

/**
 * Output collected by one operation. Pieces written by a synchronous run may
 * sit in the shared scratch buffer: `take()` or `detach()` before control
 * returns to the event loop.
 */
export class Output {
  length = 0
  private readonly pieces: Buffer[] = []
  private buf: Buffer | null = null
  private used = 0
  private inScratch = false

  /** Output chunks handed over by a stream (asynchronous path). */
  add (chunk: Buffer): void {
    this.pieces.push(chunk)
    this.length += chunk.length
  }

  /** Where a synchronous run writes next. */
  space (): Buffer {
    if (this.buf === null || this.used === this.buf.length) {
      if (this.length === 0 && !this.inScratch) {
        if (scratch === null) scratch = Buffer.allocUnsafe(SCRATCH_SIZE)
        this.buf = scratch
        this.inScratch = true
      } else {
        this.buf = Buffer.allocUnsafe(CHUNK_SIZE)
      }
      this.used = 0
    }
    return this.buf
  }

  get offset (): number {
    return this.used
  }

  commit (count: number): void {
    if (count === 0) return
    this.pieces.push(this.buf!.subarray(this.used, this.used + count))
    this.used += count
    this.length += count
  }

  /** Copies whatever sits in the scratch buffer out of it (before going asynchronous). */
  detach (): void {
    if (!this.inScratch) return
    const first = this.pieces.findIndex((p) => p.buffer === scratch!.buffer)
    for (let i = first; i >= 0 && i < this.pieces.length; i++) {
      if (this.pieces[i].buffer === scratch!.buffer) this.pieces[i] = Buffer.from(this.pieces[i])
    }
    if (this.buf === scratch) this.buf = null
    this.inScratch = false
  }

  /** Everything collected, as one buffer of its exact size, without its last `drop` bytes. */
  take (drop = 0): Buffer {
    const size = this.length - drop
    const out = Buffer.allocUnsafe(size)
    let at = 0
    for (const piece of this.pieces) {
      if (at >= size) break
      at += piece.copy(out, at, 0, Math.min(piece.length, size - at))
    }
    this.pieces.length = 0
    this.buf = null
    this.inScratch = false
    return out
  }

  /** Drops what was collected. */
  discard (): void {
    this.pieces.length = 0
    this.length = 0
    this.buf = null
    this.inScratch = false
  }

  /** Whether the output ends with `tail`. */
  endsWith (tail: Buffer): boolean {
    if (this.length < tail.length) return false
    let want = tail.length
    for (let i = this.pieces.length - 1; i >= 0 && want > 0; i--) {
      const piece = this.pieces[i]
      for (let j = piece.length - 1; j >= 0 && want > 0; j--) {
        if (piece[j] !== tail[--want]) return false
      }
    }
    return true
  }
}

/** An asynchronous operation in progress on a context. */
interface Pending {
  out: Output
  limit: number
  done: AsyncDone
}

/** How an asynchronous run ended: zlib's error, or whether it stopped past the limit, and the input bytes zlib took. */
export type AsyncDone = (err: Error | null, overLimit: boolean, consumed: number) => void

export class ZlibContext {
  readonly kind: ContextKind
  readonly options: ContextOptions
  /** The DEFLATE stream ended (a block with BFINAL set) before the input did. Cleared by reset(). */
  ended = false
  private stream: ZlibStream | null
  private pending: Pending | null = null
  // The stream's bytesWritten when the asynchronous run in progress started.
  private before = 0

  constructor (kind: ContextKind, options: ContextOptions) {
    this.kind = kind
    this.options = options
    const streamOptions: zlib.ZlibOptions = { windowBits: options.windowBits, flush: Z_SYNC_FLUSH }
    if (kind === 'deflate') {
      streamOptions.level = options.level
      streamOptions.memLevel = options.memLevel
    }
    const stream = (kind === 'deflate' ? zlib.createDeflateRaw(streamOptions) : zlib.createInflateRaw(streamOptions)) as ZlibStream
    if (stream._handle === null || typeof stream._handle.writeSync !== 'function' || !(stream._writeState instanceof Uint32Array)) {
      stream.close()
      throw new Error(`this Node.js (${process.version}) changed zlib's internals (_handle.writeSync, _writeState) that lib/compression/zlib-context.ts relies on`)
    }
    this.stream = stream
    // Attached now, so the stream is flowing before its first asynchronous
    // write: its output is then handed over as zlib produces it, which is
    // what lets a decompression bomb be stopped between two chunks.
    stream.on('data', (chunk: Buffer) => this.onData(chunk))
    stream.on('error', (err: Error) => this.settle(err, false))
    zlibStats.open++
  }

  /** Whether the context can still be used (zlib did not fail, it was not closed). */
  get usable (): boolean {
    return this.stream !== null && !this.stream.destroyed
  }

  /**
   * Runs `input[offset..]` through the context on this thread, flushing with
   * Z_SYNC_FLUSH, and appends the output to `out` until zlib has nothing
   * more to give or `out.length` passes `limit` (never by more than one
   * byte: the output room offered is capped). Returns the input offset
   * reached. Throws zlib's error (the context is then unusable).
   */
  runSync (input: Buffer, offset: number, out: Output, limit: number): number {
    const stream = this.stream
    if (stream === null || stream._handle === null) throw new Error('zlib context used after close')
    const handle = stream._handle
    const state = stream._writeState
    let inOffset = offset
    let inLength = input.length - offset
    for (;;) {
      const buf = out.space()
      const at = out.offset
      const room = Math.min(buf.length - at, limit + 1 - out.length)
      handle.writeSync(Z_SYNC_FLUSH, input, inOffset, inLength, buf, at, room)
      if (stream.errored !== null) throw stream.errored
      const availOut = state[0]
      const availIn = state[1]
      out.commit(room - availOut)
      if (this.kind === 'inflate') zlibStats.inflated += room - availOut
      inOffset += inLength - availIn
      inLength = availIn
      if (availOut !== 0) {
        // zlib stopped with room to spare: it needs more input, or the
        // stream ended (inflate only) with input left over.
        if (availIn !== 0) this.ended = true
        return inOffset
      }
      if (out.length > limit) return inOffset
    }
  }

  /**
   * Runs `parts` through the context on the thread pool, appending output
   * to `out`; calls `done(null, true)` as soon as `out.length` passes
   * `limit` (the stream is destroyed there, so zlib stops within one chunk of
   * output), `done(err)` if zlib fails. `out` must hold nothing in scratch.
   */
  runAsync (parts: Buffer[], out: Output, limit: number, done: AsyncDone): void {
    const stream = this.stream
    if (stream === null || stream.destroyed) {
      done(new Error('zlib context used after close'), false, 0)
      return
    }
    this.pending = { out, limit, done }
    this.before = stream.bytesWritten
    let total = 0
    for (const part of parts) total += part.length
    const last = parts.length - 1
    for (let i = 0; i < last; i++) stream.write(parts[i])
    stream.write(parts[last], (err) => {
      if (err) {
        this.settle(err, false)
        return
      }
      // Flowing mode hands output over before the write completes; anything
      // still buffered is read out here rather than assumed absent.
      while (this.pending !== null && stream.readableLength > 0 && stream.read() !== null);
      if (stream.bytesWritten - this.before < total) this.ended = true
      this.settle(null, false)
    })
  }

  /** Back to a fresh context (no history), for the next message. */
  reset (): void {
    this.ended = false
    this.stream?.reset()
  }

  /** Frees zlib's memory; an operation in progress fails. */
  close (): void {
    const stream = this.stream
    if (stream === null) return
    this.stream = null
    zlibStats.open--
    this.settle(new Error('zlib context closed'), false)
    stream.close()
  }

  private onData (chunk: Buffer): void {
    const pending = this.pending
    if (pending === null) return
    pending.out.add(chunk)
    if (this.kind === 'inflate') zlibStats.inflated += chunk.length
    if (pending.out.length > pending.limit) {
      this.stream?.destroy()
      this.settle(null, true)
    }
  }

  private settle (err: Error | null, overLimit: boolean): void {
    const pending = this.pending
    if (pending === null) return
    this.pending = null
    const consumed = this.stream === null ? 0 : this.stream.bytesWritten - this.before
    pending.done(err, overLimit, consumed)
  }
}
