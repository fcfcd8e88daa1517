/**
 * The bound on zlib work running on libuv's thread pool at once, shared by
 * every connection in the process.
 *
 * libuv has 4 threads by default, and fs, dns.lookup and crypto's async
 * calls queue on the same ones. Without a bound, a thousand connections
 * each compressing a large message put a thousand jobs in that queue and a
 * `fs.readFile` waits behind all of them. Here at most `concurrency` zlib
 * jobs are handed to libuv; the others wait in this FIFO (first come, first
 * served, so no connection starves), holding only their input buffer.
 * Synchronous (small) operations never pass through it.
 */
export class Limiter {
  readonly concurrency: number
  private active = 0
  // FIFO of waiting tasks; `head` is the next to run (no O(n) shift per task).
  private waiting: Array<(release: () => void) => void> = []
  private head = 0
  // Set while next() starts tasks: a task that releases at once does not recurse into it.
  private starting = false

  constructor (concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`)
    this.concurrency = concurrency
  }

  /** Tasks running now. */
  get running (): number {
    return this.active
  }

  /** Tasks waiting for a slot. */
  get queued (): number {
    return this.waiting.length - this.head
  }

  /**
   * Runs `task` now if a slot is free, else once one frees up, in the order
   * of the calls. The task gets `release`, which it must call exactly once
   * when its thread-pool work is over (extra calls are ignored).
   */
  run (task: (release: () => void) => void): void {
    if (this.active < this.concurrency && this.head === this.waiting.length) {
      this.start(task)
      return
    }
    this.waiting.push(task)
  }

  private start (task: (release: () => void) => void): void {
    this.active++
    let released = false
    task(() => {
      if (released) return
      released = true
      this.active--
      this.next()
    })
  }

  private next (): void {
    if (this.starting) return
    this.starting = true
    try {
      this.startWaiting()
    } finally {
      this.starting = false
    }
  }

  private startWaiting (): void {
    while (this.active < this.concurrency && this.head < this.waiting.length) {
      const task = this.waiting[this.head]
      this.waiting[this.head++] = undefined as never
      if (this.head === this.waiting.length) {
        this.waiting = []
        this.head = 0
      } else if (this.head >= 1024 && this.head * 2 >= this.waiting.length) {
        // Drop the consumed front now and then, so a long queue does not keep a long array.
        this.waiting = this.waiting.slice(this.head)
        this.head = 0
      }
      this.start(task)
    }
  }
}

// One limiter per concurrency value: routes that share the setting (by
// default, all of them) share the bound.
const limiters = new Map<number, Limiter>()

/** The process-wide limiter for `concurrency`. */
export function sharedLimiter (concurrency: number): Limiter {
  let limiter = limiters.get(concurrency)
  if (limiter === undefined) {
    limiter = new Limiter(concurrency)
    limiters.set(concurrency, limiter)
  }
  return limiter
}
