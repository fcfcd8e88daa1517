// Fresh and warmed server processes (issue 15). V8 sizes its heap and picks
// when to collect from what a process has allocated so far, so large-message
// echo and idle memory read differently in a process that has just started
// and in one that has run for a while. A row measured on the run's long-lived
// server would depend on whichever scenarios happened to run before it (and
// on --only), so these rows each get a new server process:
// - fresh: nothing runs on it before the measurement, not even the cell's
//   usual warm-up, so its window starts at the first message it gets;
// - warmed: it first takes WARM_UP, the same fixed load for every server,
//   then the measurement as on any other row.

const SMALL = { kind: 'binary', size: 32 }
// Generous: a phase's count normally takes about a second (see WARM_UP).
const PHASE_CAP_MS = 30_000
const PHASE_SLACK_MS = 30_000

/**
 * The warm-up: counts, not times, so every server does the same work however
 * fast it is. One phase per kind of load the rows put on a server: small and
 * large messages, and connection churn, with the connection counts of the
 * scenarios of the same load. The counts are the smallest tried at which
 * both Node.js WebSocket servers' V8 heap stopped growing: committed heap
 * (--trace-gc) during a 1 MiB echo window afterwards, ws 16.7 MB fresh, 28.5
 * after half these counts, 43-44 after these, 45 after twice and three times
 * as many; rfc6455 reaches its 47 after a quarter. That is about a second
 * per phase for ws on the 2-core reference box, so a warmed cell costs about
 * 5 s more than a fresh one. Smoke runs only check that the phases work.
 */
export const WARM_UP = {
  full: [
    { label: '32 B echoes', count: 100_000, job: { kind: 'echo', payload: SMALL, conns: 100, inflight: 16 } },
    { label: '16 KiB echoes', count: 40_000, job: { kind: 'echo', payload: { kind: 'binary', size: 16 * 1024 }, conns: 10, inflight: 4 } },
    { label: '1 MiB echoes', count: 500, job: { kind: 'echo', payload: { kind: 'binary', size: 1024 * 1024 }, conns: 1, inflight: 2 } },
    { label: 'connections opened and closed (one 32 B echo each)', count: 3000, job: { kind: 'handshake', payload: SMALL, concurrency: 50 } }
  ],
  smoke: [
    { label: '32 B echoes', count: 200, job: { kind: 'echo', payload: SMALL, conns: 4, inflight: 4 } },
    { label: '16 KiB echoes', count: 40, job: { kind: 'echo', payload: { kind: 'binary', size: 16 * 1024 }, conns: 2, inflight: 2 } },
    { label: '1 MiB echoes', count: 4, job: { kind: 'echo', payload: { kind: 'binary', size: 1024 * 1024 }, conns: 1, inflight: 2 } },
    { label: 'connections opened and closed (one 32 B echo each)', count: 20, job: { kind: 'handshake', payload: SMALL, concurrency: 4 } }
  ]
}

/** Wall time of the warm-up and of starting a server, for the run's estimate. */
export const AGE_SETUP_MS = {
  start: { full: 700, smoke: 0 },
  warmUp: { full: 5000, smoke: 300 }
}

/** "100000 × 32 B echoes, ..." for the report. */
export function describeWarmUp (smoke) {
  return WARM_UP[smoke ? 'smoke' : 'full'].map((phase) => `${phase.count.toLocaleString('en-US')} ${phase.label}`).join(', ')
}

/** Runs every warm-up phase on `server`; resolves with null, or with what went wrong. */
async function warmUp (ctx, server) {
  for (const phase of WARM_UP[ctx.smoke ? 'smoke' : 'full']) {
    const result = await ctx.load.run({
      ...phase.job,
      path: '/echo',
      port: server.port,
      serverPid: server.pid,
      clockTicks: ctx.clockTicks,
      warmupMs: 0,
      durationMs: PHASE_CAP_MS,
      stopAfter: phase.count
    }, PHASE_CAP_MS + PHASE_SLACK_MS)
    if (result.failure) return `warm-up (${phase.label}): ${result.failure}`
    if (result.unsupported) return `warm-up (${phase.label}): unsupported`
    // A phase cut short would make this server's warmed row mean something else.
    if (!(result.operations >= phase.count)) {
      return `warm-up (${phase.label}): ${result.operations ?? 0} of ${phase.count} in ${PHASE_CAP_MS} ms`
    }
  }
  return null
}

/**
 * `measure(ctx)` on a server process of the given age ('fresh' or 'warmed'),
 * started for the cell and stopped after it. Smoke runs keep to the run's
 * long-lived server, as the idle rows always have: starting a process per
 * cell would double a smoke run, which checks correctness only.
 */
export function onOwnProcess (age, measure) {
  return async (ctx) => {
    const server = ctx.smoke ? ctx.server : await ctx.startFreshServer()
    try {
      if (age === 'warmed') {
        const failure = await warmUp(ctx, server)
        if (failure !== null) return { failure }
      }
      const timing = age === 'fresh' ? { ...ctx.timing, warmupMs: 0 } : ctx.timing
      return await measure({ ...ctx, server, timing })
    } finally {
      if (server !== ctx.server) await server.stop()
    }
  }
}

/**
 * A fresh and a warmed row of `scenario`: ids `<id>-fresh` and
 * `<id>-warmed`, and `group: <id>`, so `--only <id>` selects both.
 */
export function freshAndWarmed (scenario) {
  return ['fresh', 'warmed'].map((age) => ({
    ...scenario,
    id: `${scenario.id}-${age}`,
    group: scenario.id,
    title: `${scenario.title}, ${age} process`,
    age,
    measure: onOwnProcess(age, scenario.measure)
  }))
}
