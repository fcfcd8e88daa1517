// The http2 scenario's part of the report: a table of its own, one column per
// transport and their ratio, since it compares two transports on one server
// rather than servers (bench/lib/http2-compare.mjs).

import { formatSummary, GENERATOR_SATURATED, table } from './report.mjs'
import { HTTP2_ROWS, TRANSPORTS } from './http2-compare.mjs'
import { summarize } from './stats.mjs'

const [H1, H2] = TRANSPORTS.map((transport) => transport.suffix)

const values = (rounds, key) => rounds.map((round) => round?.metrics?.[key] ?? null)

function windowMedian (rounds, window, field) {
  const measured = rounds.map((round) => round?.windows?.[window]?.[field]).filter((value) => typeof value === 'number')
  return measured.length === 0 ? null : summarize(measured).median
}

function cell (rounds, row, suffix) {
  const measured = values(rounds, row.key + suffix).filter((value) => value !== null)
  if (measured.length === 0) return 'failed'
  let text = formatSummary(measured, row.unit)
  // As in the main table: the generator's core was (nearly) full, the rate may be its limit.
  if (row.window !== undefined && windowMedian(rounds, row.window + suffix, 'generatorCpu') >= GENERATOR_SATURATED) text += ' ⚠'
  return text
}

/** Median over rounds of HTTP/2's value divided by HTTP/1.1's in the same round. */
function ratio (rounds, row) {
  const h1 = values(rounds, row.key + H1)
  const h2 = values(rounds, row.key + H2)
  const ratios = []
  for (let i = 0; i < rounds.length; i++) if (h1[i] !== null && h2[i] !== null && h1[i] !== 0) ratios.push(h2[i] / h1[i])
  return ratios.length === 0 ? '—' : `×${summarize(ratios).median.toFixed(2)}`
}

function cpuCell (rounds, window) {
  const percent = (field) => {
    const median = windowMedian(rounds, window, field)
    return median === null ? '?' : `${median.toFixed(0)}%`
  }
  const generator = windowMedian(rounds, window, 'generatorCpu')
  const flag = generator !== null && generator >= GENERATOR_SATURATED ? ' ⚠' : ''
  return `${percent('generatorCpu')}${flag} · ${percent('serverCpu')} · ${percent('otherCpu')}`
}

/** TLS resumption over the HTTP/1.1 set-up windows: the share of handshakes that resumed a session. */
function resumption (rounds) {
  let handshakes = 0
  let resumed = 0
  for (const round of rounds) {
    const stats = round?.transportStats?.[`open${H1}`]
    handshakes += stats?.handshakes ?? 0
    resumed += stats?.resumed ?? 0
  }
  return handshakes === 0 ? null : resumed / handshakes
}

/**
 * Markdown lines for the scenario: `rounds` are the rfc6455 cell's results
 * (one per round), undefined when that server did not run.
 */
export function renderHttp2Section ({ rounds, params, title }) {
  const lines = [`## ${title}`, '']
  if (rounds === undefined) return [...lines, 'Not run: it needs the rfc6455 server (`--servers rfc6455`).']
  const header = ['measure', 'HTTP/1.1: a TLS connection each', 'HTTP/2: streams of one TLS session', 'HTTP/2 ÷ HTTP/1.1']
  const rows = HTTP2_ROWS.map((row) => {
    const arrow = row.better === 'higher' ? ' ↑' : row.better === 'lower' ? ' ↓' : ''
    const about = row.about === undefined ? '' : ` (${row.about(params)})`
    return [`${row.label}${about}${arrow}`, cell(rounds, row, H1), cell(rounds, row, H2), ratio(rounds, row)]
  })
  for (const [window, what] of [['open', 'opening'], ['echo', 'echo']]) {
    rows.push([`CPU while ${what}: generator · server · other`, cpuCell(rounds, window + H1), cpuCell(rounds, window + H2), ''])
  }
  const share = resumption(rounds)
  return [
    ...lines,
    'The same server process (our plugin on an HTTP/2 server with `allowHTTP1`) takes both; cells are the median ' +
      '[min–max] over rounds, the ratio the median over rounds of HTTP/2 ÷ HTTP/1.1 in the same round. ' +
      'CPU: percent of one core during the window; ⚠: the load generator used ≥ 90% of its core.',
    '',
    table(header, rows),
    ...(share === null ? [] : ['', `HTTP/1.1 set-up: ${(share * 100).toFixed(0)}% of the TLS handshakes resumed a session (TLS 1.3 PSK + ECDHE).`])
  ]
}
