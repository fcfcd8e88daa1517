// Compressed echo: `conns` connections that negotiated permessage-deflate,
// each keeping `inflight` compressed JSON messages outstanding, cycling
// through the dashboard messages. Every reply of the first connection is
// inflated and compared with what it echoes, byte for byte; the bytes of
// every reply on the wire are counted.

import { DeflateLoad } from './deflate.mjs'

export async function runDeflateEcho (job) {
  const { conns, inflight } = job
  const load = await DeflateLoad.open(job, conns, { checks: 'first', what: 'reply', serverClosed: 'server closed the connection' })
  const { cycle } = load
  let pendingOutstanding = 0

  load.connect((socket) => {
    let cursor = 0
    let outstanding = 0
    const send = (n) => {
      socket.write(cycle.take(cursor, n))
      cursor = (cursor + n) % cycle.length
      outstanding += n
      pendingOutstanding += n
    }
    send(inflight)
    return (completed) => {
      outstanding -= completed
      pendingOutstanding -= completed
      if (outstanding < 0) load.fail('the server sent more messages than it was sent')
      if (load.running) send(completed)
    }
  })

  return load.finish({ drained: () => pendingOutstanding <= 0, drainMs: 2000, noneChecked: 'no reply received' })
}
