// What the kernel says about the server's processes: resident memory and CPU
// time, read from /proc by the run, so a reading does not wait on a busy
// event loop and counts what an operator's `ps` would.

import { readFileSync } from 'node:fs'
import { processTicks } from '../load/window.mjs'

/** { rss (bytes), ticks (utime + stime, clock ticks) } of one process. */
export function sampleProcess (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1')
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1])
  return { rss: rssKb * 1024, ticks: processTicks(pid) }
}

/** Samples of every PID in `pids` (pid → sample), plus their sums. */
export function sampleAll (pids) {
  const byPid = new Map(pids.map((pid) => [pid, sampleProcess(pid)]))
  let rss = 0
  let ticks = 0
  for (const sample of byPid.values()) {
    rss += sample.rss
    ticks += sample.ticks
  }
  return { byPid, rss, ticks }
}

/** [first, last] of the ephemeral port range, the ports a generator binds from. */
export function ephemeralPorts () {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1').trim().split(/\s+/).map(Number)
    return [low, high]
  } catch {
    // Linux's default range.
    return [32768, 60999]
  }
}
