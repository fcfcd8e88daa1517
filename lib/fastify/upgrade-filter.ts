import type { IncomingMessage } from 'node:http'
import { hasBody } from '../protocol/handshake.js'
import { headerHasToken } from '../protocol/header-lists.js'

/*
 * Node stops parsing an upgrade request after its head and hands the socket to
 * the `upgrade` listeners. For a request the plugin then answers as plain HTTP
 * (a POST with `Upgrade: h2c`, say) the body would have to be read by a second
 * parser, ours. Nodes that have `server.shouldUpgradeCallback` let the server
 * say, per request, whether it is an upgrade at all: false, and Node parses it
 * like any other request, body included, and emits `request`.
 *
 * The callback came with Node 24.9.0 (nodejs/node#59824) and was backported to
 * Node 22.21.0 for http and https servers; an http2 server with `allowHTTP1`
 * has it from 22.21.1 (nodejs/node#60341). Node 20 has none: there
 * lib/upgrade-body.ts reads such bodies, with a decoder as strict as Node's.
 */

type UpgradeCallback = (this: unknown, request: IncomingMessage) => boolean

interface FilterableServer {
  shouldUpgradeCallback?: UpgradeCallback
  listeners (event: 'upgrade'): Function[]
}

/** The request parts the filter looks at. */
export interface UpgradeCandidate {
  method?: string
  headers: IncomingMessage['headers']
}

/**
 * Whether an upgrade request is one for the plugin's WebSocket handshake:
 * `websocket` in Upgrade, and no body (the handshake refuses one, and only a
 * request without a body can safely be left unparsed past its head). The
 * method is not looked at: the handshake answers another one with 405 and
 * closes the connection, as it does on Nodes without the callback.
 */
export function isWebSocketUpgrade (request: UpgradeCandidate): boolean {
  return headerHasToken(request.headers.upgrade, 'websocket') && !hasBody(request.headers)
}

/**
 * Makes Node parse every upgrade request that is not a WebSocket handshake as
 * an ordinary request, where the running Node allows it. `ourListener` is the
 * plugin's `upgrade` listener: when the app has upgrade listeners of its own
 * (an h2c server, say), their requests are left to the previous callback, so
 * they keep reaching `upgrade`. WebSocket handshakes are left to the previous
 * callback too: Node's default says yes (a listener exists), and one the app
 * set itself keeps its say.
 *
 * Returns a function that puts the previous callback back.
 */
export function installUpgradeFilter (server: object, ourListener: Function): () => void {
  const target = server as FilterableServer
  const previous = target.shouldUpgradeCallback
  if (typeof previous !== 'function') return noop
  let installed = true
  const filter: UpgradeCallback = function shouldUpgrade (request) {
    if (installed && !isWebSocketUpgrade(request) && !hasOtherListener(target, ourListener)) return false
    return previous.call(this, request)
  }
  target.shouldUpgradeCallback = filter
  return () => {
    // Someone may have wrapped our callback since: it then stays in their chain, as a pass-through.
    installed = false
    if (target.shouldUpgradeCallback === filter) target.shouldUpgradeCallback = previous
  }
}

function hasOtherListener (server: FilterableServer, ours: Function): boolean {
  for (const listener of server.listeners('upgrade')) if (listener !== ours) return true
  return false
}

function noop (): void {}
