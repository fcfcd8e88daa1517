// What one idle connection's protocol state costs: the state machine keeps
// its yes/no facts as bits of one field (protocol.ts), since every field is
// paid by every open connection. Sizes are compared with a reference object
// measured in the same heap snapshot, so the test holds whatever the V8
// version's field size.

import v8 from 'node:v8'
import t from 'tap'
import { WebSocketProtocol, type ProtocolHandler } from '../../lib/protocol/index.js'

/** An object with exactly ten fields, built as a class instance like the protocol. */
class TenFields {
  f0 = 0; f1 = 0; f2 = 0; f3 = 0; f4 = 0; f5 = 0; f6 = 0; f7 = 0; f8 = 0; f9 = 0
}

/**
 * The smallest self size of the live objects of each named class, from a
 * heap snapshot. The first instances of a class carry spare room for fields
 * (V8's slack tracking) until a few have been made: the smallest is the size
 * every later instance has.
 */
async function selfSizes (names: string[]): Promise<Map<string, number>> {
  let text = ''
  for await (const chunk of v8.getHeapSnapshot()) text += chunk
  const snapshot = JSON.parse(text)
  const fields: string[] = snapshot.snapshot.meta.node_fields
  const objectType = (snapshot.snapshot.meta.node_types[0] as string[]).indexOf('object')
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f))
  const sizes = new Map<string, number>()
  const nodes: number[] = snapshot.nodes
  for (let i = 0; i < nodes.length; i += fields.length) {
    const name: string = snapshot.strings[nodes[i + nameAt!]!]
    if (nodes[i + typeAt!] !== objectType || !names.includes(name)) continue
    sizes.set(name, Math.min(sizes.get(name) ?? Infinity, nodes[i + sizeAt!]!))
  }
  return sizes
}

t.test('an open server-side protocol state machine is no larger than an object of ten fields', async (t) => {
  const handler: ProtocolHandler = {
    write () {},
    onMessage () {},
    onPing () {},
    onPong () {},
    onError () {},
    closeTransport () {}
  }
  // Enough of each for slack tracking to have ended (see selfSizes).
  const kept: object[] = []
  for (let i = 0; i < 20; i++) kept.push(new WebSocketProtocol({ role: 'server', maxMessageSize: 1024 }, handler), new TenFields())
  const sizes = await selfSizes(['WebSocketProtocol', 'TenFields'])
  t.ok(sizes.has('WebSocketProtocol') && sizes.has('TenFields'), 'both found in the snapshot')
  t.ok(sizes.get('WebSocketProtocol')! <= sizes.get('TenFields')!, `WebSocketProtocol ${sizes.get('WebSocketProtocol')} bytes, ten fields ${sizes.get('TenFields')}`)
  t.equal(kept.length, 40)
})
