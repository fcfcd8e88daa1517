// The compression scenarios' routes and how the ws-based servers are
// configured for them, shared by the servers and the run.

/** Echo and broadcast routes on which the servers accept permessage-deflate. */
export const DEFLATE_ECHO_ROUTE = '/deflate/echo'
export const DEFLATE_BROADCAST_ROUTE = '/deflate/broadcast'

/**
 * ws's `perMessageDeflate` (a new object each call) for the bare ws server and for @fastify/websocket
 * (which hands it to ws). ws's defaults, with every setting that has a
 * counterpart in this plugin's `compression: true` (lib/defaults.ts,
 * COMPRESSION_DEFAULTS) set to the same value, so both servers are asked for
 * the same work and the same bytes on the wire:
 *
 * - threshold 1024: messages under 1 KiB are sent uncompressed (ws's default too);
 * - zlib level 6 and memLevel 8 for deflating (zlib's defaults, which ws uses);
 * - server_no_context_takeover and client_no_context_takeover: every message
 *   deflated and inflated from a fresh context, as the plugin asks by default;
 * - windows of 15 bits both ways (neither side sets a smaller one).
 *
 * Left at ws's own values: `concurrencyLimit` (10 zlib jobs at once; the
 * plugin's `concurrency` default is 2) and `zlibInflateOptions`. ws keeps a
 * connection's zlib streams between messages even without context takeover
 * (it resets them), which is part of what the idle scenario measures.
 *
 * Clients that do not offer permessage-deflate (every other scenario) get no
 * extension, so this setting changes nothing for them.
 */
export function wsPerMessageDeflate () {
  return {
    threshold: 1024,
    zlibDeflateOptions: { level: 6, memLevel: 8 },
    serverNoContextTakeover: true,
    clientNoContextTakeover: true
  }
}
