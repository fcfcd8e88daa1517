// What every server process shares: report readiness (or why it could not
// start) to the run, and answer memory questions after a full GC.

/**
 * `start` builds and starts the server on 127.0.0.1 and resolves with
 * { port, features }. `features` maps an optional scenario ('broadcast',
 * 'json') to true, or to a string saying why it isn't available.
 */
export async function serve (start) {
  // The run owns this process: when it goes away, so do we.
  process.on('disconnect', () => process.exit(0))
  let started
  try {
    started = await start()
  } catch (error) {
    process.send({ failed: String(error?.stack ?? error) }, () => process.exit(1))
    return
  }
  process.on('message', ({ id, request }) => {
    if (request === 'memory') process.send({ id, memory: measureMemory() })
  })
  process.send({ ready: true, port: started.port, features: started.features ?? {} })
}

// A full, synchronous collection: Node's (run with --expose-gc) or Bun's,
// which has no global gc; undefined if neither is available.
const fullGc = typeof globalThis.Bun?.gc === 'function' ? () => globalThis.Bun.gc(true) : globalThis.gc

function measureMemory () {
  // Twice: the first pass can leave finalizable garbage for the second.
  fullGc?.()
  fullGc?.()
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage()
  return { rss, heapUsed, external, arrayBuffers, gc: typeof fullGc === 'function' }
}
