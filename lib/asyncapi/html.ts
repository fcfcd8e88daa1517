import { exampleOf } from './example.js'
import type { AsyncApiChannel, AsyncApiDocument, AsyncApiMessage, AsyncApiOperation } from './types.js'

/**
 * A readable page for the AsyncAPI document: its channels, their
 * operations and messages, each message's payload schema and an example.
 * Static HTML rendered on the server from the document, with inline CSS
 * and no script, so it works offline and under a `default-src 'none'`
 * Content-Security-Policy (serve.ts): nothing is fetched from anywhere.
 * Every string that comes from the document — from the app's schemas, so
 * possibly from anyone who could write one — goes through `escape`.
 */

export interface PageLinks {
  json: string
  yaml: string
}

const MAX_SCHEMA_DEPTH = 12

export function renderHtml (document: AsyncApiDocument, links: PageLinks): string {
  const { info } = document
  const channels = Object.entries(document.channels)
  const operations = Object.values(document.operations)
  const schemas = Object.entries(document.components?.schemas ?? {})
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(info.title)} ${escape(info.version)} — AsyncAPI</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${escape(info.title)} <span class="version">${escape(info.version)}</span></h1>
${text(info.description, 'description')}
<p class="meta">AsyncAPI ${escape(document.asyncapi)} · <a href="${escape(links.json)}">JSON</a> · <a href="${escape(links.yaml)}">YAML</a></p>
${servers(document)}
</header>
<nav aria-label="Channels"><h2>Channels</h2><ul>
${channels.map(([id, channel]) => `<li><a href="#channel-${escape(id)}"><code>${escape(channel.address)}</code></a>${channel['x-deprecated'] === true ? ' <span class="badge deprecated">deprecated</span>' : ''}</li>`).join('\n')}
</ul></nav>
<main>
${channels.length === 0 ? '<p>No WebSocket routes are documented.</p>' : ''}
${channels.map(([id, channel]) => renderChannel(id, channel, operations.filter((op) => op.channel.$ref === `#/channels/${id}`), document)).join('\n')}
${schemas.length === 0 ? '' : `<section class="components"><h2>Schemas</h2>\n${schemas.map(([name, schema]) => `<article class="schema" id="schema-${escape(name)}"><h3><code>${escape(name)}</code></h3>${renderSchema(schema, 0)}</article>`).join('\n')}</section>`}
</main>
</body>
</html>
`
}

function servers (document: AsyncApiDocument): string {
  const entries = Object.entries(document.servers ?? {})
  if (entries.length === 0) return ''
  return `<ul class="servers">${entries.map(([name, server]) =>
    `<li><span class="label">${escape(name)}</span> <code>${escape(`${server.protocol}://${server.host}${server.pathname ?? ''}`)}</code>${server.description === undefined ? '' : ` ${escape(server.description)}`}</li>`).join('')}</ul>`
}

function renderChannel (id: string, channel: AsyncApiChannel, operations: AsyncApiOperation[], document: AsyncApiDocument): string {
  const ws = channel.bindings?.ws
  const parameters = Object.entries(channel.parameters ?? {})
  return `<section class="channel" id="channel-${escape(id)}" data-channel="${escape(id)}">
<h2><span class="badge ws">WS</span> <code>${escape(channel.address)}</code>${channel['x-deprecated'] === true ? ' <span class="badge deprecated">deprecated</span>' : ''}</h2>
${text(channel.summary, 'summary')}${text(channel.description, 'description')}
${channel.tags === undefined ? '' : `<p class="tags">${channel.tags.map((tag) => `<span class="tag">${escape(tag.name)}</span>`).join(' ')}</p>`}
${ws?.['x-subprotocols'] === undefined ? '' : `<p>Subprotocols, in order of preference: ${ws['x-subprotocols'].map((p) => `<code>${escape(p)}</code>`).join(', ')}</p>`}
${parameters.length === 0
    ? ''
    : `<h3>Path parameters</h3><ul class="props">${parameters.map(([name, p]) => `<li><code>${escape(name)}</code>${p.enum === undefined ? '' : ` one of ${p.enum.map((v) => `<code>${escape(v)}</code>`).join(', ')}`}${p.default === undefined ? '' : ` default <code>${escape(p.default)}</code>`}${text(p.description, 'description')}</li>`).join('')}</ul>`}
${ws?.query === undefined ? '' : `<h3>Query string</h3>${renderSchema(ws.query, 0)}`}
${ws?.headers === undefined ? '' : `<h3>Headers</h3>${renderSchema(ws.headers, 0)}`}
${operations.map((op) => renderOperation(op, channel, document)).join('\n')}
</section>`
}

function renderOperation (operation: AsyncApiOperation, channel: AsyncApiChannel, document: AsyncApiDocument): string {
  const heading = operation.action === 'receive' ? 'Client → server' : 'Server → client'
  const messages = operation.messages
    .map((ref) => ref.$ref.slice(ref.$ref.lastIndexOf('/') + 1).replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((key) => [key, channel.messages?.[key]] as const)
    .filter((entry): entry is readonly [string, AsyncApiMessage] => entry[1] !== undefined)
  return `<div class="operation ${operation.action}" data-action="${escape(operation.action)}">
<h3>${heading} <span class="action">${escape(operation.action)}</span></h3>
${text(operation.summary, 'summary')}
${messages.map(([key, message]) => renderMessage(key, message, document)).join('\n')}
</div>`
}

function renderMessage (key: string, message: AsyncApiMessage, document: AsyncApiDocument): string {
  const declared = message.examples?.map((e) => e.payload)
  const examples = declared ?? [exampleOf(message.payload, document)]
  return `<article class="message" data-message="${escape(key)}">
<h4><code>${escape(message.name ?? key)}</code>${message.title !== undefined && message.title !== message.name ? ` ${escape(message.title)}` : ''}${message.deprecated === true ? ' <span class="badge deprecated">deprecated</span>' : ''}</h4>
${text(message.summary, 'summary')}${text(message.description, 'description')}
<div class="columns">
<div><h5>Payload</h5>${renderSchema(withoutRepeat(message.payload, message.description), 0)}</div>
<div><h5>${declared === undefined ? 'Example (generated from the schema)' : 'Example'}</h5>${examples.map((e) => `<pre class="example">${escape(JSON.stringify(e, null, 2) ?? 'null')}</pre>`).join('')}</div>
</div>
</article>`
}

/** The payload without the description the message already shows (a variant's description is both). */
function withoutRepeat (payload: unknown, description: string | undefined): unknown {
  if (description === undefined || payload === null || typeof payload !== 'object') return payload
  const { description: own, ...rest } = payload as Record<string, unknown>
  return own === description ? rest : payload
}

/** A schema as nested lists: type and constraints on one line, properties and branches below. */
function renderSchema (schema: unknown, depth: number): string {
  if (depth > MAX_SCHEMA_DEPTH) return '<span class="type">…</span>'
  if (schema === true || schema === undefined) return '<span class="type">any value</span>'
  if (schema === false) return '<span class="type">no value</span>'
  if (schema === null || typeof schema !== 'object') return `<span class="type">${escape(String(schema))}</span>`
  const s = schema as Record<string, unknown>
  if (typeof s.$ref === 'string') return refLink(s.$ref)
  const parts: string[] = [`<span class="type">${escape(typeLabel(s))}</span>`]
  for (const [keyword, label] of CONSTRAINTS) {
    if (s[keyword] !== undefined) parts.push(`<span class="constraint">${escape(label)} <code>${escape(JSON.stringify(s[keyword]))}</code></span>`)
  }
  if (s.additionalProperties === false) parts.push('<span class="constraint">no other properties</span>')
  if (s.deprecated === true) parts.push('<span class="badge deprecated">deprecated</span>')
  let out = `<div class="schema-line">${parts.join(' ')}</div>${text(s.title, 'title')}${text(s.description, 'description')}`
  const properties = s.properties
  if (properties !== null && typeof properties === 'object') {
    const required = new Set(Array.isArray(s.required) ? s.required : [])
    out += `<ul class="props">${Object.entries(properties).map(([name, property]) =>
      `<li><code class="prop">${escape(name)}</code>${required.has(name) ? ' <span class="required">required</span>' : ''} ${renderSchema(property, depth + 1)}</li>`).join('')}</ul>`
  }
  if (s.items !== undefined && !Array.isArray(s.items)) out += `<div class="nested"><span class="label">items</span> ${renderSchema(s.items, depth + 1)}</div>`
  if (s.additionalProperties !== undefined && typeof s.additionalProperties === 'object') {
    out += `<div class="nested"><span class="label">other properties</span> ${renderSchema(s.additionalProperties, depth + 1)}</div>`
  }
  for (const keyword of ['oneOf', 'anyOf', 'allOf'] as const) {
    const branches = s[keyword]
    if (!Array.isArray(branches)) continue
    const label = keyword === 'allOf' ? 'all of' : 'one of'
    out += `<div class="nested"><span class="label">${label}</span><ol class="branches">${branches.map((b) => `<li>${renderSchema(b, depth + 1)}</li>`).join('')}</ol></div>`
  }
  return out
}

const CONSTRAINTS: ReadonlyArray<readonly [string, string]> = [
  ['const', '='], ['enum', 'one of'], ['format', 'format'], ['pattern', 'pattern'], ['minLength', 'min length'],
  ['maxLength', 'max length'], ['minimum', '≥'], ['exclusiveMinimum', '>'], ['maximum', '≤'], ['exclusiveMaximum', '<'],
  ['multipleOf', 'multiple of'], ['minItems', 'min items'], ['maxItems', 'max items'], ['uniqueItems', 'unique items'],
  ['minProperties', 'min properties'], ['maxProperties', 'max properties'], ['default', 'default']
]

function typeLabel (s: Record<string, unknown>): string {
  const type = Array.isArray(s.type) ? s.type.join(' | ') : typeof s.type === 'string' ? s.type : undefined
  if (type === 'array' && s.items !== undefined) return 'array'
  if (type !== undefined) return type
  if (s.properties !== undefined) return 'object'
  if (s.const !== undefined || s.enum !== undefined) return 'value'
  return s.anyOf !== undefined || s.oneOf !== undefined || s.allOf !== undefined ? 'composite' : 'any value'
}

/** A reference into components.schemas as a link to that schema on the page (and the rest of the pointer). */
function refLink (ref: string): string {
  const prefix = '#/components/schemas/'
  if (!ref.startsWith(prefix)) return `<code>${escape(ref)}</code>`
  const [name, ...rest] = ref.slice(prefix.length).split('/')
  const decoded = name.replace(/~1/g, '/').replace(/~0/g, '~')
  return `<a class="ref" href="#schema-${escape(decoded)}"><code>${escape(decoded)}</code></a>${rest.length === 0 ? '' : ` <code class="pointer">/${escape(rest.join('/'))}</code>`}`
}

/** A paragraph of text (CommonMark in the document, shown as written), or nothing. */
function text (value: unknown, kind: string): string {
  return typeof value === 'string' && value !== '' ? `<p class="${kind}">${escape(value)}</p>` : ''
}

/** Text for HTML content and quoted attribute values. */
export function escape (value: string): string {
  return value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
}

const STYLE = `
:root { color-scheme: light dark; --fg: #1f2328; --muted: #59636e; --bg: #fff; --panel: #f6f8fa; --line: #d1d9e0; --accent: #0969da; --warn: #9a6700; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1; --bg: #0d1117; --panel: #151b23; --line: #3d444d; --accent: #4493f8; --warn: #d29922; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1.5rem; font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
h1 { margin: 0 0 .5rem; } h1 .version { font-size: .6em; color: var(--muted); font-weight: normal; }
h2 { margin-top: 0; } h3 { margin: 1.2rem 0 .4rem; } h4 { margin: 0 0 .3rem; } h5 { margin: .5rem 0 .3rem; color: var(--muted); }
a { color: var(--accent); } code, pre { font: 13px/1.4 ui-monospace, monospace; }
.meta, .summary, .description, .title { color: var(--muted); margin: .2rem 0; white-space: pre-wrap; }
nav ul, .servers { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4rem 1rem; }
.channel { border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem; margin: 1.2rem 0; }
.operation { border-left: 3px solid var(--accent); padding-left: .8rem; margin-top: 1rem; }
.operation.send { border-left-color: #1a7f37; }
.action { font-size: .75em; color: var(--muted); font-weight: normal; }
.message { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .7rem .9rem; margin: .6rem 0; }
.columns { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem; }
@media (max-width: 50rem) { .columns { grid-template-columns: 1fr; } }
pre.example { background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: .5rem; overflow: auto; margin: 0 0 .4rem; }
.props, .branches { margin: .2rem 0; padding-left: 1.2rem; } .props > li, .branches > li { margin: .25rem 0; }
.type { font-weight: 600; } .constraint { font-size: .85em; color: var(--muted); margin-left: .3rem; }
.required { font-size: .75em; color: var(--warn); } .label { font-size: .8em; color: var(--muted); }
.badge { font-size: .7em; padding: .05rem .4rem; border-radius: 4px; border: 1px solid var(--line); vertical-align: middle; }
.badge.ws { color: var(--accent); } .badge.deprecated { color: var(--warn); }
.tag { font-size: .8em; background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 0 .5rem; }
.schema { border-top: 1px solid var(--line); padding: .6rem 0; }
`
