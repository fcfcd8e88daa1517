// The long-lived processes of a run: one per server and the load
// generator, restarted if one died in an earlier cell.

import { startLoadGenerator, startServer } from './servers.mjs'

/** Keeps one process per server and the load generator alive across cells. */
export class Fleet {
  constructor (environment, log) {
    this.environment = environment
    this.log = log
    this.servers = new Map()
    this.load = null
  }

  async start (definitions) {
    const skipped = new Map()
    const [load, ...outcomes] = await Promise.allSettled([
      startLoadGenerator({ pin: this.environment.pin }),
      ...definitions.map((definition) => startServer(definition, { pin: this.environment.pin }))
    ])
    outcomes.forEach((outcome, index) => {
      const { id } = definitions[index]
      if (outcome.status === 'fulfilled') this.servers.set(id, { definition: definitions[index], handle: outcome.value })
      else skipped.set(id, outcome.reason.message)
    })
    // After the servers are recorded, so that stop() still ends them.
    if (load.status === 'rejected') throw load.reason
    this.load = load.value
    return skipped
  }

  /** A server that crashed in an earlier cell is restarted for the next one. */
  async server (id) {
    const entry = this.servers.get(id)
    if (!entry.handle.alive) {
      this.log(`restarting server ${id}`)
      entry.handle = await startServer(entry.definition, { pin: this.environment.pin })
    }
    return entry.handle
  }

  async loadGenerator () {
    if (!this.load.alive) {
      this.log('restarting the load generator')
      this.load = await startLoadGenerator({ pin: this.environment.pin })
    }
    return this.load
  }

  features (id) {
    return this.servers.get(id).handle.features
  }

  async stop () {
    await Promise.all([this.load?.stop(), ...[...this.servers.values()].map((entry) => entry.handle.stop())])
  }
}
