// Issue 15's goals: a metric declares `goals: [{ reference, atLeast }]` (or
// `atMost`), a bound on the rfc6455 server's value over the reference
// server's, and each becomes a row of the report's goals table.

import { generatorSaturated, perRound, roundRatios } from './rounds.mjs'
import { summarize } from './stats.mjs'

// The goals are this plugin's: every one is about its server.
export const GOAL_SUBJECT = 'rfc6455'

export const GOALS_HEADER = ['goal', 'target', `measured ${GOAL_SUBJECT} ÷ reference`, 'verdict']

function target (goal) {
  return goal.atLeast !== undefined ? `≥ ${goal.atLeast.toFixed(2)}× ${goal.reference}` : `≤ ${goal.atMost.toFixed(2)}× ${goal.reference}`
}

const measuredAny = (rounds, key) => rounds !== undefined && perRound(rounds, key).some((value) => value !== null)

/**
 * One goal on one scenario's results: { measured, verdict }. The ratio is
 * the median over rounds of the per-round ratio, as in the main table;
 * a reference server that is not in the run, did not start, has no
 * counterpart (n/a) or failed every round gives 'no reference'.
 */
export function judgeGoal (byServer, metric, goal) {
  const mine = byServer.get(GOAL_SUBJECT)
  const reference = byServer.get(goal.reference)
  if (!measuredAny(reference, metric.key)) return { measured: '—', verdict: 'no reference' }
  if (!measuredAny(mine, metric.key)) return { measured: '—', verdict: 'no result' }
  const ratios = roundRatios(perRound(mine, metric.key), perRound(reference, metric.key))
  // Idle RSS can read 0 on a small smoke run: no ratio to judge.
  if (ratios.length === 0) return { measured: '—', verdict: 'no round with both values and a non-zero reference' }
  const { median, min, max, n } = summarize(ratios)
  let measured = `×${median.toFixed(2)}`
  if (n > 1) measured += ` [${min.toFixed(2)}–${max.toFixed(2)}, ${n} rounds]`
  // Either side's number may be the generator's limit rather than the server's.
  if (generatorSaturated(mine) || generatorSaturated(reference)) measured += ' ⚠'
  const met = goal.atLeast !== undefined ? median >= goal.atLeast : median <= goal.atMost
  return { measured, verdict: met ? 'met' : 'missed' }
}

/** The goals table's rows, for the scenarios that ran, each named as its row in the main table. */
export function goalRows (scenarios, results, smoke) {
  const rows = []
  for (const scenario of scenarios) {
    const name = `${scenario.title} (${scenario.describe(smoke ? scenario.smoke : scenario.full)})`
    for (const metric of scenario.metrics) {
      for (const goal of metric.goals ?? []) {
        const { measured, verdict } = judgeGoal(results.get(scenario.id), metric, goal)
        rows.push([`${name}, ${metric.label}`, target(goal), measured, verdict])
      }
    }
  }
  return rows
}
