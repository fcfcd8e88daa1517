// Turns per-round results into the markdown report. A scenario with a
// `section` (the http2 one) renders a table of its own below the main ones.

import { GOAL_SUBJECT, GOALS_HEADER, goalRows } from './goals.mjs'
import { describeWarmUp } from './process-age.mjs'
import { GENERATOR_SATURATED, generatorMedian, generatorSaturated, perRound, roundRatios } from './rounds.mjs'
import { summarize } from './stats.mjs'

export { GENERATOR_SATURATED }
const REFERENCE = 'ws'

function significant (value) {
  const magnitude = Math.abs(value)
  return magnitude >= 100 ? value.toFixed(0) : magnitude >= 10 ? value.toFixed(1) : value.toFixed(2)
}

const FORMATS = {
  rate: (value) => value >= 1e6 ? `${significant(value / 1e6)}M` : value >= 1e3 ? `${significant(value / 1e3)}k` : significant(value),
  micros: (value) => significant(value),
  bytes: (value) => Math.abs(value) >= 1024 ? `${significant(value / 1024)} KiB` : `${value.toFixed(0)} B`
}

export function formatSummary (values, unit) {
  const summary = summarize(values)
  const format = FORMATS[unit]
  if (summary.n === 1 || summary.min === summary.max) return format(summary.median)
  return `${format(summary.median)} [${format(summary.min)}–${format(summary.max)}]`
}

/** Median over rounds of this server's value divided by ws's in the same round. */
function ratioToReference (mine, reference) {
  const ratios = roundRatios(mine, reference)
  return ratios.length === 0 ? null : summarize(ratios).median
}

function metricCell (rounds, metric, referenceRounds, isReference) {
  if (rounds === undefined) return '—'
  const values = perRound(rounds, metric.key)
  const measured = values.filter((value) => value !== null)
  if (measured.length === 0) return rounds.some((round) => round?.unsupported) ? 'n/a' : 'failed'
  let cell = formatSummary(measured, metric.unit)
  if (!isReference && referenceRounds !== undefined) {
    const ratio = ratioToReference(values, perRound(referenceRounds, metric.key))
    if (ratio !== null) cell += ` ×${ratio.toFixed(2)}`
  }
  if (generatorSaturated(rounds)) cell += ' ⚠'
  const failed = rounds.filter((round) => round?.failure).length
  if (failed > 0) cell += ` (${failed}/${rounds.length} failed)`
  return cell
}

function medianPercent (rounds, key) {
  const values = rounds.map((round) => round[key]).filter((value) => value !== null && value !== undefined)
  return values.length === 0 ? '?' : `${summarize(values).median.toFixed(0)}%`
}

function cpuCell (rounds) {
  if (rounds === undefined) return '—'
  const generator = generatorMedian(rounds)
  if (generator === null) return '—'
  const measured = rounds.filter((round) => round?.generatorCpu !== undefined)
  const flag = generator >= GENERATOR_SATURATED ? ' ⚠' : ''
  return `${generator.toFixed(0)}%${flag} · ${medianPercent(measured, 'serverCpu')} · ${medianPercent(measured, 'otherCpu')}`
}

export function table (header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`]
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`)
  return lines.join('\n')
}

/**
 * `results.get(scenarioId).get(serverId)` is an array with one entry per
 * round: { metrics, generatorCpu, serverCpu } | { failure } | { unsupported }.
 */
export function renderReport ({ environment, options, scenarios, serverIds, skipped, results, elapsedMs }) {
  const running = serverIds.filter((id) => !skipped.has(id))
  const header = ['scenario', ...running]
  const metricRows = []
  const cpuRows = []
  const sections = []
  for (const scenario of scenarios) {
    const byServer = results.get(scenario.id)
    const params = options.smoke ? scenario.smoke : scenario.full
    if (scenario.section !== undefined) {
      sections.push(...scenario.section({ byServer, params }))
      continue
    }
    const name = `${scenario.title} (${scenario.describe(params)})`
    // A scenario may compare with another server than ws (the cross-instance one: socket.io).
    const reference = scenario.reference ?? REFERENCE
    const against = reference === REFERENCE ? '' : ` (×r: to ${reference})`
    for (const metric of scenario.metrics) {
      const arrow = metric.better === 'higher' ? '↑' : '↓'
      metricRows.push([
        `${name}, ${metric.label} ${arrow}${against}`,
        ...running.map((id) => metricCell(byServer.get(id), metric, byServer.get(reference), id === reference))
      ])
    }
    if (!scenario.untimed) cpuRows.push([name, ...running.map((id) => cpuCell(byServer.get(id)))])
  }

  const notes = []
  for (const [id, reason] of skipped) notes.push(`- **${id}** skipped: ${reason.split('\n')[0]}`)
  // One note per server and reason for n/a cells, listing the scenarios (socket.io is n/a in most).
  const unsupported = new Map()
  for (const scenario of scenarios) {
    for (const [id, rounds] of results.get(scenario.id)) {
      const reason = rounds.find((round) => round?.unsupported)?.reason
      if (reason === undefined) continue
      const key = `${id}\n${reason}`
      if (!unsupported.has(key)) unsupported.set(key, { id, reason, scenarios: [] })
      unsupported.get(key).scenarios.push(scenario.id)
    }
  }
  for (const { id, reason, scenarios: ids } of unsupported.values()) notes.push(`- ${ids.join(', ')} / ${id}: n/a: ${reason}`)
  for (const scenario of scenarios) {
    for (const [id, rounds] of results.get(scenario.id)) {
      const reasons = new Set()
      rounds.forEach((round, index) => {
        if (round?.failure) reasons.add(`round ${index + 1} failed: ${round.failure.split('\n')[0]}`)
        // Compression scenarios: a server may send some messages uncompressed (below its threshold, say).
        const share = round?.compressedShare
        if (typeof share === 'number' && share < 1) reasons.add(`${(share * 100).toFixed(0)}% of the messages it sent were compressed`)
      })
      for (const reason of reasons) notes.push(`- ${scenario.id} / ${id}: ${reason}`)
    }
  }

  const goals = goalRows(scenarios.filter((scenario) => scenario.section === undefined), results, options.smoke)
  const ownProcess = scenarios.some((scenario) => scenario.age === 'warmed')
    ? ['', 'Rows of a fresh or a warmed process run on a server process started for the cell ' +
        (options.smoke ? '(in full runs; a smoke run keeps to the long-lived one) ' : '(every other row: on the server\'s one long-lived process). ') +
        'Fresh: nothing runs before the measurement, whose window starts at the first message (no warm-up). ' +
        `Warmed: first a fixed warm-up load, the same for every server: ${describeWarmUp(options.smoke)}.`]
    : []
  const mode = options.smoke ? 'smoke' : 'full'
  const pinning = environment.pin
    ? 'servers pinned to CPU 0, load generator to CPU 1 (taskset)'
    : options.smoke ? 'not pinned (smoke run)' : 'not pinned (taskset or a second core unavailable)'
  return [
    '# fastify-rfc6455 benchmark',
    '',
    `Machine: ${environment.machine}`,
    '',
    `Mode: ${mode}; ${options.rounds} round(s) interleaved across servers; ` +
      `${options.timing.durationMs} ms window after ${options.timing.warmupMs} ms warm-up per cell; ` +
      `${pinning}; wall time ${(elapsedMs / 1000).toFixed(1)} s.`,
    '',
    ...(metricRows.length === 0
      ? []
      : [
          `Cells: median [min–max] over rounds; ×r is the median over rounds of the ratio to ${REFERENCE} (or to the server a row names) measured in the same round ` +
            '(↑ higher is better, ↓ lower is better). ⚠: the load generator used ≥ 90% of its core, so the number ' +
            'may be the generator\'s limit rather than the server\'s. The raw server echoes bytes without parsing frames: ' +
            'it is the ceiling of this loopback + load-generator setup, not a WebSocket server.',
          ...ownProcess,
          '',
          table(header, metricRows),
          '',
          'CPU during the measurement window, median over rounds, 100% = one core: load generator (⚠ at ≥ 90%: it may be ' +
            'the bottleneck) · server · everything else on the machine (other users of a shared box).',
          '',
          table(header, cpuRows)
        ]),
    ...(goals.length === 0
      ? []
      : [
          '',
          `Goals (issue 15), each for ${GOAL_SUBJECT}: the median over rounds of its value divided by the reference's in ` +
            'the same round [min–max over rounds]; ⚠: the generator saturated in either cell; "no reference": that ' +
            'server is not in the run, did not start, has no such route, or failed.' +
            (options.smoke ? ' Smoke run: the loads are tiny, the verdicts mean nothing.' : ''),
          '',
          table(GOALS_HEADER, goals)
        ]),
    // The main tables end without a blank line; the line after Mode is one.
    ...(sections.length > 0 ? [...(metricRows.length > 0 ? [''] : []), ...sections] : []),
    ...(notes.length > 0 ? ['', 'Notes:', '', ...notes] : []),
    ''
  ].join('\n')
}
