import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import t from 'tap'

// The published entry points, exercised as a user would: `npm test` builds dist/ before tap runs.
const root = join(__dirname, '..')
const require = createRequire(__filename)

if (!existsSync(join(root, 'dist/cjs/index.js'))) {
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' })
}

function node (args: string[]): string {
  return execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' })
}

t.test('require() gives the plugin itself, with named exports and the protocol entry', async (t) => {
  const out = node(['-e', `
    const ws = require('fastify-rfc6455')
    const protocol = require('fastify-rfc6455/protocol')
    console.log(JSON.stringify({
      plugin: typeof ws, same: ws === ws.default && ws === ws.fastifyRfc6455,
      connection: typeof ws.WebSocketConnection, accept: protocol.computeAccept('dGhlIHNhbXBsZSBub25jZQ==')
    }))`])
  t.same(JSON.parse(out), { plugin: 'function', same: true, connection: 'function', accept: 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=' })
})

t.test('import gives the plugin as default export and a working route', async (t) => {
  const out = node(['--input-type=module', '-e', `
    import websocket, { WebSocketConnection } from 'fastify-rfc6455'
    import { computeAccept } from 'fastify-rfc6455/protocol'
    import Fastify from 'fastify'
    const app = Fastify()
    await app.register(websocket)
    app.get('/echo', { websocket: true }, (conn) => conn.on('message', (d) => conn.send(d)))
    const client = await app.injectWS('/echo')
    client.send('ping from esm')
    const [reply] = await new Promise((resolve) => client.once('message', (...args) => resolve(args)))
    await app.close()
    console.log(JSON.stringify({ plugin: typeof websocket, conn: client instanceof WebSocketConnection, reply: reply.toString(), accept: computeAccept('dGhlIHNhbXBsZSBub25jZQ==') }))`])
  t.same(JSON.parse(out), { plugin: 'function', conn: true, reply: 'ping from esm', accept: 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=' })
})

t.test('declarations resolve for CommonJS and ESM consumers', async (t) => {
  const tsc = require.resolve('typescript/bin/tsc')
  const out = execFileSync(process.execPath, [tsc, '-p', join(root, 'test/fixtures/consumer/tsconfig.json')], { cwd: root, encoding: 'utf8' })
  t.equal(out, '', 'tsc reports no errors')
})
