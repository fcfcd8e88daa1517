// Interop with Chromium's WebSocket (Debian's /usr/bin/chromium, driven by
// playwright-core, which never downloads a browser here). The page imports
// whatwg_scenarios.mjs from the interop server and runs the same scenarios
// as the Node.js 24 peer; the assertions are in peer-result.ts.
import t from 'tap'
import { launchChromium } from './fixtures/chromium.js'
import { MatrixRow } from './fixtures/matrix.js'
import { checkPeerResult, type PeerResult } from './fixtures/peer-result.js'
import { startInteropServer } from './fixtures/server.js'

async function main (): Promise<void> {
  t.setTimeout(180_000)
  const server = await startInteropServer()
  t.teardown(() => server.app.close())
  const browser = await launchChromium()
  t.teardown(() => browser.close())

  const page = await browser.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  await page.goto(server.page)
  const peer = `Chromium ${browser.version()} WebSocket`
  // A string, not a function: it runs in the page, untouched by the TypeScript/CJS transform.
  const result = await page.evaluate(
    `import('/whatwg_scenarios.mjs').then((m) => m.runScenarios(${JSON.stringify(server.origin)}, ${JSON.stringify(peer)}))`
  ) as PeerResult
  t.equal(result.peer, peer, `the peer ran: ${peer}`)
  t.same(pageErrors, [], 'no uncaught errors in the page')

  const row = new MatrixRow('Chromium WebSocket')
  await checkPeerResult(t, row, server, result)
  await row.finish(t)
}

main().catch((err) => t.threw(err))
