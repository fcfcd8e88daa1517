// Time in tests: the plugin's own timers (heartbeat, closeTimeout,
// handshakeTimeout) on a fake clock the test moves, and a real-time bound
// that turns a wait that would hang into a failure saying what was awaited.

import { mock } from 'node:test'
import type { Tap } from './app.js'

// Taken before any test fakes them: bounds always run on real time.
const realSetTimeout = globalThis.setTimeout
const realClearTimeout = globalThis.clearTimeout

export interface FakeClock {
  /** Moves the clock by `ms`, running every fake timer due by then, in order. */
  tick (ms: number): void
}

/**
 * Fakes setTimeout and setInterval (and their clear functions) until the test
 * ends: a timer armed from now on fires only when `tick` moves the clock past
 * it. Sockets, setImmediate and Node's internal timers (headersTimeout, the
 * socket idle timeout) stay real. Call it before whatever arms the timer.
 */
export function fakeTimers (t: Tap, apis: Array<'setTimeout' | 'setInterval'> = ['setTimeout', 'setInterval']): FakeClock {
  mock.timers.enable({ apis })
  t.teardown(() => { mock.timers.reset() })
  return { tick: (ms) => { mock.timers.tick(ms) } }
}

/**
 * `promise`, or a rejection naming `what` once `ms` of real time passed
 * without it. A bound, not a synchronisation: a test that passes never waits
 * for it.
 */
export async function within<T> (promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const bound = new Promise<never>((_resolve, reject) => {
    timer = realSetTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, bound])
  } finally {
    realClearTimeout(timer)
  }
}

/**
 * Resolves after `count` turns of the event loop (setImmediate, which stays
 * real), so that what is already due (socket events, a `close` after a
 * destroy) has run: for checking that something did not happen.
 */
export async function loopTurns (count = 3): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

/** How many real timers (setTimeout/setInterval) are active in the process. */
export function activeTimers (): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
}
