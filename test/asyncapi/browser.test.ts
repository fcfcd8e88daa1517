// The AsyncAPI page in a real browser, Debian's Chromium driven by
// playwright-core (never downloaded): the example app's page and the kitchen
// sink's. Every channel of the document is on the page and visible, with its
// messages; the page asks nothing of any other origin, logs no error, and is
// left as a screenshot in .tap/asyncapi/ (git-ignored).
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { build } from '../../examples/chat/server.js'
import { launchChromium } from '../interop/fixtures/chromium.js'
import { buildKitchenSink } from './fixtures/kitchen-sink.js'

const ARTIFACTS = join(__dirname, '..', '..', '.tap', 'asyncapi')

async function main (): Promise<void> {
  t.setTimeout(120_000)
  mkdirSync(ARTIFACTS, { recursive: true })
  const browser = await launchChromium()
  t.teardown(() => browser.close())

  const check = async (t: Test, app: FastifyInstance, name: string): Promise<void> => {
    await app.listen({ host: '127.0.0.1', port: 0 })
    t.teardown(() => app.close())
    const origin = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    const document = app.websocket.asyncapi()

    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } })
    t.teardown(() => context.close())
    const page = await context.newPage()
    const elsewhere: string[] = []
    const problems: string[] = []
    page.on('request', (request) => { if (!request.url().startsWith(origin)) elsewhere.push(request.url()) })
    page.on('console', (message) => { if (message.type() === 'error' || message.type() === 'warning') problems.push(message.text()) })
    page.on('pageerror', (error) => problems.push(error.message))
    const response = await page.goto(`${origin}/asyncapi`, { waitUntil: 'load' })
    t.equal(response?.status(), 200)
    t.equal(await page.title(), `${document.info.title} ${document.info.version} — AsyncAPI`)

    const channels = Object.entries(document.channels)
    t.ok(channels.length > 0)
    t.equal(await page.locator('section.channel').count(), channels.length, 'one section per channel')
    for (const [id, channel] of channels) {
      const section = page.locator(`section.channel[data-channel="${id}"]`)
      t.ok(await section.isVisible(), `${channel.address} is shown`)
      t.equal(await section.locator('h2 code').innerText(), channel.address, `${channel.address}: its address heading`)
      const expected = Object.values(document.operations).filter((op) => op.channel.$ref === `#/channels/${id}`).reduce((n, op) => n + op.messages.length, 0)
      t.equal(await section.locator('article.message').count(), expected, `${channel.address}: ${expected} messages`)
      for (const key of Object.keys(channel.messages ?? {})) {
        t.ok(await section.locator(`article.message[data-message="${key}"] pre.example`).first().isVisible(), `${channel.address}: message ${key} with an example`)
      }
    }
    const navLinks = await page.locator('nav a').evaluateAll((links) => links.map((a) => a.getAttribute('href')))
    t.same(navLinks, channels.map(([id]) => `#channel-${id}`), 'the table of contents links every channel')
    t.same(elsewhere, [], 'nothing requested from another origin: the page works offline')
    t.same(problems, [], 'no errors or warnings in the console (a CSP violation would be one)')
    const file = join(ARTIFACTS, `${name}.png`)
    await page.screenshot({ path: file, fullPage: true })
    t.comment(`screenshot: ${file}`)
  }

  await t.test('the example app\'s page', async (t) => {
    await check(t, await build(), 'example')
  })
  await t.test('the kitchen sink\'s page', async (t) => {
    await check(t, await buildKitchenSink({ asyncapi: { routePrefix: '/asyncapi' } }), 'kitchen-sink')
  })
}

main().catch((err) => t.threw(err))
