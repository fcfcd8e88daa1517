import { ProtocolError } from '../protocol/errors.js'
import type { Limiter } from './pool.js'
import { Output, type ZlibContext } from './zlib-context.js'

/**
 * One message through DEFLATE the way RFC 7692 §7.2 wants it: compressed
 * with a sync flush, the trailing empty stored block's 00 00 ff ff cut off;
 * decompressed with those four bytes put back, and the output counted as
 * it is produced.
 *
 * Synchronous or thread pool, decided by measurement (Node 20, 2-core EPYC,
 * level 6, memLevel 8, window 15; µs per message):
 *
 *   deflate, JSON   sync on the loop   thread pool: loop time / total CPU
 *   1 KiB                 8                      18 / 27
 *   3 KiB                16–22                  21 / 37
 *   8 KiB                39                     19–37 / 58–72
 *   16 KiB               89–101                 24 / 110–117
 *   64 KiB              667–841                 92 / 802–910
 *
 * A thread-pool job costs the event loop ~20 µs (stream machinery, the
 * hop) and ~20 µs more CPU in all than doing the work in place. Up to
 * 8 KiB of input the work itself is about that cheap (≤ 2× the hop), so
 * compressing in place is cheaper for the loop and for the CPU; above it the
 * loop saves more than the hop costs, and a 1 MiB message (15–40 ms of
 * deflate) must not stall every other connection.
 *
 * Inflating runs at 400–700 MB/s of output (64 KiB in ~90 µs), and its output
 * size is only known as it comes. So it starts in place and moves to the
 * thread pool once it has produced SYNC_INFLATE_BUDGET bytes: a message of
 * up to 64 KiB never pays the hop, and no message (or bomb) blocks the loop
 * for more than ~100 µs of inflating.
 */
export const SYNC_DEFLATE_LIMIT = 8 * 1024
export const SYNC_INFLATE_BUDGET = 64 * 1024

/** What a sync flush ends with, and what RFC 7692 §7.2.1 strips (§7.2.2 puts it back). */
export const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff])

export function tooLarge (maxSize: number): ProtocolError {
  return new ProtocolError('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', `decompressed message exceeds the limit of ${maxSize} bytes`, 1009)
}

function deflated (out: Output): Buffer {
  // zlib always ends a sync flush with an empty stored block; without it the
  // payload could not be made what RFC 7692 §7.2.1 sends.
  if (!out.endsWith(TRAILER)) throw new Error('zlib did not end the message with an empty stored block')
  return out.take(TRAILER.length)
}

/** Compresses `data` on this thread. Throws zlib's error. */
export function deflateSync (context: ZlibContext, data: Buffer): Buffer {
  const out = new Output()
  context.runSync(data, 0, out, Infinity)
  return deflated(out)
}

/** Compresses `data` on the thread pool, once `limiter` gives a slot. */
export function deflateAsync (context: ZlibContext, data: Buffer, limiter: Limiter, done: (err: Error | null, payload?: Buffer) => void): void {
  limiter.run((release) => {
    const out = new Output()
    context.runAsync([data], out, Infinity, (err) => {
      release()
      if (err !== null) {
        done(err)
        return
      }
      let payload: Buffer
      try {
        payload = deflated(out)
      } catch (error) {
        done(error as Error)
        return
      }
      done(null, payload)
    })
  })
}

/**
 * Decompresses one message's payload: in place up to SYNC_INFLATE_BUDGET
 * bytes of output, the rest on the thread pool. Fails with 1009 as soon as
 * the output passes `maxSize`, having produced at most `maxSize` + one chunk
 * (16 KiB) — a bomb costs a limit's worth of work, not its own size.
 * `done` may be called synchronously.
 */
export function inflate (context: ZlibContext, data: Buffer, maxSize: number, limiter: Limiter, done: (err: Error | null, result?: Buffer) => void): void {
  const out = new Output()
  const budget = Math.min(maxSize, SYNC_INFLATE_BUDGET)
  let rest: Buffer[]
  try {
    const at = context.runSync(data, 0, out, budget)
    if (out.length > budget) {
      rest = [data.subarray(at), TRAILER]
    } else if (context.ended) {
      // A block with BFINAL set ended the DEFLATE stream before the payload did.
      throw new Error('data after the final DEFLATE block')
    } else {
      const end = context.runSync(TRAILER, 0, out, budget)
      if (out.length <= budget) {
        // Done in place (a stream ended by BFINAL leaves the trailer unread: fine).
        done(null, out.take())
        return
      }
      rest = [TRAILER.subarray(end)]
    }
  } catch (error) {
    out.discard()
    done(error as Error)
    return
  }
  if (out.length > maxSize) {
    out.discard()
    done(tooLarge(maxSize))
    return
  }
  out.detach()
  let total = 0
  for (const part of rest) total += part.length
  limiter.run((release) => {
    context.runAsync(rest, out, maxSize, (err, overLimit, consumed) => {
      release()
      if (err !== null || overLimit || consumed < total - TRAILER.length) out.discard()
      if (err !== null) done(err)
      else if (overLimit) done(tooLarge(maxSize))
      else if (consumed < total - TRAILER.length) done(new Error('data after the final DEFLATE block'))
      else done(null, out.take())
    })
  })
}
