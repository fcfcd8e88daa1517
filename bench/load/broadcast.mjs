// Fan-out: one connection sends, the server broadcasts each message to every
// open connection (the sender included), and deliveries are counted at the
// receiving end.

import { closeAll, handleControl, openMany } from './connect.mjs'
import { encodeFrame } from '../../test/helpers/wire.cjs'
import { MessageReader } from './message-reader.mjs'
import { buildPayload } from './payloads.mjs'
import { CAPTURE_WAIT_MS, measureWindow, sleep, usageBetween, waitFor } from './window.mjs'

export async function runBroadcast (job) {
  const { port, path, receivers, inflight, warmupMs, durationMs, serverPid, clockTicks } = job
  const { opcode, payload, check } = buildPayload(job.payload)
  const frame = encodeFrame(opcode, payload)
  // `inflight` copies back to back: a refill is a single write.
  const refill = Buffer.concat(new Array(inflight).fill(frame))
  const abort = new AbortController()
  let running = true
  let measuring = false
  let delivered = 0
  let deliveredInWindow = 0
  let sent = 0
  let failure = null
  let verdict = null
  const fail = (reason) => {
    failure ??= reason
    abort.abort()
  }

  const connections = await openMany(port, path, receivers + 1)
  const copies = connections.length
  const sender = connections[0].socket

  // Flow control lives here: a new broadcast goes out only once all but
  // `inflight` earlier ones have reached every connection, so the server
  // can't pile up unsent data faster than the receivers drain it.
  const topUp = () => {
    if (!running) return
    const allowed = Math.floor(delivered / copies) + inflight - sent
    if (allowed <= 0) return
    sent += allowed
    sender.write(allowed === inflight ? refill : refill.subarray(0, allowed * frame.length))
  }

  connections.forEach(({ socket, leftover }, index) => {
    const reader = new MessageReader({
      // The last connection never sends: what it receives proves the fan-out.
      capture: index === copies - 1 && (job.checkAll ? 'all' : 'first'),
      onCapture (replyOpcode, bytes) {
        const result = check(replyOpcode, bytes)
        if (verdict === null || verdict === 'ok') verdict = result
        if (result !== 'ok') abort.abort()
      },
      onControl (controlOpcode, data) {
        if (handleControl(socket, controlOpcode, data) && running) fail('server closed a connection')
      }
    })
    socket.on('data', (chunk) => {
      const completed = reader.push(chunk)
      if (completed === 0) return
      delivered += completed
      if (delivered > sent * copies) fail('more broadcast messages arrived than were sent')
      if (measuring) deliveredInWindow += completed
      topUp()
    })
    socket.on('error', (error) => { if (running) fail(error.message) })
    socket.on('close', () => { if (running) fail('connection closed by the server') })
    reader.push(leftover)
    socket.resume()
  })
  // A server may register a connection just after its 101 is on the wire.
  await sleep(50)
  topUp()

  const { start, end } = await measureWindow({ serverPid, warmupMs, durationMs, signal: abort.signal }, (on) => { measuring = on })
  running = false
  if (verdict === null && failure === null) await waitFor(() => verdict !== null, CAPTURE_WAIT_MS)
  await waitFor(() => delivered >= sent * copies, 3000)
  await closeAll(connections.map((connection) => connection.socket))

  if (verdict === 'unsupported') return { unsupported: true }
  if (failure !== null || verdict !== 'ok') {
    return { failure: failure ?? (verdict === null ? 'no broadcast received' : verdict) }
  }
  const usage = usageBetween(start, end, clockTicks)
  return {
    metrics: { rate: deliveredInWindow / usage.seconds },
    generatorCpu: usage.generatorCpu,
    serverCpu: usage.serverCpu,
    otherCpu: usage.otherCpu
  }
}
