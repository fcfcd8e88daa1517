// Measurement-window bookkeeping: wall time, the generator's own CPU time and
// the server's CPU time, so the report can show which side was saturated.

import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

/** utime + stime of another process in clock ticks, or null off Linux. */
export function processTicks (pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    // The command name may contain spaces: fields are counted after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(fields[11]) + Number(fields[12])
  } catch {
    return null
  }
}

/** Busy clock ticks of the whole machine (all cores), or null off Linux. */
function machineBusyTicks () {
  try {
    const line = readFileSync('/proc/stat', 'latin1').slice(0, 256).split('\n')[0]
    const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number)
    return user + nice + system + irq + softirq + steal
  } catch {
    return null
  }
}

/** Summed ticks of the server's processes (several for the cross-instance job), or null if one is unknown. */
function serverTicks (serverPid) {
  if (!serverPid) return null
  let total = 0
  for (const pid of Array.isArray(serverPid) ? serverPid : [serverPid]) {
    const ticks = processTicks(pid)
    if (ticks === null) return null
    total += ticks
  }
  return total
}

/** `serverPid`: one PID, or an array of PIDs whose CPU counts as the server's. */
export function snapshot (serverPid) {
  return {
    time: performance.now(),
    cpu: process.cpuUsage(),
    serverTicks: serverTicks(serverPid),
    machineTicks: machineBusyTicks()
  }
}

/**
 * Seconds elapsed and CPU use (percent of one core) between two snapshots:
 * the generator's, the server's, and everything else on the machine, which
 * on a shared box explains a window where both sides were starved.
 */
export function usageBetween (start, end, clockTicks) {
  const seconds = (end.time - start.time) / 1000
  const ticksPercent = (from, to) => from === null || to === null ? null : ((to - from) / clockTicks) / seconds * 100
  const generatorCpu = ((end.cpu.user - start.cpu.user) + (end.cpu.system - start.cpu.system)) / 1e6 / seconds * 100
  const serverCpu = ticksPercent(start.serverTicks, end.serverTicks)
  const machineCpu = ticksPercent(start.machineTicks, end.machineTicks)
  const otherCpu = machineCpu === null || serverCpu === null ? null : Math.max(0, machineCpu - serverCpu - generatorCpu)
  return { seconds, generatorCpu, serverCpu, otherCpu }
}

/**
 * How long a job waits past its window for the one reply it checks. Generous
 * because a smoke run may share the machine with a whole test suite, and a
 * starved window is not a wrong echo.
 */
export const CAPTURE_WAIT_MS = 10_000

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function sleep (ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done () {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** Polls `condition` every few ms until true or `ms` passed; returns its last value. */
export async function waitFor (condition, ms) {
  const deadline = performance.now() + ms
  while (!condition() && performance.now() < deadline) await sleep(5)
  return condition()
}

/**
 * Waits out the warm-up, then the measurement window; `setMeasuring` brackets
 * the window for the job's counters. Returns the snapshots at its two ends.
 */
export async function measureWindow ({ serverPid, warmupMs, durationMs, signal }, setMeasuring) {
  await sleep(warmupMs, signal)
  const start = snapshot(serverPid)
  setMeasuring(true)
  await sleep(durationMs, signal)
  setMeasuring(false)
  const end = snapshot(serverPid)
  return { start, end }
}
