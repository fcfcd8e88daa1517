// Idle compressed connections held open while the server's memory is read:
// each negotiated permessage-deflate and exchanged one compressed message
// (so whatever compression state the server keeps exists), then stays idle.
// Two jobs, because the run reads the server's memory between them.

import { DASHBOARD_MESSAGES } from '../lib/dashboard-messages.mjs'
import { handleControl } from './connect.mjs'
import { DeflateFrameReader, FrameCycle, MessageInflater, openAgreed, replyProblem } from './deflate.mjs'
import { holdIdle, releaseIdle } from './idle.mjs'
import { CAPTURE_WAIT_MS, waitFor } from './window.mjs'

// Connections that exchange their message at once.
const WAVE = 50

let held = null

export async function openDeflateIdle (job) {
  if (held !== null) await closeDeflateIdle({})
  const { connections, agreement } = await openAgreed(job.port, job.path, job.count, 100)
  const cycle = new FrameCycle(DASHBOARD_MESSAGES, agreement, 1)
  const counters = { messages: 0, wireBytes: 0, compressed: 0 }
  held = connections.map(({ socket, leftover }, index) => {
    const entry = { socket, inflater: new MessageInflater(agreement), lost: false, replies: 0, sent: [], problem: null }
    const reader = new DeflateFrameReader({
      counters,
      inflater: entry.inflater,
      onMessage (opcode, bytes, compressed, error) {
        const expected = DASHBOARD_MESSAGES[entry.sent[entry.replies++] ?? 0]
        const wrong = entry.replies > entry.sent.length
          ? 'a message nobody asked for'
          : replyProblem(expected, opcode, bytes, compressed, error)
        if (wrong !== null) entry.problem ??= `connection ${index + 1}: ${wrong}`
      },
      onControl (opcode, data) { if (handleControl(socket, opcode, data)) entry.lost = true },
      onError (reason) { entry.problem ??= `connection ${index + 1}: ${reason}` }
    })
    entry.send = (messageIndex) => {
      entry.sent.push(messageIndex)
      socket.write(cycle.take(messageIndex, 1))
    }
    return holdIdle(entry, reader, leftover)
  })
  // In waves, each answered before the next: what stays is per-connection
  // state, not the allocator's high-water mark of thousands of messages at once.
  const done = (entry) => entry.replies >= 1 || entry.lost || entry.problem !== null
  for (let first = 0; first < held.length; first += WAVE) {
    const wave = held.slice(first, first + WAVE)
    wave.forEach((entry, i) => entry.send((first + i) % cycle.length))
    if (!await waitFor(() => wave.every(done), CAPTURE_WAIT_MS)) break
  }
  let problem = held.find((entry) => entry.problem !== null)?.problem ?? null
  const missing = held.filter((entry) => entry.replies < 1).length
  const lost = held.filter((entry) => entry.lost).length
  if (problem === null && lost > 0) problem = `${lost} connections were closed by the server`
  if (problem === null && missing > 0) problem = `${missing} connections got no reply to their message`
  if (problem !== null) {
    await closeDeflateIdle({})
    return { failure: problem }
  }
  return { opened: held.length, compressedShare: counters.compressed / counters.messages }
}

export async function closeDeflateIdle (job) {
  const entries = held
  held = null
  return releaseIdle(entries, job, async (probe) => {
    // One more message on the first connection: it still echoes, and still inflates.
    probe.send(1)
    await waitFor(() => probe.replies >= 2 || probe.lost, CAPTURE_WAIT_MS)
    if (probe.problem !== null) return probe.problem
    return probe.replies < 2 ? 'no echo on an idle compressed connection' : null
  }, (entry) => entry.inflater.close())
}
