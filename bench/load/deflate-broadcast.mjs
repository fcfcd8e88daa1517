// Compressed fan-out: `receivers` + 1 connections that negotiated
// permessage-deflate; the first sends compressed JSON messages, the server
// broadcasts each to every connection. Deliveries and their bytes on the
// wire are counted at the receivers; every message the last connection gets
// is inflated and compared with the one sent, byte for byte.

import { DASHBOARD_MESSAGES } from '../lib/dashboard-messages.mjs'
import { closeAll, handleControl } from './connect.mjs'
import { DeflateFrameReader, FrameCycle, MessageInflater, openAgreed, replyProblem } from './deflate.mjs'
import { CAPTURE_WAIT_MS, measureWindow, sleep, usageBetween, waitFor } from './window.mjs'

export async function runDeflateBroadcast (job) {
  const { port, path, receivers, inflight, warmupMs, durationMs, serverPid, clockTicks } = job
  const abort = new AbortController()
  let running = true
  let failure = null
  const fail = (reason) => {
    failure ??= reason
    abort.abort()
  }

  const { connections, agreement } = await openAgreed(port, path, receivers + 1)
  const copies = connections.length
  const sender = connections[0].socket
  const cycle = new FrameCycle(DASHBOARD_MESSAGES, agreement, inflight)
  const counters = { messages: 0, wireBytes: 0, compressed: 0 }
  const inflater = new MessageInflater(agreement)
  let cursor = 0
  let sent = 0
  let checked = 0
  let checkedReader = null

  // As in the uncompressed broadcast: a new message goes out only once all
  // but `inflight` earlier ones have reached every connection.
  const topUp = () => {
    if (!running) return
    const allowed = Math.floor(counters.messages / copies) + inflight - sent
    if (allowed <= 0) return
    sender.write(cycle.take(cursor, allowed))
    cursor = (cursor + allowed) % cycle.length
    sent += allowed
  }

  connections.forEach(({ socket, leftover }, index) => {
    // The last connection never sends: what it receives proves the fan-out.
    const checks = index === copies - 1
    const reader = new DeflateFrameReader({
      counters,
      inflater: checks ? inflater : null,
      onMessage (opcode, bytes, compressed, error) {
        const problem = replyProblem(DASHBOARD_MESSAGES[checked % cycle.length], opcode, bytes, compressed, error)
        if (problem !== null) fail(`broadcast ${checked + 1}: ${problem}`)
        checked++
      },
      onControl (opcode, data) {
        if (handleControl(socket, opcode, data) && running) fail('server closed a connection')
      },
      onError: fail
    })
    if (checks) checkedReader = reader
    socket.on('data', (chunk) => {
      if (reader.push(chunk) === 0) return
      if (counters.messages > sent * copies) fail('more broadcast messages arrived than were sent')
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

  let atStart = null
  let atEnd = null
  const { start, end } = await measureWindow({ serverPid, warmupMs, durationMs, signal: abort.signal }, (on) => {
    if (on) atStart = { ...counters }
    else atEnd = { ...counters }
  })
  running = false
  if (checked === 0 && failure === null) await waitFor(() => checked > 0 || failure !== null, CAPTURE_WAIT_MS)
  await waitFor(() => counters.messages >= sent * copies, 3000)
  await waitFor(() => checkedReader.pending === 0, CAPTURE_WAIT_MS)
  await closeAll(connections.map((connection) => connection.socket))
  inflater.close()

  if (failure !== null) return { failure }
  if (checked === 0) return { failure: 'no broadcast received' }
  if (atStart === null || atEnd === null) return { failure: 'the measurement window did not complete' }
  const usage = usageBetween(start, end, clockTicks)
  const messages = atEnd.messages - atStart.messages
  return {
    metrics: {
      rate: messages / usage.seconds,
      wireBytes: messages === 0 ? null : (atEnd.wireBytes - atStart.wireBytes) / messages
    },
    compressedShare: messages === 0 ? null : (atEnd.compressed - atStart.compressed) / messages,
    checked,
    agreement,
    generatorCpu: usage.generatorCpu,
    serverCpu: usage.serverCpu,
    otherCpu: usage.otherCpu
  }
}
