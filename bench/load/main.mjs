// The load generator process: runs one job at a time on request from the
// run (over IPC) and answers with the job's result. Pinned to its own core by
// the run, so its CPU use is reported beside every number.

import { runBroadcast } from './broadcast.mjs'
import { runDeflateBroadcast } from './deflate-broadcast.mjs'
import { runDeflateEcho } from './deflate-echo.mjs'
import { closeDeflateIdle, openDeflateIdle } from './deflate-idle.mjs'
import { runEcho } from './echo.mjs'
import { runFanout } from './fanout.mjs'
import { runHandshakes } from './handshake.mjs'
import { closeIdle, openIdle } from './idle.mjs'

const jobs = {
  echo: runEcho,
  handshake: runHandshakes,
  broadcast: runBroadcast,
  fanout: runFanout,
  'idle-open': openIdle,
  'idle-close': closeIdle,
  'deflate-echo': runDeflateEcho,
  'deflate-broadcast': runDeflateBroadcast,
  'deflate-idle-open': openDeflateIdle,
  'deflate-idle-close': closeDeflateIdle
}

process.on('message', async ({ id, job }) => {
  let result
  try {
    const run = jobs[job.kind]
    if (run === undefined) throw new Error(`unknown job kind ${job.kind}`)
    result = await run(job)
  } catch (error) {
    result = { failure: error.message }
  }
  process.send({ id, result })
})

// The run owns this process: when it goes away, so do we.
process.on('disconnect', () => process.exit(0))
process.send({ ready: true })
