// Compressed fan-out: `receivers` + 1 connections that negotiated
// permessage-deflate; the first sends compressed JSON messages, the server
// broadcasts each to every connection. Deliveries and their bytes on the
// wire are counted at the receivers; every message the last connection gets
// is inflated and compared with the one sent, byte for byte.

import { DeflateLoad } from './deflate.mjs'
import { sleep } from './window.mjs'

export async function runDeflateBroadcast (job) {
  const { receivers, inflight } = job
  // The last connection never sends: what it receives proves the fan-out.
  const load = await DeflateLoad.open(job, receivers + 1, { checks: 'last', what: 'broadcast', serverClosed: 'server closed a connection' })
  const { connections, cycle, counters } = load
  const copies = connections.length
  const sender = connections[0].socket
  let cursor = 0
  let sent = 0

  // As in the uncompressed broadcast: a new message goes out only once all
  // but `inflight` earlier ones have reached every connection.
  const topUp = () => {
    if (!load.running) return
    const allowed = Math.floor(counters.messages / copies) + inflight - sent
    if (allowed <= 0) return
    sender.write(cycle.take(cursor, allowed))
    cursor = (cursor + allowed) % cycle.length
    sent += allowed
  }

  load.connect(() => () => {
    if (counters.messages > sent * copies) load.fail('more broadcast messages arrived than were sent')
    topUp()
  })
  // A server may register a connection just after its 101 is on the wire.
  await sleep(50)
  topUp()

  return load.finish({ drained: () => counters.messages >= sent * copies, drainMs: 3000, noneChecked: 'no broadcast received' })
}
