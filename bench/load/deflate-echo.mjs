// Compressed echo: `conns` connections that negotiated permessage-deflate,
// each keeping `inflight` compressed JSON messages outstanding, cycling
// through the dashboard messages. Every reply of the first connection is
// inflated and compared with what it echoes, byte for byte; the bytes of
// every reply on the wire are counted.

import { DASHBOARD_MESSAGES } from '../lib/dashboard-messages.mjs'
import { closeAll, handleControl } from './connect.mjs'
import { DeflateFrameReader, FrameCycle, MessageInflater, openAgreed, replyProblem } from './deflate.mjs'
import { CAPTURE_WAIT_MS, measureWindow, usageBetween, waitFor } from './window.mjs'

export async function runDeflateEcho (job) {
  const { port, path, conns, inflight, warmupMs, durationMs, serverPid, clockTicks } = job
  const abort = new AbortController()
  let running = true
  let failure = null
  const fail = (reason) => {
    failure ??= reason
    abort.abort()
  }

  const { connections, agreement } = await openAgreed(port, path, conns)
  const cycle = new FrameCycle(DASHBOARD_MESSAGES, agreement, inflight)
  const counters = { messages: 0, wireBytes: 0, compressed: 0 }
  const inflater = new MessageInflater(agreement)
  let checked = 0
  let pendingOutstanding = 0
  let checkedReader = null

  connections.forEach(({ socket, leftover }, index) => {
    let cursor = 0
    let outstanding = 0
    const reader = new DeflateFrameReader({
      counters,
      inflater: index === 0 ? inflater : null,
      // Replies come in the order sent: the nth is message n of the cycle.
      onMessage (opcode, bytes, compressed, error) {
        const problem = replyProblem(DASHBOARD_MESSAGES[checked % cycle.length], opcode, bytes, compressed, error)
        if (problem !== null) fail(`reply ${checked + 1}: ${problem}`)
        checked++
      },
      onControl (opcode, data) {
        if (handleControl(socket, opcode, data) && running) fail('server closed the connection')
      },
      onError: fail
    })
    if (index === 0) checkedReader = reader
    const send = (n) => {
      socket.write(cycle.take(cursor, n))
      cursor = (cursor + n) % cycle.length
      outstanding += n
      pendingOutstanding += n
    }
    socket.on('data', (chunk) => {
      const completed = reader.push(chunk)
      if (completed === 0) return
      outstanding -= completed
      pendingOutstanding -= completed
      if (outstanding < 0) fail('the server sent more messages than it was sent')
      if (running) send(completed)
    })
    socket.on('error', (error) => { if (running) fail(error.message) })
    socket.on('close', () => { if (running) fail('connection closed by the server') })
    reader.push(leftover)
    send(inflight)
    socket.resume()
  })

  let atStart = null
  let atEnd = null
  const { start, end } = await measureWindow({ serverPid, warmupMs, durationMs, signal: abort.signal }, (on) => {
    if (on) atStart = { ...counters }
    else atEnd = { ...counters }
  })
  running = false
  // A starved smoke window may end before the first reply.
  if (checked === 0 && failure === null) await waitFor(() => checked > 0 || failure !== null, CAPTURE_WAIT_MS)
  await waitFor(() => pendingOutstanding <= 0, 2000)
  await waitFor(() => checkedReader.pending === 0, CAPTURE_WAIT_MS)
  await closeAll(connections.map((connection) => connection.socket))
  inflater.close()

  if (failure !== null) return { failure }
  if (checked === 0) return { failure: 'no reply received' }
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
