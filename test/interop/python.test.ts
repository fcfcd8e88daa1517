// Interop with Python's `websockets` library (Debian's python3-websockets,
// asyncio client: 10.4 has no sync client), run as a child process:
// test/interop/fixtures/python_peer.py performs the scenarios and prints what it saw
// as JSON; the assertions are in peer-result.ts.
import { join } from 'node:path'
import t from 'tap'
import { runPeer } from './fixtures/child.js'
import { MatrixRow } from './fixtures/matrix.js'
import { checkPeerResult, type PeerResult } from './fixtures/peer-result.js'
import { startInteropServer } from './fixtures/server.js'

// Debian's interpreter: the python3 on PATH may be another one without the module.
const PYTHON = '/usr/bin/python3'

async function main (): Promise<void> {
  t.setTimeout(180_000)
  const server = await startInteropServer()
  t.teardown(() => server.app.close())

  const { result } = await runPeer<PeerResult>(t, PYTHON, [join(__dirname, 'fixtures', 'python_peer.py'), server.origin])
  t.match(result.peer, /^websockets \d+\.\d+/, `the peer ran: ${result.peer}`)

  const row = new MatrixRow('python websockets')
  await checkPeerResult(t, row, server, result)
  await row.finish(t)
}

main().catch((err) => t.threw(err))
