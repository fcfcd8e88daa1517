import { channel } from 'node:diagnostics_channel'

/**
 * `node:diagnostics_channel` channels, so metrics and tracing can observe
 * connections and limits without wrapping the plugin (as undici does for its
 * WebSocket). Publishing costs a property check when nobody subscribes.
 *
 * - `fastify-rfc6455:open`    `{ connection, request }` after the 101 is written
 * - `fastify-rfc6455:close`   `{ connection, code, reason, wasClean }` once the transport is gone
 * - `fastify-rfc6455:refused` `{ request, statusCode, reason }` an upgrade answered with anything but 101
 *                             (statusCode 0: the socket was closed without an answer)
 * - `fastify-rfc6455:limit`   `{ limit, connection?, request?, error? }` a limit was hit;
 *                             `limit` names the setting
 * - `fastify-rfc6455:adapter` `{ event: 'dropped', topic, error, instanceId }` the Redis adapter could not
 *                             carry a publish to the other instances (error null: not connected)
 */
export const channels = {
  open: channel('fastify-rfc6455:open'),
  close: channel('fastify-rfc6455:close'),
  refused: channel('fastify-rfc6455:refused'),
  limit: channel('fastify-rfc6455:limit'),
  adapter: channel('fastify-rfc6455:adapter')
}

export function publishLimit (limit: string, connection: unknown, error?: Error, request?: unknown): void {
  if (channels.limit.hasSubscribers) channels.limit.publish({ limit, connection, request, error })
}
