// Benchmark entry point: starts the servers and the load generator, runs
// every scenario against every server in interleaved rounds, and reports.
// `node bench/run.mjs --help` lists the options.

import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseOptions, usage } from './lib/args.mjs'
import { describeEnvironment } from './lib/environment.mjs'
import { renderReport } from './lib/report.mjs'
import { estimateRoundMs, SCENARIOS } from './lib/scenarios.mjs'
import { Fleet } from './lib/fleet.mjs'
import { isReferenceServer, SERVERS, startServer } from './lib/servers.mjs'
import { ensureBuilt } from './lib/build.mjs'

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))
// Sockets each process keeps beyond the idle connections (servers' own, IPC, stdio).
const FD_HEADROOM = 1000

const log = (line) => process.stderr.write(`${line}\n`)

// A scenario with `servers` (the http2 one: only ours serves RFC 8441) has no cells for the others.
const runsOn = (scenario, serverId) => scenario.servers === undefined || scenario.servers.includes(serverId)
// A server's `only` may name a scenario or its group (`idle` for idle-fresh and idle-warmed).
const measuredIn = (definition, scenario) => definition.only === undefined ||
  definition.only.includes(scenario.id) || (scenario.group !== undefined && definition.only.includes(scenario.group))

function paramsFor (scenario, options, environment) {
  const params = { ...(options.smoke ? scenario.smoke : scenario.full) }
  if (params.count !== undefined && params.count > environment.fileLimit - FD_HEADROOM) {
    const capped = Math.max(1, environment.fileLimit - FD_HEADROOM)
    log(`note: ${scenario.id} capped to ${capped} connections by the file descriptor limit (ulimit -Hn ${environment.fileLimit})`)
    params.count = capped
  }
  return params
}

function formatProgress (result, scenario) {
  if (result.unsupported) return `n/a (${result.reason})`
  if (result.failure) return `FAILED: ${result.failure.split('\n')[0]}`
  const values = scenario.metrics.map((metric) => `${metric.key}=${result.metrics[metric.key]?.toFixed(1) ?? '?'}`).join(' ')
  const percent = (value) => value === null || value === undefined ? '?' : `${value.toFixed(0)}%`
  const cpu = result.generatorCpu === undefined
    ? ''
    : `  gen ${percent(result.generatorCpu)} srv ${percent(result.serverCpu)} other ${percent(result.otherCpu)}`
  const compressed = typeof result.compressedShare === 'number' ? `  compressed ${(result.compressedShare * 100).toFixed(0)}%` : ''
  return `${values}${compressed}${cpu}`
}

async function runCell (fleet, scenario, serverId, options, environment, params) {
  const definition = fleet.servers.get(serverId).definition
  if (!measuredIn(definition, scenario)) {
    return { unsupported: true, reason: `measured only in ${definition.only.join(', ')}` }
  }
  if (scenario.requires !== undefined) {
    const feature = fleet.features(serverId)[scenario.requires]
    if (feature !== true) {
      return { unsupported: true, reason: typeof feature === 'string' ? feature : `no ${scenario.requires} support` }
    }
  }
  let load
  try {
    const server = await fleet.server(serverId)
    load = await fleet.loadGenerator()
    const result = await scenario.measure({
      server,
      load,
      definition,
      pin: environment.pin,
      params,
      smoke: options.smoke,
      timing: options.timing,
      clockTicks: environment.clockTicks,
      startFreshServer: () => startServer(definition, { pin: environment.pin })
    })
    if (result.unsupported) return { unsupported: true, reason: result.reason ?? 'the server answered that it has no API for this scenario' }
    return result
  } catch (error) {
    // A job that timed out may have left the generator wedged: start a new one.
    await load?.stop()
    return { failure: error.message }
  }
}

async function main () {
  // --only takes a scenario's id or its group's (bench/lib/process-age.mjs): `echo-16k` runs echo-16k-fresh and echo-16k-warmed.
  const groups = [...new Set(SCENARIOS.map((scenario) => scenario.group).filter((group) => group !== undefined))]
  const scenarioIds = [...SCENARIOS.map((scenario) => scenario.id), ...groups]
  const listed = [...SCENARIOS.map((scenario) => scenario.id), ...groups.map((group) => `${group} (= ${group}-fresh,${group}-warmed)`)]
  const serverIds = SERVERS.map((server) => server.id)
  let options
  try {
    options = parseOptions(process.argv.slice(2), scenarioIds, serverIds)
  } catch (error) {
    log(`${error.message}\n${usage(listed, serverIds)}`)
    return 2
  }
  if (options.help) {
    console.log(usage(listed, serverIds))
    return 0
  }
  if (options.servers.includes('rfc6455')) ensureBuilt(log)
  const environment = describeEnvironment()
  // Pinning makes numbers comparable; a smoke run only checks correctness and
  // is better off free to use whichever core a busy machine has spare.
  if (options.smoke) environment.pin = false
  const scenarios = SCENARIOS.filter((scenario) => options.scenarios.includes(scenario.id) || options.scenarios.includes(scenario.group))
  // A server measured only in some scenarios (`only`), or that no selected
  // scenario runs on (a scenario's `servers`), is not started.
  const definitions = SERVERS.filter((server) => options.servers.includes(server.id) &&
    scenarios.some((scenario) => measuredIn(server, scenario) && runsOn(scenario, server.id)))
  const params = new Map(scenarios.map((scenario) => [scenario.id, paramsFor(scenario, options, environment)]))

  log(`machine: ${environment.machine}`)
  if (!environment.pin && !options.smoke) log('note: taskset or a second core is missing: processes are not pinned')
  const estimate = options.rounds * scenarios.reduce((sum, scenario) => sum + estimateRoundMs([scenario],
    definitions.filter((d) => measuredIn(d, scenario)).map((d) => d.id), options.timing, options.smoke), 0)
  log(`${options.smoke ? 'smoke' : 'full'} run: ${options.rounds} round(s), ${scenarios.length} scenario(s), ` +
    `${definitions.length} server(s); estimated ${Math.ceil(estimate / 1000)} s`)

  const startedAt = Date.now()
  const fleet = new Fleet(environment, log)
  try {
    const skipped = await fleet.start(definitions)
    for (const [id, reason] of skipped) log(`skipping server ${id}: ${reason}`)
    const running = definitions.map((d) => d.id).filter((id) => !skipped.has(id))

    const results = new Map(scenarios.map((scenario) => [scenario.id, new Map(running.filter((id) => runsOn(scenario, id)).map((id) => [id, []]))]))
    // Interleaved (A B C D, A B C D, ...) so slow drifts on a shared machine hit every server alike.
    for (let round = 0; round < options.rounds; round++) {
      for (const scenario of scenarios) {
        for (const id of results.get(scenario.id).keys()) {
          const result = await runCell(fleet, scenario, id, options, environment, params.get(scenario.id))
          results.get(scenario.id).get(id).push(result)
          log(`[${round + 1}/${options.rounds}] ${scenario.id.padEnd(10)} ${id.padEnd(18)} ${formatProgress(result, scenario)}`)
        }
      }
    }

    const report = renderReport({
      environment,
      options,
      scenarios,
      serverIds: definitions.map((d) => d.id),
      skipped,
      results,
      elapsedMs: Date.now() - startedAt
    })
    process.stdout.write(report)
    mkdirSync(RESULTS_DIR, { recursive: true })
    // A smoke run must not overwrite the last real measurement.
    const file = options.smoke ? 'latest-smoke.md' : 'latest.md'
    writeFileSync(join(RESULTS_DIR, file), report)
    log(`report written to bench/results/${file} (${((Date.now() - startedAt) / 1000).toFixed(1)} s)`)

    const failures = [...results.values()].flatMap((byServer) => [...byServer.values()].flat()).filter((r) => r.failure)
    // A reference server without a binary for this platform is reported, not fatal.
    const notStarted = [...skipped.keys()].filter((id) => !isReferenceServer(id))
    if (options.smoke && (notStarted.length > 0 || failures.length > 0)) {
      log(`smoke FAILED: ${notStarted.length} server(s) did not start, ${failures.length} cell(s) failed`)
      return 1
    }
    return 0
  } finally {
    await fleet.stop()
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    log(error?.stack ?? String(error))
    process.exit(1)
  }
)
