// Command-line options of bench/run.mjs.

import { parseArgs } from 'node:util'

const USAGE = `Usage: node bench/run.mjs [options]
  --smoke              tiny windows, few connections, 1 round; exit 1 on any wrong echo
  --rounds N           interleaved rounds (default 5, smoke 1)
  --duration MS        measurement window per cell (default 3000, smoke 100)
  --only a,b           scenarios: SCENARIO_IDS
  --servers a,b        servers: SERVER_IDS
  --help`

export function usage (scenarioIds, serverIds) {
  return USAGE.replace('SCENARIO_IDS', scenarioIds.join(', ')).replace('SERVER_IDS', serverIds.join(', '))
}

function list (value, known, what) {
  if (value === undefined) return known
  const wanted = value.split(',').map((item) => item.trim()).filter(Boolean)
  const unknown = wanted.filter((item) => !known.includes(item))
  if (unknown.length > 0) throw new Error(`unknown ${what}: ${unknown.join(', ')} (known: ${known.join(', ')})`)
  // Keep the catalogue's order so tables line up between runs.
  return known.filter((item) => wanted.includes(item))
}

function positiveInteger (value, name) {
  const number = Number(value)
  if (!Number.isInteger(number) || number < 1) throw new Error(`--${name} must be a positive integer`)
  return number
}

export function parseOptions (argv, scenarioIds, serverIds) {
  const { values } = parseArgs({
    args: argv,
    options: {
      smoke: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      only: { type: 'string' },
      servers: { type: 'string' },
      help: { type: 'boolean', default: false }
    }
  })
  const smoke = values.smoke
  const durationMs = values.duration === undefined ? (smoke ? 100 : 3000) : positiveInteger(values.duration, 'duration')
  return {
    help: values.help,
    smoke,
    rounds: values.rounds === undefined ? (smoke ? 1 : 5) : positiveInteger(values.rounds, 'rounds'),
    // A short warm-up per cell lets the JIT and socket buffers settle.
    timing: { durationMs, warmupMs: Math.min(500, Math.round(durationMs / 4)) },
    scenarios: list(values.only, scenarioIds, 'scenario'),
    servers: list(values.servers, serverIds, 'server')
  }
}
