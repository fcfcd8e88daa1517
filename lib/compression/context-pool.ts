import { ZlibContext, type ContextKind, type ContextOptions } from './zlib-context.js'

/**
 * zlib contexts shared by the whole process, for messages that start from a
 * fresh context anyway (no context takeover on that side): a connection
 * borrows one for one message and gives it back reset, so an idle
 * connection holds no zlib state at all.
 *
 * Measured against making a context per message (zlib.deflateRawSync, Node
 * 20, level 6, memLevel 8, window 15; µs per message, JSON / random bytes):
 *
 *   size      new context per message   shared context + reset
 *   256 B          54 / 44                   13 / 28
 *   1 KiB          49 / 51                   18 / 34
 *   3 KiB          67 / 72                   26 / 43
 *   16 KiB        240 / 340                 176 / 409
 *   64 KiB        794 / 2061                702 / 2126
 *
 * A new context allocates ~260 KiB of deflate state (and tells V8 about it,
 * which brings on garbage collections); a reset clears only the hash
 * table. Inflating likewise (a new context 11–90 µs, a shared one 3–30 µs
 * for the same messages). Past 16 KiB the work dwarfs either cost.
 */

// Idle contexts kept per configuration. Synchronous use needs one (it is
// back before anyone else asks); asynchronous use needs one per job on the
// thread pool, which the limiter (pool.ts) keeps to `concurrency`, 1–4 in
// practice. More than this are closed when given back rather than kept.
const MAX_IDLE_PER_KEY = 4

const idle = new Map<string, ZlibContext[]>()

function keyOf (kind: ContextKind, options: ContextOptions): string {
  return kind === 'deflate'
    ? `d${options.windowBits}/${options.level ?? -1}/${options.memLevel ?? 8}`
    : `i${options.windowBits}`
}

/** A fresh context of this configuration: an idle shared one, or a new one. */
export function borrowContext (kind: ContextKind, options: ContextOptions): ZlibContext {
  const list = idle.get(keyOf(kind, options))
  const context = list?.pop()
  return context ?? new ZlibContext(kind, options)
}

/** Gives back a context borrowed for one message: reset and kept, or closed if it failed or enough are idle. */
export function returnContext (context: ZlibContext): void {
  if (!context.usable) {
    context.close()
    return
  }
  const key = keyOf(context.kind, context.options)
  let list = idle.get(key)
  if (list === undefined) {
    list = []
    idle.set(key, list)
  }
  if (list.length >= MAX_IDLE_PER_KEY) {
    context.close()
    return
  }
  context.reset()
  list.push(context)
}

/** Idle shared contexts (for tests). */
export function idleContexts (): number {
  let count = 0
  for (const list of idle.values()) count += list.length
  return count
}

/** Closes every idle shared context (tests; a process that stops compressing). */
export function closeIdleContexts (): void {
  for (const list of idle.values()) {
    for (const context of list) context.close()
  }
  idle.clear()
}
