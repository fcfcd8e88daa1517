// The soak run's verdict and its plain-text report.

import { GDB_INSTALL } from './allocator.mjs'

const MiB = 1024 * 1024
// Final RSS against the warmed baseline, both trimmed: read after a
// last-resort GC and malloc_trim(0) in the server (see bench/soak.mjs for
// why). The untrimmed readings are reported, not judged.
export const RSS_TOLERANCE = 0.10
// Memory the server's JavaScript holds, whatever the allocator does with the
// pages: V8's live heap plus memory outside it owned by JS objects (Buffers,
// ArrayBuffers: Node counts `arrayBuffers` inside `external`, so adding it
// again would count it twice). Compared with the warmed baseline after the
// same GC + settle; both readings are taken with no connection open and the
// run's own per-connection bookkeeping (/count) cleared. 10 %, as for RSS: on
// a baseline of about 13 MiB that is about 1.3 MiB, i.e. under 100 bytes
// for each of the ~15,000 connections of a full run, so a per-connection leak
// of any real structure (a socket, a buffer, a closure) fails it.
export const LIVE_TOLERANCE = 0.10

// Open fds of the server at the baseline and at the end are compared after
// every connection has closed, with the same fixed set open both times: the
// listening socket, the IPC channel, stdio, libuv's epoll/eventfd/signal
// pipes, the /proc/self/fd directory being read. All of those exist before
// the baseline (the warm-up has used every code path), so nothing may be
// left over: the allowance is zero.
export const FD_ALLOWANCE = 0

const HOSTILE_MUST_BE_CLOSED = ['non-reader', 'ping-flood']
const HOSTILE_MUST_BE_REFUSED = ['invalid-frames', 'malformed-upgrade', 'oversized']

/** Runs of a group (warm-up or main phase), and how many saw what they should, did not, or could not tell. */
function groupTally (hostile, group) {
  const tally = { runs: 0, unexpected: 0, unjudged: 0 }
  for (const entry of Object.values(hostile.results[group] ?? {})) {
    tally.runs += entry.runs
    tally.unexpected += entry.unexpected
    tally.unjudged += entry.unjudged ?? 0
  }
  return tally
}

/**
 * Issue 8, case 1: every chunked POST over the body limit was answered 413 by
 * the server (its /plain tally over the phase: exactly one 413 per run,
 * nothing else), no peer saw another answer or was left open, and the server
 * lived (another check).
 */
function bodyLimitCheck (run) {
  const phases = [['warm-up', run.warmHostile, run.warmServer.plain], ['hold', run.hostile, run.server.plain]]
  let pass = true
  const details = []
  for (const [name, hostile, plain] of phases) {
    const tally = groupTally(hostile, 'body-limit')
    const answered = plain['413'] ?? 0
    const other = Object.entries(plain).filter(([status]) => status !== '413')
    if (tally.runs === 0 || tally.unexpected > 0 || answered !== tally.runs || other.length > 0) pass = false
    details.push(`${name}: server sent 413 to ${answered}/${tally.runs}${other.length > 0 ? ` (and ${tallyText(Object.fromEntries(other))})` : ''}, ` +
      `peers read it ${tally.runs - tally.unexpected - tally.unjudged}, were reset while still writing ${tally.unjudged}, other ${tally.unexpected}`)
  }
  return { name: 'chunked POSTs over bodyLimit with Connection: Upgrade (issue 8, case 1) answered 413', pass, detail: details.join('; ') }
}

/** Over the warm-up's hostile peers and the main phase's. */
function sumUnexpected (run, groups) {
  let runs = 0
  let unexpected = 0
  for (const hostile of [run.warmHostile, run.hostile]) {
    for (const group of groups) {
      for (const entry of Object.values(hostile.results[group] ?? {})) {
        runs += entry.runs
        unexpected += entry.unexpected
      }
    }
  }
  return { runs, unexpected }
}

/** heapUsed + external (which includes arrayBuffers): see LIVE_TOLERANCE. */
export function liveBytes (reading) {
  return reading.heapUsed + reading.external
}

function lostMessages (run) {
  const { warm, run: main } = run.fleets
  return {
    echoLost: warm.echo.lostOnNormalClose + main.echo.lostOnNormalClose,
    echoCorrupt: warm.echo.corrupt + main.echo.corrupt,
    countLost: run.counts.lost,
    countWrong: run.counts.extra + run.counts.outOfOrder + run.counts.bytesMismatch
  }
}

export function checksOf (run) {
  const { cold, baseline, final } = run.readings
  const rssChange = (final.rss - baseline.rss) / baseline.rss
  const rssChangeCold = (final.rss - cold.rss) / cold.rss
  const liveChange = (liveBytes(final) - liveBytes(baseline)) / liveBytes(baseline)
  const lost = lostMessages(run)
  const closed = sumUnexpected(run, HOSTILE_MUST_BE_CLOSED)
  const refused = sumUnexpected(run, HOSTILE_MUST_BE_REFUSED)
  const notNormal = [run.fleets.warm, run.fleets.run].flatMap((stats) => Object.entries(stats.endedNot1000))
  const { baselineTrimmed, finalTrimmed } = run.readings
  const judged = baselineTrimmed !== undefined && finalTrimmed !== undefined
  const trimmedChange = judged ? (finalTrimmed.rss - baselineTrimmed.rss) / baselineTrimmed.rss : null
  const notTrimmed = Object.entries(run.mallocTrim).filter(([, trim]) => !trim.ok).map(([at, trim]) => `${at}: ${trim.why}`)
  const arenaText = (a, b) => `glibc main arena ${mib(a.mainArena)} → ${mib(b.mainArena)} MiB`
  return [
    {
      name: `final RSS within ${RSS_TOLERANCE * 100} % of the warmed baseline, both after a last-resort GC and malloc_trim(0)`,
      pass: judged ? trimmedChange <= RSS_TOLERANCE : null,
      notJudged: !judged,
      detail: judged
        ? `${mib(baselineTrimmed.rss)} → ${mib(finalTrimmed.rss)} MiB (${signedPercent(trimmedChange)}; ${arenaText(baselineTrimmed, finalTrimmed)}, ` +
          `V8 heap ${mib(baselineTrimmed.heapTotal)} → ${mib(finalTrimmed.heapTotal)} MiB)`
        : `malloc_trim(0) through gdb not done (${notTrimmed.join('; ')}), so no like-for-like reading`
    },
    {
      name: 'untrimmed final RSS against the untrimmed warmed baseline (reported: includes free memory the allocators keep)',
      pass: null,
      detail: `${mib(baseline.rss)} → ${mib(final.rss)} MiB (${signedPercent(rssChange)}; ${arenaText(baseline, final)}, ` +
        `V8 heap ${mib(baseline.heapTotal)} → ${mib(final.heapTotal)} MiB)`
    },
    {
      name: 'untrimmed final RSS against the cold start (reported)',
      pass: null,
      detail: `${mib(cold.rss)} → ${mib(final.rss)} MiB (${signedPercent(rssChangeCold)}; ${arenaText(cold, final)})` +
        (judged ? `; trimmed final ${mib(finalTrimmed.rss)} MiB, ${signedPercent((finalTrimmed.rss - cold.rss) / cold.rss)} of the (untrimmed) cold start` : '')
    },
    {
      name: `live JS memory (heapUsed + external) within ${LIVE_TOLERANCE * 100} % of the warmed baseline`,
      pass: liveChange <= LIVE_TOLERANCE,
      detail: `${mib(liveBytes(baseline))} → ${mib(liveBytes(final))} MiB (${signedPercent(liveChange)}; heapUsed ` +
        `${mib(baseline.heapUsed)} → ${mib(final.heapUsed)}, external ${mib(baseline.external)} → ${mib(final.external)}, ` +
        `of which arrayBuffers ${mib(baseline.arrayBuffers)} → ${mib(final.arrayBuffers)})`
    },
    {
      name: 'RSS outside glibc\'s main arena against the warmed baseline (reported)',
      pass: null,
      detail: `${mib(baseline.rss - baseline.mainArena)} → ${mib(final.rss - final.mainArena)} MiB ` +
        `(${signedPercent((final.rss - final.mainArena - baseline.rss + baseline.mainArena) / (baseline.rss - baseline.mainArena))})`
    },
    {
      name: `fds back to baseline (allowance ${FD_ALLOWANCE})`,
      pass: Math.abs(final.fds - baseline.fds) <= FD_ALLOWANCE,
      detail: `${baseline.fds} → ${final.fds}`
    },
    { name: 'server holds no connections at the end', pass: final.clients === 0, detail: `${final.clients} clients` },
    {
      name: 'no lost messages on well-behaved connections',
      pass: Object.values(lost).every((n) => n === 0),
      detail: `echo lost ${lost.echoLost}, echo wrong ${lost.echoCorrupt}, count lost ${lost.countLost}, count wrong ${lost.countWrong}`
    },
    {
      name: 'well-behaved connections all ended with 1000',
      pass: notNormal.length === 0 && run.leftOpen === 0,
      detail: notNormal.length === 0 ? `left open ${run.leftOpen}` : notNormal.map(([k, n]) => `${k}×${n}`).join(', ')
    },
    bodyLimitCheck(run),
    { name: 'server never crashed', pass: run.crashed === null, detail: run.crashed ?? 'alive throughout' },
    {
      name: 'health route answered throughout',
      pass: run.health.polls > 0 && run.health.ok === run.health.polls,
      detail: `${run.health.ok}/${run.health.polls} polls, p99 ${run.health.latencyMs.p99} ms, max ${run.health.latencyMs.max} ms`
    },
    {
      name: 'non-reading peers and ping floods closed by the server',
      pass: closed.unexpected === 0 && closed.runs > 0,
      detail: `${closed.runs - closed.unexpected}/${closed.runs}`
    },
    {
      name: 'invalid input refused as RFC 6455 requires',
      pass: refused.unexpected === 0 && refused.runs > 0,
      detail: `${refused.runs - refused.unexpected}/${refused.runs}`
    }
  ]
}

function mib (bytes) {
  return (bytes / MiB).toFixed(1)
}

function signedPercent (fraction) {
  return `${fraction >= 0 ? '+' : ''}${(fraction * 100).toFixed(1)} %`
}

function table (rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => String(row[i]).length)))
  return rows.map((row) => row.map((cell, i) => i === 0 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i])).join('  ')).join('\n')
}

function tallyText (tally) {
  const entries = Object.entries(tally ?? {})
  return entries.length === 0 ? 'none' : entries.sort((a, b) => b[1] - a[1]).map(([key, n]) => `${key}×${n}`).join(', ')
}

function range (values) {
  if (values.length === 0) return ''
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[0] === sorted[sorted.length - 1] ? `${sorted[0]}` : `${sorted[0]}–${sorted[sorted.length - 1]}`
}

export function formatReport (run, checks) {
  const { cold, baseline, allOpen, final } = run.readings
  const out = []
  const { connections, durationS, warmupS } = run.options
  out.push(`fastify-rfc6455 soak: ${connections} connections held ${durationS} s after a ${warmupS} s warm-up — ${run.revision}; ` +
    `server on Node ${run.node.server} (run on ${run.node.run}); ${run.machine}, ${run.date}`)
  out.push(`phases (s): ${Object.entries(run.timings).map(([k, v]) => `${k} ${v}`).join(', ')}` +
    `; server allocator settings: ${Object.entries(run.env).map(([k, v]) => `${k}=${v}`).join(' ') || 'glibc defaults'}`)
  out.push('')
  const inMiB = (value, signed) => value === undefined ? '-' : `${signed && value >= 0 ? '+' : ''}${mib(value)}`
  const plain = (value, signed) => `${signed && value >= 0 ? '+' : ''}${value}`
  const memoryRow = (name, key, format) => {
    const value = (reading) => key === 'live' ? liveBytes(reading) : reading[key]
    const cell = (reading) => value(reading) === undefined ? '-' : format(value(reading))
    const delta = (from) => value(final) === undefined || value(from) === undefined ? '-'
      : key === 'rss' || key === 'live' ? signedPercent((value(final) - value(from)) / value(from))
        : format(value(final) - value(from), true)
    const peak = (peaks) => peaks[key] === undefined ? '-' : format(peaks[key])
    return [name, cell(cold), peak(run.warmPeak), cell(baseline), cell(allOpen), peak(run.peak), cell(final), delta(baseline), delta(cold)]
  }
  const { baselineTrimmed: bt, finalTrimmed: ft } = run.readings
  const trimmedRow = (name, key) => [name, '-', '-', bt === undefined ? 'n/a' : inMiB(bt[key]), '-', '-', ft === undefined ? 'n/a' : inMiB(ft[key]),
    bt === undefined || ft === undefined ? '-' : key === 'rss' ? signedPercent((ft[key] - bt[key]) / bt[key]) : inMiB(ft[key] - bt[key], true), '-']
  out.push(table([
    ['server', 'cold start', 'warm-up peak', 'warmed baseline', 'all open (gc)', 'open/hold/close peak', 'final', 'final − warmed', 'final − cold'],
    memoryRow('rss MiB', 'rss', inMiB),
    memoryRow('  glibc main arena', 'mainArena', inMiB),
    trimmedRow('rss, trimmed', 'rss'),
    trimmedRow('  glibc main arena, trimmed', 'mainArena'),
    memoryRow('heapTotal MiB', 'heapTotal', inMiB),
    memoryRow('heapUsed MiB', 'heapUsed', inMiB),
    memoryRow('external MiB', 'external', inMiB),
    memoryRow('  arrayBuffers MiB', 'arrayBuffers', inMiB),
    memoryRow('heapUsed + external', 'live', inMiB),
    memoryRow('open fds', 'fds', plain),
    memoryRow('clients', 'clients', plain)
  ]))
  out.push('(readings: gc() and a 10 s settle, no connection open, except "all open"; trimmed: then a last-resort GC and malloc_trim(0); ' +
    'peaks: memory every 100 ms in the server, fds and clients every second)')
  const step = (name, untrimmed, released, trimmed, trim) => `${name} ${mib(untrimmed.rss)} → ${mib(released.rss)} → ` +
    (trim.ok ? `${mib(trimmed.rss)} MiB (glibc main arena ${mib(untrimmed.mainArena)} → ${mib(released.mainArena)} → ${mib(trimmed.mainArena)})` : `MiB, not trimmed (${trim.why})`)
  const r = run.readings
  out.push(`rss untrimmed → after a last-resort GC → after malloc_trim(0): ` +
    `${step('warmed baseline', baseline, r.baselineV8Released, r.baselineTrimmed, run.mallocTrim.baseline)}; ` +
    `${step('final', final, r.finalV8Released, r.finalTrimmed, run.mallocTrim.final)}`)
  out.push('')
  const s = run.fleets.run
  const w = run.fleets.warm
  out.push(`connections: ${s.opened} opened (${s.reconnects} reconnects after churn, max ${s.maxOpen} open at once) + ${w.opened} in the warm-up; ` +
    `open failures: ${tallyText(s.openFailures)}; slots given up: ${s.deadSlots}; errors after open: ${s.errors}`)
  out.push(`ended other than 1000: ${tallyText({ ...w.endedNot1000, ...s.endedNot1000 })}`)
  out.push(`echo: ${s.echo.sent + w.echo.sent} sent, ${s.echo.acked + w.echo.acked} written, ${s.echo.echoed + w.echo.echoed} echoed back in order, ` +
    `${s.echo.lostOnNormalClose + w.echo.lostOnNormalClose} lost, ${s.echo.corrupt + w.echo.corrupt} wrong; ` +
    `unconfirmed on abnormal close ${s.echo.unconfirmedOnAbnormalClose + w.echo.unconfirmedOnAbnormalClose}`)
  const c = run.counts
  out.push(`count: ${c.connections} connections, ${c.sent} sent, ${c.acked} written, ${c.received} counted by the server, ${c.lost} lost, ` +
    `${c.extra} extra, ${c.outOfOrder} out of order, ${c.bytesMismatch} byte mismatches`)
  out.push(`pings: ${s.pings} sent, ${s.pongs} pongs`)
  const h = run.health
  out.push(`health: ${h.ok}/${h.polls} answered, p50 ${h.latencyMs.p50} ms, p99 ${h.latencyMs.p99} ms, max ${h.latencyMs.max} ms; failures: ${tallyText(h.failures)}`)
  const lag = (phase) => `p50 ${phase.p50} ms, p99 ${phase.p99} ms, max ${phase.max} ms`
  out.push(`server event loop delay: during the hold ${lag(run.serverLoopDelay.hold)}; while everything closes ${lag(run.serverLoopDelay.close)}`)
  out.push('')
  const ended = run.server.ended
  const rows2 = [['hostile peer', 'warm-up runs', 'runs', 'as expected', 'how it ended (peer side)', 'server close event codes']]
  const groups = [...new Set([...Object.keys(run.warmHostile.results), ...Object.keys(run.hostile.results)])]
  for (const group of groups) {
    const variants = [...new Set([...Object.keys(run.warmHostile.results[group] ?? {}), ...Object.keys(run.hostile.results[group] ?? {})])]
    for (const variant of variants) {
      const entry = run.hostile.results[group]?.[variant] ?? { runs: 0, unexpected: 0, unjudged: 0, outcomes: {}, sentMiB: [], seconds: [] }
      const warmEntry = run.warmHostile.results[group]?.[variant] ?? { runs: 0, unexpected: 0 }
      const serverKey = group === 'malformed-upgrade' ? null
        : group === 'body-limit' ? 'plain'
          : group === 'non-reader' || group === 'ping-flood' ? group : `${group}:${variant}`
      let outcome = tallyText(entry.outcomes)
      if (entry.sentMiB.length > 0) outcome += ` (sent ${range(entry.sentMiB)} MiB in ${range(entry.seconds)} s)`
      const serverSide = serverKey === null ? '-' : serverKey === 'plain' ? `POST /plain, all variants: ${tallyText(run.server.plain)}` : tallyText(ended[serverKey])
      rows2.push([`${group}: ${variant}`, `${warmEntry.runs}${warmEntry.unexpected > 0 ? ` (${warmEntry.unexpected} unexpected)` : ''}`,
        entry.runs, `${entry.runs - entry.unexpected - entry.unjudged}${entry.unjudged > 0 ? ` (+${entry.unjudged} not judged)` : ''}`, outcome, serverSide])
    }
  }
  out.push(table(rows2))
  out.push(`hostile peers skipped (not started in time): ${run.hostile.skipped} in the hold, ${run.warmHostile.skipped} in the warm-up`)
  const d = run.server.diagnostics
  out.push(`diagnostics_channel: open ${d.open}; close ${tallyText(d.close)}; refused ${tallyText(d.refused)}; limit ${tallyText(d.limit)}`)
  out.push(`(server columns and counts: the run without the warm-up)`)
  out.push(`server close event codes, well-behaved: ${['idle', 'ping', 'echo', 'count'].map((k) => `${k} ${tallyText(ended[k])}`).join('; ')}`)
  out.push('')
  const status = (check) => check.notJudged ? 'NOT JUDGED' : check.pass === null ? 'INFO' : check.pass ? 'PASS' : 'FAIL'
  for (const check of checks) out.push(`${status(check)}  ${check.name}: ${check.detail}`)
  const notJudged = checks.filter((check) => check.notJudged)
  const verdict = checks.every((check) => check.pass !== false) ? 'SOAK PASSED' : 'SOAK FAILED'
  out.push(notJudged.length === 0 ? verdict : `${verdict} (${notJudged.length} check NOT JUDGED: ${notJudged.map((check) => check.name).join('; ')}` +
    (run.mallocTrim.baseline.why?.includes('not installed') ? `; install gdb: ${GDB_INSTALL})` : ')'))
  return out.join('\n')
}
