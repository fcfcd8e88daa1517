// The c100k run's verdicts and its Markdown report (bench/c100k.mjs builds
// the result). Totals are in MB (10^6 bytes), the unit of issue 15's goal;
// per-connection costs in KiB, as bench/README.md's idle row.

import { percentileSorted } from '../lib/stats.mjs'

// Issue 15's goal for the servers' summed RSS with every connection open.
const RSS_GOAL_MB = 600

const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`
const kib = (bytes) => `${(bytes / 1024).toFixed(2)} KiB`
const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`
const perSecond = (count, ms) => `${Math.round(count / (ms / 1000)).toLocaleString('en-US')}/s`
const ms = (us) => `${(us / 1000).toFixed(2)} ms`
const sum = (values) => values.reduce((total, value) => total + value, 0)

function mergeCounts (objects) {
  const out = {}
  for (const object of objects) for (const [key, count] of Object.entries(object)) out[key] = (out[key] ?? 0) + count
  return out
}

const cpuBetween = (from, to) => sum(to.map((usage, i) => usage.user + usage.system - from[i].user - from[i].system))

const describeCounts = (counts) => Object.entries(counts).map(([key, count]) => `${count} × ${key}`).join(', ') || 'none'

/** Figures derived once for both the checks and the report. */
function figures (result) {
  const { connections } = result.options
  const opens = result.open.answers
  const idles = result.idle.answers
  const closes = result.close.answers
  const rtts = Float64Array.from(idles.flatMap((answer) => answer.rtts)).sort()
  const lastDrops = closes.map((answer) => answer.drops)
  const serverClosesBeforeClosing = mergeCounts(result.idled.workers.map((w) => w.closes))
  return {
    connections,
    opened: sum(opens.map((answer) => answer.opened)),
    openFailures: mergeCounts(opens.map((answer) => answer.failures.reasons)),
    accepted: sum(result.opened.workers.map((w) => w.accepted)),
    openAtServer: sum(result.opened.workers.map((w) => w.open)),
    openAfterIdle: sum(result.idled.workers.map((w) => w.open)),
    openAfterClose: sum(result.closed.workers.map((w) => w.open)),
    drops: sum(lastDrops.map((drops) => drops.count)),
    dropReasons: mergeCounts(lastDrops.map((drops) => drops.reasons)),
    serverClosesBeforeClosing,
    pings: sum(idles.map((answer) => answer.pings)),
    pongsMissing: sum(idles.map((answer) => answer.pongsMissing)),
    unexpected: sum(closes.map((answer) => answer.unexpected)),
    rtts,
    heartbeats: {
      total: sum(idles.map((answer) => answer.heartbeats.total)),
      min: Math.min(...idles.map((answer) => answer.heartbeats.min)),
      max: Math.max(...idles.map((answer) => answer.heartbeats.max))
    },
    clean: sum(closes.map((answer) => answer.clean)),
    // The generators' CPU time (µs, all of them) in each phase.
    generatorCpu: {
      open: cpuBetween(result.generatorStartCpu, opens.map((answer) => answer.cpu)),
      idle: cpuBetween(opens.map((answer) => answer.cpu), idles.map((answer) => answer.cpu)),
      close: cpuBetween(idles.map((answer) => answer.cpu), closes.map((answer) => answer.cpu))
    },
    generatorRss: Math.max(...closes.map((answer) => answer.rss))
  }
}

/** [{ name, pass, detail }]: the run fails (exit 1) unless every one passes. */
export function checksOf (result) {
  const f = figures(result)
  const { connections, idleSeconds, heartbeatMs } = result.options
  const checks = [
    { name: 'every connection opened', pass: f.opened === connections && f.accepted === connections && f.openAtServer === connections,
      detail: `${f.opened} opened at the generators, ${f.accepted} accepted and ${f.openAtServer} open at the servers; failures: ${describeCounts(f.openFailures)}` },
    { name: 'none dropped', pass: f.drops === 0 && Object.keys(f.serverClosesBeforeClosing).length === 0 && f.openAfterIdle === connections,
      detail: `generators: ${f.drops} (${describeCounts(f.dropReasons)}); servers' closes before the closing phase: ${describeCounts(f.serverClosesBeforeClosing)}; open at the servers after idle: ${f.openAfterIdle}` },
    { name: 'every ping answered', pass: f.pongsMissing === 0 && f.rtts.length === f.pings && f.pings === connections,
      detail: `${f.pings} pings, ${f.rtts.length} pongs, ${f.pongsMissing} missing` },
    { name: 'only pings, pongs and closes from the server', pass: f.unexpected === 0, detail: `${f.unexpected} other frames` },
    { name: 'every connection closed cleanly', pass: f.clean === connections && f.openAfterClose === 0,
      detail: `${f.clean} closing handshakes completed with 1000; ${f.openAfterClose} still open at the servers` }
  ]
  // Only a period of at least one interval is sure to hold a heartbeat for every connection.
  if (idleSeconds * 1000 >= heartbeatMs) {
    checks.push({ name: 'heartbeats reached every connection', pass: f.heartbeats.min >= 1,
      detail: `${f.heartbeats.total} heartbeat pings answered while idle, ${f.heartbeats.min}–${f.heartbeats.max} per connection` })
  }
  return checks
}

function processRows (result) {
  const rows = []
  const pids = [result.servers.primaryPid, ...result.servers.workerPids]
  const { connections } = result.options
  const cpuMs = (from, to, pid) => (to.proc.byPid.get(pid).ticks - from.proc.byPid.get(pid).ticks) / result.env.clockTicks * 1000
  for (const pid of pids) {
    const worker = result.idled.workers.find((w) => w.pid === pid)
    const base = result.baseline.proc.byPid.get(pid).rss
    const open = result.opened.proc.byPid.get(pid).rss
    const idle = result.idled.proc.byPid.get(pid).rss
    const held = result.opened.workers.find((w) => w.pid === pid)?.open ?? 0
    // Per connection it handled: a worker its own share, the primary every one (it accepts them all).
    const openCpu = `${Math.round(cpuMs(result.baseline, result.opened, pid) * 1000 / (held || connections))} µs`
    const idleCpu = `${(cpuMs(result.opened, result.idled, pid) / 1000).toFixed(2)} s`
    rows.push(`| ${worker === undefined ? 'primary' : 'worker'} ${pid} | ${held} | ${mb(base)} | ${mb(open)} | ${mb(idle)} | ` +
      `${held === 0 ? '–' : kib((idle - base) / held)} | ${worker === undefined ? '–' : mb(worker.heapUsed + worker.external)} | ${openCpu} | ${idleCpu} |`)
  }
  return rows
}

export function formatReport (result, checks) {
  const f = figures(result)
  const { options, layout, env } = result
  const n = f.connections
  const baseRss = result.baseline.proc.rss
  const cpuSeconds = (from, to) => (to.proc.ticks - from.proc.ticks) / env.clockTicks
  const idleMs = result.idled.at - result.opened.at
  const percentile = (q) => ms(percentileSorted(f.rtts, q))
  const idles = result.idle.answers
  const delays = (list) => `${Math.max(...list.map((d) => d.p99)).toFixed(0)} ms / ${Math.max(...list.map((d) => d.max)).toFixed(0)} ms`
  const lines = [
    `# c100k: ${n.toLocaleString('en-US')} concurrent connections`,
    '',
    `${env.machine}. ${layout.workers} server workers (node:cluster) + primary${env.pin ? ' pinned to CPU 0' : ''}; ` +
      `${layout.generators} generators on 127.0.0.2–127.0.0.${layout.generators + 1}${env.pin ? ' pinned to CPU 1' : ''}; ` +
      `fd limit ${env.fileLimit} (≤ ${layout.perProcess} sockets a process). ` +
      `Plugin defaults with heartbeatInterval ${options.heartbeatMs} ms; idle ${options.idleSeconds} s. ` +
      `Machine load average (1 min) ${result.load.map((load) => load.toFixed(1)).join(' at the start, ')} at the end.`,
    '',
    '| figure | value |',
    '| --- | ---: |',
    `| time to open all | ${seconds(result.open.ms)} (${perSecond(n, result.open.ms)}) |`,
    `| CPU to open, per connection: servers / generators | ${Math.round(cpuSeconds(result.baseline, result.opened) / n * 1e6)} µs / ${Math.round(f.generatorCpu.open / n)} µs |`,
    `| server RSS before any connection (all processes) | ${mb(baseRss)} |`,
    `| server RSS, all open | ${mb(result.opened.proc.rss)} |`,
    `| server RSS, end of idle | ${mb(result.idled.proc.rss)} (goal ≤ ${RSS_GOAL_MB} MB: ${result.idled.proc.rss <= RSS_GOAL_MB * 1e6 ? 'met' : 'NOT met'}) |`,
    `| server RSS minus baseline, end of idle | ${mb(result.idled.proc.rss - baseRss)} |`,
    `| per connection (minus baseline), end of idle | ${kib((result.idled.proc.rss - baseRss) / n)} |`,
    `| CPU while idle (heartbeats, pings): servers / generators | ${(cpuSeconds(result.opened, result.idled) / (idleMs / 1000) * 100).toFixed(1)} % / ${(f.generatorCpu.idle / 1e6 / (idleMs / 1000) * 100).toFixed(1)} % of a core |`,
    `| ping → pong round trip, p50 / p99 / max (${f.rtts.length} pings) | ${percentile(0.5)} / ${percentile(0.99)} / ${ms(f.rtts.at(-1) ?? NaN)} |`,
    `| event-loop delay while idle, worst p99 / max: server workers | ${delays(result.idled.workers.map((w) => w.delay))} |`,
    `| event-loop delay while idle, worst p99 / max: generators | ${delays(idles.map((answer) => answer.delay))} |`,
    `| heartbeat pings answered while idle | ${f.heartbeats.total} (${f.heartbeats.min}–${f.heartbeats.max} per connection) |`,
    `| dropped: seen by the generators / closed by the servers / failed to open | ${f.drops} / ${sum(Object.values(f.serverClosesBeforeClosing))} / ${n - f.opened} |`,
    `| time to close all | ${seconds(result.close.ms)} (${perSecond(n, result.close.ms)}), ${f.clean} clean |`,
    `| CPU to close, per connection: servers / generators | ${Math.round(cpuSeconds(result.idled, result.closed) / n * 1e6)} µs / ${Math.round(f.generatorCpu.close / n)} µs |`,
    `| generator RSS, largest | ${mb(f.generatorRss)} |`,
    '',
    '| process | connections | RSS before | RSS open | RSS end of idle | RSS per connection | heap + external | CPU to open, per connection handled | CPU while idle |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...processRows(result),
    '',
    ...checks.map((check) => `- ${check.pass ? 'PASS' : 'FAIL'} ${check.name}: ${check.detail}`),
    ''
  ]
  return `${lines.join('\n')}\n`
}
