// Reading one cell's per-round results: a metric's values, their ratios to
// another server's in the same rounds, and whether the generator saturated.

import { summarize } from './stats.mjs'

export const GENERATOR_SATURATED = 90

/** Values of one metric per round, with null where that round gave none. */
export function perRound (rounds, key) {
  return rounds.map((round) => round?.metrics?.[key] ?? null)
}

/** This server's value over the reference's, for each round where both measured one. */
export function roundRatios (mine, reference) {
  const ratios = []
  for (let i = 0; i < mine.length; i++) {
    if (mine[i] !== null && reference?.[i] != null && reference[i] !== 0) ratios.push(mine[i] / reference[i])
  }
  return ratios
}

/** Median generator CPU, or null for cells without a timed window. */
export function generatorMedian (rounds) {
  const values = rounds.map((round) => round?.generatorCpu).filter((value) => value !== undefined)
  return values.length === 0 ? null : summarize(values).median
}

export function generatorSaturated (rounds) {
  const median = generatorMedian(rounds)
  return median !== null && median >= GENERATOR_SATURATED
}
