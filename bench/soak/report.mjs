// The soak run's verdict and its plain-text report.

const MiB = 1024 * 1024
export const RSS_TOLERANCE = 0.10

// Open fds of the server at the baseline and at the end are compared after
// every connection has closed, with the same fixed set open both times: the
// listening socket, the IPC channel, stdio, libuv's epoll/eventfd/signal
// pipes, the /proc/self/fd directory being read. All of those exist before
// the baseline (the warm-up has used every code path), so nothing may be
// left over: the allowance is zero.
export const FD_ALLOWANCE = 0

const HOSTILE_MUST_BE_CLOSED = ['non-reader', 'ping-flood']
const HOSTILE_MUST_BE_REFUSED = ['invalid-frames', 'malformed-upgrade', 'oversized']

function sumUnexpected (hostile, groups) {
  let runs = 0
  let unexpected = 0
  for (const group of groups) {
    for (const entry of Object.values(hostile.results[group] ?? {})) {
      runs += entry.runs
      unexpected += entry.unexpected
    }
  }
  return { runs, unexpected }
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
  const { baseline, final } = run.readings
  const rssChange = (final.rss - baseline.rss) / baseline.rss
  const lost = lostMessages(run)
  const closed = sumUnexpected(run.hostile, HOSTILE_MUST_BE_CLOSED)
  const refused = sumUnexpected(run.hostile, HOSTILE_MUST_BE_REFUSED)
  const notNormal = [run.fleets.warm, run.fleets.run].flatMap((stats) => Object.entries(stats.endedNot1000))
  return [
    {
      name: `final RSS within ${RSS_TOLERANCE * 100} % of baseline`,
      pass: rssChange <= RSS_TOLERANCE,
      detail: `${mib(baseline.rss)} → ${mib(final.rss)} MiB (${signedPercent(rssChange)}; glibc main arena ` +
        `${mib(baseline.mainArena)} → ${mib(final.mainArena)} MiB, V8 heap ${mib(baseline.heapTotal)} → ${mib(final.heapTotal)} MiB)`
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
  const { baseline, allOpen, final } = run.readings
  const out = []
  const { connections, durationS } = run.options
  out.push(`fastify-rfc6455 soak: ${connections} connections held ${durationS} s — ${run.revision}; ${run.machine}, ${run.date}`)
  out.push(`phases (s): ${Object.entries(run.timings).map(([k, v]) => `${k} ${v}`).join(', ')}` +
    `; server allocator settings: ${Object.entries(run.env).map(([k, v]) => `${k}=${v}`).join(' ') || 'glibc defaults'}`)
  out.push('')
  const memoryRow = (name, key, format) => [name, format(baseline[key]), format(allOpen[key]), format(run.peak[key]),
    format(final[key]), key === 'rss' ? signedPercent((final[key] - baseline[key]) / baseline[key]) : format(final[key] - baseline[key], true)]
  const inMiB = (value, signed) => value === undefined ? '-' : `${signed && value >= 0 ? '+' : ''}${mib(value)}`
  const plain = (value, signed) => `${signed && value >= 0 ? '+' : ''}${value}`
  out.push(table([
    ['server', 'baseline', 'all open (gc)', 'peak (sampled)', 'final', 'final − baseline'],
    memoryRow('rss MiB', 'rss', inMiB),
    memoryRow('  glibc main arena', 'mainArena', inMiB),
    memoryRow('heapTotal MiB', 'heapTotal', inMiB),
    memoryRow('heapUsed MiB', 'heapUsed', inMiB),
    memoryRow('external MiB', 'external', inMiB),
    memoryRow('arrayBuffers MiB', 'arrayBuffers', inMiB),
    memoryRow('open fds', 'fds', plain),
    memoryRow('clients', 'clients', plain)
  ]))
  if (run.mallocTrim !== null) {
    const trimmed = run.readings.afterMallocTrim
    if (!run.mallocTrim.ok) out.push(`malloc_trim(0) through gdb: not done (${run.mallocTrim.why})`)
    else {
      const change = (trimmed.rss - baseline.rss) / baseline.rss
      out.push(`after the final reading, malloc_trim(0) in the server (through gdb): rss ${mib(trimmed.rss)} MiB ` +
        `(${signedPercent(change)} of baseline), glibc main arena ${mib(trimmed.mainArena)} MiB: ` +
        (change <= RSS_TOLERANCE
          ? 'the excess was free memory glibc kept, not memory in use (the check above still counts it)'
          : 'still above the baseline after trimming, so not only free memory glibc kept'))
    }
  }
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
  const rows = [['hostile peer', 'runs', 'as expected', 'how it ended (peer side)', 'server close event codes']]
  for (const [group, variants] of Object.entries(run.hostile.results)) {
    for (const [variant, entry] of Object.entries(variants)) {
      const serverKey = group === 'malformed-upgrade' ? null : group === 'non-reader' || group === 'ping-flood' ? group : `${group}:${variant}`
      let outcome = tallyText(entry.outcomes)
      if (entry.sentMiB.length > 0) outcome += ` (sent ${range(entry.sentMiB)} MiB in ${range(entry.seconds)} s)`
      rows.push([`${group}: ${variant}`, entry.runs, entry.runs - entry.unexpected, outcome, serverKey === null ? '-' : tallyText(ended[serverKey])])
    }
  }
  out.push(table(rows))
  out.push(`hostile peers skipped (not started within the hold): ${run.hostile.skipped}`)
  const d = run.server.diagnostics
  out.push(`diagnostics_channel: open ${d.open}; close ${tallyText(d.close)}; refused ${tallyText(d.refused)}; limit ${tallyText(d.limit)}`)
  out.push(`(server columns and counts: the run without the warm-up)`)
  out.push(`server close event codes, well-behaved: ${['idle', 'ping', 'echo', 'count'].map((k) => `${k} ${tallyText(ended[k])}`).join('; ')}`)
  out.push('')
  for (const check of checks) out.push(`${check.pass ? 'PASS' : 'FAIL'}  ${check.name}: ${check.detail}`)
  out.push(checks.every((check) => check.pass) ? 'SOAK PASSED' : 'SOAK FAILED')
  return out.join('\n')
}
