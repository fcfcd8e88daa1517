/** What the timer beats: a connection's internal surface (`conn[kInternal]`). */
export interface Beating {
  /** Pings the peer, or terminates the connection if the previous ping went unanswered. */
  heartbeat (): void
}

/**
 * Each interval's pings go out in this many slices spread evenly over it,
 * not all in one task: a process holding 16,000 connections on one interval
 * stalled its event loop for over half a second at every beat writing them
 * all at once (6.7 s at 100,000 connections over six processes, in the
 * c100k benchmark), which every other connection's messages waited behind.
 * A sixteenth of them per slice keeps that pause short, and a slice still
 * comes seldom enough (every interval / 16) to cost nothing when idle.
 */
export const HEARTBEAT_SLICES = 16
// Below this interval (tests, mostly) the slices would come too often to be
// worth it: the connections are beaten together, once per interval.
const MIN_SLICED_INTERVAL = 160

interface Beat {
  timer: NodeJS.Timeout
  /** One set per slice; `slices[cursor]` is beaten at the next tick. */
  slices: Array<Set<Beating>>
  cursor: number
  /** Connections added since the last tick: they join the slice that tick beat, so their first ping is one interval (at most a slice more) away. */
  joining: Set<Beating>
  size: number
}

/**
 * Pings open connections every `interval` ms and terminates those whose peer
 * sent nothing (not even a pong) since the previous ping: a peer that vanished
 * without a FIN (a dead NAT entry, a suspended laptop) otherwise holds its
 * connection open for ever. One timer per distinct interval, shared by every
 * connection that uses it, so an idle connection costs a set entry, not a
 * timer. The timer ticks HEARTBEAT_SLICES times per interval and beats one
 * slice of the connections each time: each connection is still pinged once
 * per interval, the first time between one interval and one interval plus a
 * slice after it was added.
 */
export class Heartbeats {
  private readonly beats = new Map<number, Beat>()

  add (conn: Beating, interval: number): void {
    let beat = this.beats.get(interval)
    if (beat === undefined) {
      const count = interval >= MIN_SLICED_INTERVAL ? HEARTBEAT_SLICES : 1
      const slices: Array<Set<Beating>> = []
      for (let i = 0; i < count; i++) slices.push(new Set())
      beat = { timer: undefined as unknown as NodeJS.Timeout, slices, cursor: 0, joining: new Set(), size: 0 }
      beat.timer = setInterval(tick, interval / count, beat)
      // Open sockets keep the process alive; this timer alone should not.
      beat.timer.unref()
      this.beats.set(interval, beat)
    }
    beat.joining.add(conn)
    beat.size++
  }

  remove (conn: Beating): void {
    for (const [interval, beat] of this.beats) {
      if (!removeFrom(beat, conn)) continue
      if (--beat.size === 0) {
        clearInterval(beat.timer)
        this.beats.delete(interval)
      }
      return
    }
  }

  /** @internal Timers running: one per distinct interval in use. */
  get timerCount (): number {
    return this.beats.size
  }

  stop (): void {
    for (const beat of this.beats.values()) clearInterval(beat.timer)
    this.beats.clear()
  }
}

function removeFrom (beat: Beat, conn: Beating): boolean {
  if (beat.joining.delete(conn)) return true
  for (const slice of beat.slices) {
    if (slice.delete(conn)) return true
  }
  return false
}

function tick (beat: Beat): void {
  const slice = beat.slices[beat.cursor]
  beat.cursor = (beat.cursor + 1) % beat.slices.length
  // terminate() only destroys the socket; the connection leaves the set on its
  // `close`, later, so the set is not changed while it is walked.
  for (const conn of slice) conn.heartbeat()
  // Newcomers join the slice just beaten: it comes round again in one interval.
  if (beat.joining.size > 0) {
    for (const conn of beat.joining) slice.add(conn)
    beat.joining.clear()
  }
}
