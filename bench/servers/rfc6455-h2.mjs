// Fastify 5 + this plugin (dist/esm) on an HTTP/2 server over TLS with
// allowHTTP1, as the README sets it up: one process, one port, taking
// WebSockets both as RFC 8441 extended CONNECTs on HTTP/2 streams and as
// HTTP/1.1 upgrades, so the http2 scenario (bench/lib/http2-compare.mjs)
// compares the transports on the same server. Key and certificate come from
// the run (BENCH_TLS_KEY, BENCH_TLS_CERT: PEM).

import Fastify from 'fastify'
import { serve } from './child.mjs'

// As bench/servers/rfc6455.mjs.
const MAX_MESSAGE_SIZE = 64 * 1024 * 1024

serve(async () => {
  const key = process.env.BENCH_TLS_KEY
  const cert = process.env.BENCH_TLS_CERT
  if (!key || !cert) throw new Error('BENCH_TLS_KEY and BENCH_TLS_CERT must hold the PEM key and certificate')
  const { default: plugin } = await import('../../dist/esm/index.js')
  const app = Fastify({ logger: false, http2: true, https: { key, cert, allowHTTP1: true } })
  await app.register(plugin, { maxMessageSize: MAX_MESSAGE_SIZE })
  // The same no-op hook and echo route as the HTTP/1.1 server's.
  app.addHook('onRequest', async () => {})
  app.get('/echo', { websocket: { retainRequest: false } }, (conn) => {
    conn.on('message', (data, isBinary) => conn.send(data, { binary: isBinary }))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: app.server.address().port, features: {} }
})
