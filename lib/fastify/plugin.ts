import type { FastifyInstance, FastifyPluginAsync, preCloseHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { CompilerCache, checkMessageSettings } from '../messages/index.js'
import { webSocketError } from '../protocol/errors.js'
import { createAccept } from './accept.js'
import { injectWebSocket, type InjectWSHooks, type InjectWSOptions } from './inject.js'
import { checkPluginOptions } from './options.js'
import { Registry } from './registry.js'
import { Routes } from './route.js'
import { ROUTE_DEFAULTS, resolveAdapter, resolveHandshakeTimeout, resolvePreClose, resolveSettings, type WebSocketPluginOptions } from './settings.js'
import { UpgradeListener, readUpgradeRequestBody } from './upgrade.js'
import { installUpgradeFilter } from './upgrade-filter.js'
import { installHttp2 } from './http2.js'
import { resolveAsyncApiPluginOptions } from '../asyncapi/options.js'
import { serveAsyncApi } from '../asyncapi/serve.js'

export type { BroadcastOptions, WebSocketRegistry } from './registry.js'
export type { WebSocketErrorHandler, WebSocketPluginOptions, WebSocketPreClose, WebSocketRouteSettings } from './settings.js'

// Marks a server that already has the plugin's upgrade listener: two would both answer every upgrade.
const kRegistered = Symbol('fastify-rfc6455.registered')

/**
 * Wiring only. The path of an upgrade request, in order: the server's
 * `upgrade` event (upgrade.ts) → Fastify's router → the `onRequest` handshake
 * check and the route wrapper (route.ts) → the user's hooks → accept.ts (101,
 * connection, handler). Open connections live in the registry (registry.ts).
 */
const websocketPlugin: FastifyPluginAsync<WebSocketPluginOptions> = async function websocketPlugin (fastify, options) {
  const server = fastify.server as typeof fastify.server & { [kRegistered]?: true }
  if (server[kRegistered]) {
    throw webSocketError('WS_ERR_ALREADY_REGISTERED', 'fastify-rfc6455 is already registered on this server: register it once, at the root, before WebSocket routes')
  }
  checkPluginOptions(options)
  const settings = resolveSettings(ROUTE_DEFAULTS, options, 'fastify-rfc6455')
  const handshakeTimeout = resolveHandshakeTimeout(options)
  const preClose = resolvePreClose(options)
  const adapter = resolveAdapter(options)
  const asyncapi = resolveAsyncApiPluginOptions(options.asyncapi)
  // Checked here too, so a bad plugin-level policy fails at register, not at the first route.
  checkMessageSettings(settings, 'fastify-rfc6455')

  const registry = new Registry(settings, adapter, fastify.log, fastify.server, asyncapi)
  const upgrades = new UpgradeListener(fastify, registry, handshakeTimeout)
  const compilers = new CompilerCache()
  const routes = new Routes(registry, createAccept(registry, upgrades, compilers))

  fastify.decorate('websocket', registry)
  fastify.decorate('injectWS', function injectWS (this: FastifyInstance, path = '/', opts?: InjectWSOptions, hooks?: InjectWSHooks) {
    return (async () => {
      await this.ready()
      return injectWebSocket(this.server, path, opts, hooks)
    })()
  })
  fastify.decorateRequest('ws', false)
  if (asyncapi?.routePrefix !== undefined) serveAsyncApi(fastify, registry, asyncapi.routePrefix)

  // Message schemas compile once per route, when the app is ready (after Fastify compiled its own).
  fastify.addHook('onReady', function compileMessageSchemas (done) {
    try {
      for (const messages of routes.uncompiled.splice(0)) messages.compile(compilers)
    } catch (error) {
      done(error as Error)
      return
    }
    done()
  })
  if (adapter?.ready !== undefined) {
    fastify.addHook('onReady', async function adapterReady () {
      await adapter.ready!()
    })
  }
  fastify.addHook('preParsing', readUpgradeRequestBody)
  fastify.addHook('onRoute', function (routeOptions) { routes.onRoute(this, routeOptions) })
  fastify.addHook('onRequest', routes.checkHandshake)

  server[kRegistered] = true
  server.on('upgrade', upgrades.onUpgrade)
  // Where Node allows it, only WebSocket handshakes come to onUpgrade; the rest are parsed by Node.
  const removeUpgradeFilter = installUpgradeFilter(server, upgrades.onUpgrade)
  // On an HTTP/2 server, WebSockets over HTTP/2 streams too (RFC 8441).
  const http2 = installHttp2(fastify, server, registry, upgrades)

  if (preClose === undefined) {
    fastify.addHook('preClose', function goingAway (done) {
      registry.goAway(done)
    })
  } else {
    // The app's own round replaces the 1001 one; upgrades are refused from its start all the same.
    fastify.addHook('preClose', function refuseUpgrades (done) {
      registry.closing = true
      done()
    })
    fastify.addHook('preClose', preClose as preCloseHookHandler) // either form: Fastify tells them apart by their length
  }
  if (http2 !== null) {
    // After the round (the plugin's or the app's): its connections are closed, their sessions can go.
    fastify.addHook('preClose', function goAwayHttp2 (done) {
      http2.closeSessions()
      done()
    })
  }
  fastify.addHook('onClose', function detach (_instance, done) {
    upgrades.stop()
    server.removeListener('upgrade', upgrades.onUpgrade)
    removeUpgradeFilter()
    http2?.remove()
    server[kRegistered] = undefined
    registry.stop()
    // After the shutdown round: the connections have left their topics, so nothing more is published through it.
    if (adapter === null) done()
    else adapter.close().then(() => done(), done)
  })
}

export default fp(websocketPlugin, {
  fastify: '5.x',
  name: 'fastify-rfc6455'
})
