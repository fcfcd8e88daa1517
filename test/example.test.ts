// The example chat app (examples/chat) in a real browser: Debian's Chromium
// driven by playwright-core, two tabs chatting through the WebSocket route.
// Set CHAT_SCREENSHOT=/tmp/chat.png to keep a screenshot of a tab.
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Page } from 'playwright-core'
import { build } from '../examples/chat/server.js'
import { launchChromium } from './interop/fixtures/chromium.js'

async function main (): Promise<void> {
  t.setTimeout(120_000)
  const app = await build()
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const context = await browser.newContext()
  const pageErrors: string[] = []

  const openTab = async (name: string): Promise<Page> => {
    const page = await context.newPage()
    page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`))
    await page.goto(`${base}/?name=${encodeURIComponent(name)}`)
    // The page marks itself open once the server's welcome arrived.
    await page.locator('#status[data-state="open"]').waitFor()
    return page
  }
  const send = async (page: Page, text: string): Promise<void> => {
    // As a user would: switch to the tab first (background tabs are throttled).
    await page.bringToFront()
    await page.fill('#text', text)
    await page.click('#send')
  }
  const messageIn = (page: Page, text: string) => page.locator('#messages li.msg', { hasText: text })

  await t.test('REST routes answer next to the WebSocket route', async (t) => {
    t.same(await (await fetch(`${base}/api/health`)).json(), { status: 'ok', connections: 0 })
    t.same(await (await fetch(`${base}/api/rooms`)).json(), [])
    const missingName = await fetch(`${base}/chat`)
    t.equal(missingName.status, 400, 'the querystring schema requires a name')
    const page = await fetch(`${base}/`)
    t.match(page.headers.get('content-type'), /^text\/html/)
    t.match(await page.text(), /<title>fastify-rfc6455 chat<\/title>/)
  })

  // Opened outside a subtest would leave the root test idle, and it would end.
  let alice!: Page
  let bob!: Page
  await t.test('two tabs join the lobby', async (t) => {
    alice = await openTab('alice')
    bob = await openTab('bob')
    await alice.locator('#messages li.notice', { hasText: 'bob joined' }).waitFor()
    t.equal(await alice.textContent('#members'), 'Here: alice, bob', 'alice sees both members')
    t.equal(await bob.textContent('#members'), 'Here: alice, bob', 'bob sees both members')
    t.same(await (await fetch(`${base}/api/rooms`)).json(), [{ name: 'lobby', members: ['alice', 'bob'] }])
    t.same(await (await fetch(`${base}/api/health`)).json(), { status: 'ok', connections: 2 })
  })

  await t.test('a message sent in tab A shows in tab B', async (t) => {
    await send(alice, 'hello from alice ✓')
    const received = messageIn(bob, 'hello from alice ✓')
    await received.waitFor()
    t.equal(await received.locator('.who').textContent(), 'alice', 'with the sender name from the querystring')
    t.equal(await received.locator('.text').textContent(), 'hello from alice ✓')
    await messageIn(alice, 'hello from alice ✓').and(alice.locator('.mine')).waitFor()
    t.pass('the sender sees its own message too, marked as its own')
  })

  await t.test('and the other way round', async (t) => {
    await send(bob, 'hi alice, bob here')
    const received = messageIn(alice, 'hi alice, bob here')
    await received.waitFor()
    t.equal(await received.locator('.who').textContent(), 'bob')
    t.equal(await alice.locator('#messages li.msg').count(), 2, 'two messages in tab A, in order')
    t.same(await alice.locator('#messages li.msg .text').allTextContents(), ['hello from alice ✓', 'hi alice, bob here'])
  })

  await t.test('markup in messages is shown as text', async (t) => {
    const markup = '<img src=x onerror="document.title=\'pwned\'"><b>bold?</b>'
    await send(alice, markup)
    const received = messageIn(bob, 'bold?')
    await received.waitFor()
    t.equal(await received.locator('.text').textContent(), markup)
    t.equal(await received.locator('img, b').count(), 0, 'no element was created from it')
    t.equal(await bob.title(), 'fastify-rfc6455 chat')
  })

  await t.test('closing tab B tells tab A', async (t) => {
    if (process.env.CHAT_SCREENSHOT !== undefined) {
      await bob.screenshot({ path: process.env.CHAT_SCREENSHOT })
      t.comment(`screenshot: ${process.env.CHAT_SCREENSHOT}`)
    }
    await bob.close()
    await alice.locator('#messages li.notice', { hasText: 'bob left' }).waitFor()
    t.equal(await alice.textContent('#members'), 'Here: alice')
    t.same(await (await fetch(`${base}/api/rooms`)).json(), [{ name: 'lobby', members: ['alice'] }])
  })

  await t.test('history is served to newcomers, over HTTP and in the welcome', async (t) => {
    const info = await (await fetch(`${base}/chat?name=carol`)).json() as { members: string[], history: Array<{ name: string, text: string }> }
    t.same(info.members, ['alice'])
    t.same(info.history.map((m) => [m.name, m.text]).slice(0, 2), [['alice', 'hello from alice ✓'], ['bob', 'hi alice, bob here']])
    const carol = await openTab('carol')
    t.equal(await carol.locator('#messages li.msg').count(), 3, 'carol sees the three earlier messages')
    await carol.close()
  })

  t.same(pageErrors, [], 'no uncaught errors in the pages')
}

main().catch((err) => t.threw(err))
