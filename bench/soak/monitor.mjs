// Once a second during the soak run: is the server process alive, does its
// /health route answer, and how much memory, how many fds and clients does it
// hold (sampled without a GC, for the peaks).

import http from 'node:http'

const HEALTH_TIMEOUT_MS = 5000

function getHealth (port) {
  return new Promise((resolve) => {
    const started = performance.now()
    // agent: false → a fresh connection that the server closes after answering.
    const request = http.get({ host: '127.0.0.1', port, path: '/health', agent: false, timeout: HEALTH_TIMEOUT_MS }, (response) => {
      response.resume()
      response.on('end', () => resolve({ ok: response.statusCode === 200, status: response.statusCode, ms: performance.now() - started }))
    })
    request.on('timeout', () => request.destroy(new Error(`no answer in ${HEALTH_TIMEOUT_MS} ms`)))
    request.on('error', (error) => resolve({ ok: false, status: error.message, ms: performance.now() - started }))
  })
}

export class Monitor {
  #server
  #port
  #timer
  #inFlight = new Set()
  #sampling = false
  #paused = false
  #latencies = []

  constructor (server, port) {
    this.#server = server
    this.#port = port
    this.health = { polls: 0, ok: 0, failures: {} }
    this.peak = {}
    this.crashed = null
  }

  start () {
    this.#timer = setInterval(() => this.#poll(), 1000)
  }

  /**
   * Stops health polls and samples and waits for health requests under way, so
   * that no health connection is open on the server while it is measured.
   */
  async pause () {
    this.#paused = true
    await Promise.all(this.#inFlight)
  }

  resume () {
    this.#paused = false
  }

  #poll () {
    if (!this.#server.alive) {
      this.crashed ??= `server exited${this.#server.outputTail()}`
      return
    }
    if (this.#paused) return
    const health = getHealth(this.#port).then((result) => {
      this.health.polls++
      if (result.ok) {
        this.health.ok++
        this.#latencies.push(result.ms)
      } else {
        const key = String(result.status)
        this.health.failures[key] = (this.health.failures[key] ?? 0) + 1
      }
    })
    this.#inFlight.add(health)
    health.then(() => this.#inFlight.delete(health))
    if (this.#sampling) return
    this.#sampling = true
    this.#server.request({ request: 'sample' }, 10_000)
      .then(({ reading }) => this.observe(reading))
      .catch(() => {})
      .finally(() => { this.#sampling = false })
  }

  /** Starts the peaks afresh; returns the ones kept so far. */
  takePeak () {
    const peak = this.peak
    this.peak = {}
    return peak
  }

  /** Keeps the largest value seen of each reading field. */
  observe (reading) {
    for (const key of ['rss', 'heapUsed', 'external', 'arrayBuffers', 'fds', 'clients']) {
      this.peak[key] = Math.max(this.peak[key] ?? 0, reading[key])
    }
  }

  /** Stops polling and waits for health requests still under way. */
  async stop () {
    clearInterval(this.#timer)
    await Promise.all(this.#inFlight)
    const sorted = [...this.#latencies].sort((a, b) => a - b)
    const at = (q) => sorted.length === 0 ? null : Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 10) / 10
    this.health.latencyMs = { p50: at(0.5), p99: at(0.99), max: at(1) }
    if (!this.#server.alive) this.crashed ??= `server exited${this.#server.outputTail()}`
  }
}
