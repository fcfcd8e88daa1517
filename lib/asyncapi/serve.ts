import type { FastifyInstance } from 'fastify'
import { renderHtml } from './html.js'
import type { AsyncApiDocument } from './types.js'
import { toYaml } from './yaml.js'

/**
 * Serves the AsyncAPI document (the plugin's `asyncapi: { routePrefix }`):
 *
 *   GET <routePrefix>        the HTML page
 *   GET <routePrefix>/json   the document as JSON
 *   GET <routePrefix>/yaml   the document as YAML
 *
 * The routes are `hide`-marked, so @fastify/swagger leaves them out of the
 * OpenAPI document, and they are ordinary routes: the app's hooks (auth,
 * say) apply to them as to any other.
 */

// The page fetches nothing and runs no script: a policy that allows nothing else keeps it so.
const PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

interface Rendered {
  json: string
  yaml: string
  html: string
}

export function serveAsyncApi (fastify: FastifyInstance, registry: { asyncapi (): AsyncApiDocument }, routePrefix: string): void {
  const links = { json: `${routePrefix}/json`, yaml: `${routePrefix}/yaml` }
  // Built on the first request, once: every route is declared by then (no route
  // can be added after ready), and the listening address the servers default to is known.
  let rendered: Rendered | undefined
  const documents = (): Rendered => {
    if (rendered === undefined) {
      const document = registry.asyncapi()
      rendered = { json: JSON.stringify(document, null, 2), yaml: toYaml(document), html: renderHtml(document, links) }
    }
    return rendered
  }
  const options = { schema: { hide: true } }
  fastify.get(routePrefix, options, async (_request, reply) => {
    return reply.type('text/html; charset=utf-8').header('content-security-policy', PAGE_POLICY).send(documents().html)
  })
  fastify.get(links.json, options, async (_request, reply) => {
    return reply.type('application/json; charset=utf-8').send(documents().json)
  })
  fastify.get(links.yaml, options, async (_request, reply) => {
    return reply.type('application/yaml; charset=utf-8').send(documents().yaml)
  })
}
