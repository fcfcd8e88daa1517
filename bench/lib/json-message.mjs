// The message and schema of the validated-JSON scenario, shared by the
// servers (which validate it) and the load generator (which sends it).

export const JSON_ROUTE = '/json'

/**
 * What a server sends instead of an echo when it has no JSON message API: the
 * generator then reports the cell as n/a instead of a failure.
 */
export const JSON_UNSUPPORTED = '__bench_json_unsupported__'

export const chatMessageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'room', 'seq', 'text'],
  properties: {
    type: { type: 'string', enum: ['chat'] },
    room: { type: 'string', minLength: 1, maxLength: 64 },
    seq: { type: 'integer', minimum: 0 },
    text: { type: 'string', maxLength: 1024 },
    tags: { type: 'array', maxItems: 8, items: { type: 'string', maxLength: 32 } }
  }
}

export const sampleChatMessage = {
  type: 'chat',
  room: 'lobby',
  seq: 1234567,
  text: 'The quick brown fox jumps over the lazy dog, twice: the quick brown fox.',
  tags: ['bench', 'json']
}
