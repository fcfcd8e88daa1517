/** What the timer beats: a connection's internal surface (`conn[kInternal]`). */
export interface Beating {
  /** Pings the peer, or terminates the connection if the previous ping went unanswered. */
  heartbeat (): void
}

interface Beat {
  timer: NodeJS.Timeout
  conns: Set<Beating>
}

/**
 * Pings open connections every `interval` ms and terminates those whose peer
 * sent nothing (not even a pong) since the previous ping: a peer that vanished
 * without a FIN (a dead NAT entry, a suspended laptop) otherwise holds its
 * connection open for ever. One timer per distinct interval, shared by every
 * connection that uses it, so an idle connection costs a set entry, not a timer.
 */
export class Heartbeats {
  private readonly beats = new Map<number, Beat>()

  add (conn: Beating, interval: number): void {
    let beat = this.beats.get(interval)
    if (beat === undefined) {
      const conns = new Set<Beating>()
      const timer = setInterval(tick, interval, conns)
      // Open sockets keep the process alive; this timer alone should not.
      timer.unref()
      beat = { timer, conns }
      this.beats.set(interval, beat)
    }
    beat.conns.add(conn)
  }

  remove (conn: Beating): void {
    for (const [interval, beat] of this.beats) {
      if (!beat.conns.delete(conn)) continue
      if (beat.conns.size === 0) {
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

function tick (conns: Set<Beating>): void {
  // terminate() only destroys the socket; the connection leaves the set on its
  // `close`, later, so the set is not changed while it is walked.
  for (const conn of conns) conn.heartbeat()
}
