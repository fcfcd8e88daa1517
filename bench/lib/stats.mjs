// Small order statistics for per-round values and latency samples.

/** Nearest-rank percentile (q in 0..1) of already sorted numbers. */
export function percentileSorted (sorted, q) {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil(q * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

export function sortedNumbers (values) {
  return Float64Array.from(values).sort()
}

/** Median (mean of the middle two for an even count), min and max. */
export function summarize (values) {
  const sorted = sortedNumbers(values)
  const n = sorted.length
  if (n === 0) return null
  const median = n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
  return { median, min: sorted[0], max: sorted[n - 1], n }
}
