// What the cross-instance job says and expects on the wire, per protocol:
// plain WebSocket messages (ours, ws + ioredis), or Socket.IO 4 packets
// (Engine.IO 4 over a WebSocket, as socket.io-client sends them with
// `transports: ['websocket']`), so one generator drives both.

import { encodeFrame, OPCODE } from '../../test/helpers/wire.cjs'

// 32 bytes that JSON carries unescaped, so every server moves the same text.
export const FANOUT_TEXT = 'abcdefghijklmnopqrstuvwxyz012345'

const textFrame = (text) => encodeFrame(OPCODE.text, Buffer.from(text))

function expectText (expected) {
  const bytes = Buffer.from(expected)
  return (opcode, received) => {
    if (opcode !== OPCODE.text) return `expected a text frame, got opcode ${opcode}`
    return received.equals(bytes) ? 'ok' : `expected ${JSON.stringify(expected)}, got ${JSON.stringify(received.toString('utf8', 0, 80))}`
  }
}

/**
 * `path(route)`: the upgrade request's path. `publishFrame`: what the
 * publisher sends for one publish. `check(opcode, bytes)`: 'ok' or what is
 * wrong with a delivered message. `join(index, text)`: for protocols with a
 * handshake after the 101, called with each message until it returns
 * { done: true }; { reply } is a frame to write back; a string is a failure.
 */
export const FANOUT_PROTOCOLS = {
  websocket: {
    path: (route) => route,
    publishFrame: textFrame(FANOUT_TEXT),
    check: expectText(FANOUT_TEXT),
    join: null
  },
  'socket.io': {
    path: () => '/socket.io/?EIO=4&transport=websocket',
    // EVENT packets (Engine.IO "4" message + Socket.IO "2" event): the server
    // handles 'pub' with io.to(room).emit('msg', text).
    publishFrame: textFrame(`42${JSON.stringify(['pub', FANOUT_TEXT])}`),
    check: expectText(`42${JSON.stringify(['msg', FANOUT_TEXT])}`),
    // Engine.IO's open packet ("0{sid, ...}"), then our CONNECT to the main
    // namespace ("40") and the server's acknowledgement ("40{sid}").
    join (index, text) {
      if (index === 0) return text.startsWith('0{') ? { reply: SOCKET_IO_CONNECT } : `expected an Engine.IO open packet, got ${JSON.stringify(text.slice(0, 60))}`
      return text.startsWith('40') ? { done: true } : `expected a Socket.IO CONNECT acknowledgement, got ${JSON.stringify(text.slice(0, 60))}`
    }
  }
}

const SOCKET_IO_CONNECT = textFrame('40')
