// Interop with the WHATWG WebSocket client built into Node.js 24 (undici).
// The suite runs on Node 20, which has none, so the peer runs as a child
// process under `npx -y node@24` (the first run downloads that Node.js):
// test/interop/fixtures/whatwg_peer.mjs performs the scenarios and prints what it saw
// as JSON; the assertions are in peer-result.ts.
import { join } from 'node:path'
import t from 'tap'
import { runPeer } from './fixtures/child.js'
import { MatrixRow } from './fixtures/matrix.js'
import { checkPeerResult, type PeerResult } from './fixtures/peer-result.js'
import { startInteropServer } from './fixtures/server.js'

async function main (): Promise<void> {
  // Generous: the first run downloads Node.js 24 through npx.
  t.setTimeout(600_000)
  const server = await startInteropServer()
  t.teardown(() => server.app.close())

  const { result } = await runPeer<PeerResult>(t, 'npx', ['-y', 'node@24', join(__dirname, 'fixtures', 'whatwg_peer.mjs'), server.origin], {
    cwd: join(__dirname, 'fixtures'),
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' }
  })
  t.match(result.peer, /^Node\.js v24\.\d+\.\d+ WebSocket$/, `the peer ran: ${result.peer}`)

  const row = new MatrixRow('Node 24 WebSocket')
  await checkPeerResult(t, row, server, result)
  await row.finish(t)
}

main().catch((err) => t.threw(err))
