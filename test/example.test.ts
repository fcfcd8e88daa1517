// The example chat app (examples/chat): its rooms as topics, over the chat
// protocol with `ws` clients; then in a real browser, Debian's Chromium
// driven by playwright-core, two tabs chatting through the WebSocket route.
// Set CHAT_SCREENSHOT=/tmp/chat.png to keep a screenshot of a tab.
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Page } from 'playwright-core'
import type WebSocket from 'ws'
import { build } from '../examples/chat/server.js'
import { connect, inboxOf, type Inbox } from './helpers/app.js'
import { launchChromium } from './interop/fixtures/chromium.js'

interface Client {
  ws: WebSocket
  inbox: Inbox
  send: (message: object) => void
}

async function main (): Promise<void> {
  t.setTimeout(120_000)

  await t.test('rooms are topics: a room\'s members get its messages, nobody else does', async (t) => {
    const app = await build()
    await app.listen({ host: '127.0.0.1', port: 0 })
    t.teardown(() => app.close())
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

    const join = async (name: string, room: string): Promise<Client> => {
      const ws = await connect(app, `/chat?name=${name}&room=${room}`)
      const inbox = inboxOf(ws)
      t.match(await inbox.json(), { type: 'welcome', name, room, history: [] }, `${name} is in #${room}`)
      return { ws, inbox, send: (message) => ws.send(JSON.stringify(message)) }
    }
    const ann = await join('ann', 'kitchen')
    const ben = await join('ben', 'kitchen')
    t.match(await ann.inbox.json(), { type: 'joined', room: 'kitchen', name: 'ben' }, 'ann is told ben came in')
    const cat = await join('cat', 'garden')

    ann.send({ type: 'say', room: 'kitchen', text: 'soup is ready' })
    t.match(await ben.inbox.json(), { type: 'message', room: 'kitchen', name: 'ann', text: 'soup is ready' }, 'ben gets ann\'s message')
    t.match(await ann.inbox.json(), { type: 'message', name: 'ann', text: 'soup is ready' }, 'and so does ann herself')
    ben.send({ type: 'say', room: 'kitchen', text: 'coming' })
    t.match(await ann.inbox.json(), { type: 'message', name: 'ben', text: 'coming' }, 'and the other way round')
    t.match(await ben.inbox.json(), { type: 'message', name: 'ben', text: 'coming' })

    // Both messages were queued on every subscriber of room:kitchen before
    // ann and ben read them; anything queued for cat would come before the
    // answer to what cat sends now.
    cat.send({ type: 'say', room: 'kitchen', text: 'let me in' })
    t.match(await cat.inbox.json(), { type: 'error', message: 'join #kitchen before saying something there' },
      'cat, in another room, got none of them, and cannot speak in a room it is not in')
    cat.send({ type: 'shout', room: 'kitchen' })
    t.match(await cat.inbox.json(), { statusCode: 400, code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE' }, 'an unknown message is answered by the plugin')

    ben.send({ type: 'leave', room: 'kitchen' })
    t.match(await ann.inbox.json(), { type: 'left', room: 'kitchen', name: 'ben' }, 'ann is told ben left')
    ann.send({ type: 'say', room: 'kitchen', text: 'more for me' })
    t.match(await ann.inbox.json(), { type: 'message', name: 'ann', text: 'more for me' })
    ben.send({ type: 'join', room: 'garden' })
    t.match(await ben.inbox.json(), { type: 'welcome', room: 'garden' }, 'ben, having left, did not get ann\'s message')
    t.match(await cat.inbox.json(), { type: 'joined', room: 'garden', name: 'ben' }, 'one connection may be in several rooms')

    ben.send({ type: 'join', room: 'kitchen' })
    const welcome = await ben.inbox.json() as { history: Array<{ name: string, text: string }> }
    t.same(welcome.history.map((m) => `${m.name}: ${m.text}`), ['ann: soup is ready', 'ben: coming', 'ann: more for me'],
      'joining again, ben is given the room\'s history')
    t.match(await ann.inbox.json(), { type: 'joined', room: 'kitchen', name: 'ben' })
    cat.send({ type: 'say', room: 'garden', text: 'hello garden' })
    t.match(await ben.inbox.json(), { type: 'message', room: 'garden', name: 'cat', text: 'hello garden' }, 'ben is in both rooms')
    ann.send({ type: 'join', room: 'kitchen' }) // already in: answered with a welcome
    t.match(await ann.inbox.json(), { type: 'welcome', room: 'kitchen' }, 'ann, not in #garden, got nothing from it')

    ann.ws.close()
    t.match(await ben.inbox.json(), { type: 'left', room: 'kitchen', name: 'ann' }, 'closing leaves the rooms, and the others are told')
    ben.send({ type: 'leave', room: 'kitchen' })
    ben.send({ type: 'join', room: 'garden' }) // a round trip: the leave has been handled once this is answered
    t.match(await ben.inbox.json(), { type: 'welcome', room: 'garden' })
    t.same(await (await fetch(`${base}/chat?name=dan&room=kitchen`)).json(), { room: 'kitchen', history: [] },
      'the history of a room nobody is in is forgotten')
    ben.ws.close()
    cat.ws.close()
  })

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
    t.pass('alice is told bob joined')
    t.equal(await bob.locator('#messages li.notice', { hasText: 'joined' }).count(), 0, 'bob is not told about himself')
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
    t.pass('alice is told bob left')
  })

  await t.test('history is served to newcomers, over HTTP and in the welcome', async (t) => {
    const info = await (await fetch(`${base}/chat?name=carol`)).json() as { room: string, history: Array<{ name: string, text: string }> }
    t.equal(info.room, 'lobby')
    t.same(info.history.map((m) => [m.name, m.text]).slice(0, 2), [['alice', 'hello from alice ✓'], ['bob', 'hi alice, bob here']])
    const carol = await openTab('carol')
    t.equal(await carol.locator('#messages li.msg').count(), 3, 'carol sees the three earlier messages')
    await carol.close()
  })

  t.same(pageErrors, [], 'no uncaught errors in the pages')
}

main().catch((err) => t.threw(err))
