// Before/after figures for issue 8's hostile cases: each case runs against a
// fresh server process (the plugin at its defaults), and the server's RSS is
// sampled while the case runs. Loopback only, every case bounded.
//   node scripts/attacks.mjs [path to a build's dist/cjs/index.js] [--connections N]
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import * as attacks from '../test/fixtures/hostile/attacks.mjs'

const SERVER = fileURLToPath(new URL('../test/fixtures/hostile/server.mjs', import.meta.url))
const entry = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : fileURLToPath(new URL('../dist/cjs/index.js', import.meta.url))
const connectionsFlag = process.argv.indexOf('--connections')
const many = connectionsFlag === -1 ? 200 : Number(process.argv[connectionsFlag + 1])
const MiB = 1024 * 1024

async function withServer (run) {
  const child = fork(SERVER, [entry], { execArgv: ['--expose-gc'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr += d })
  let exit = null
  child.on('exit', (code, signal) => { exit = { code, signal } })
  const [{ port }] = await once(child, 'message')
  const stats = () => new Promise((resolve) => {
    if (exit !== null || !child.connected) return resolve(null)
    const onMessage = (m) => { if (m.stats) { child.off('message', onMessage); resolve(m.stats) } }
    child.on('message', onMessage)
    child.once('exit', () => resolve(null))
    child.send('stats')
  })
  const base = await stats()
  let peak = base.rss
  const sampler = setInterval(async () => { const s = await stats(); if (s) peak = Math.max(peak, s.rss) }, 100)
  let result
  try {
    result = await run(port)
  } catch (err) {
    result = { error: err.message }
  }
  clearInterval(sampler)
  const after = await stats()
  if (exit === null) {
    child.send('exit')
    await once(child, 'exit')
  }
  const died = after === null
  return {
    result,
    server: died ? `DIED (${/Error[^\n]*/.exec(stderr)?.[0] ?? `exit ${exit?.code}`})` : 'alive',
    outcomes: after?.outcomes.map((o) => o.code) ?? [],
    rssGrowth: `${((peak - base.rss) / MiB).toFixed(1)} MiB`
  }
}

const cases = {
  ...Object.fromEntries(Object.entries(attacks.bodyLimitCases).map(([name, run]) => [`1. ${name}`, run])),
  ...Object.fromEntries(Object.entries(attacks.laxChunkCases).map(([name, body]) => [`2. ${name}`, (port) => attacks.laxChunk(port, body)])),
  '3. 1,000,000 pings, never reading': attacks.pingFlood,
  '4. echo route, client never reads, up to 2 GiB': attacks.nonReaderEcho,
  '5. 1 MB frame in 1-byte segments, 1 connection': (port) => attacks.tinySegments(port),
  [`5. 1 MB frame in 1-byte segments, ${many} connections`]: async (port) => {
    const results = await Promise.all(Array.from({ length: many }, () => attacks.tinySegments(port)))
    return { closedByServer: results.filter((r) => r.closedByServer).length, notClosed: results.filter((r) => !r.closedByServer).length }
  }
}

const only = process.argv.indexOf('--only')
for (const [name, run] of Object.entries(cases)) {
  if (only !== -1 && !name.startsWith(process.argv[only + 1])) continue
  const started = Date.now()
  const row = await withServer(run)
  console.log(JSON.stringify({ case: name, ...row, seconds: (Date.now() - started) / 1000 }))
}
