import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import ts from 'typescript'

// What the package publishes, name by name, against the lists below: a name
// that appears or disappears fails here, so a change to the public surface is
// a decision written in this file, not a side effect of moving code. Reads the
// built package: `npm test` builds dist/ before tap runs (built here if missing).

const root = join(__dirname, '..')
if (!existsSync(join(root, 'dist/cjs/index.js'))) {
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' })
}

/** `fastify-rfc6455`: the plugin, its connection classes and errors; the rest are types. */
const MAIN_VALUES = [
  'CloseCode', 'InvalidMessageCode', 'InvalidMessageError', 'JsonWebSocketConnection', 'ProtocolError', 'WebSocketConnection',
  'WebSocketError', 'WebSocketUpgradeError', 'connectOverHttp2', 'createWebSocketStream', 'default', 'encodeBroadcastFrame', 'fastifyRfc6455'
]
const MAIN_TYPES = [
  'AsyncApiChannel', 'AsyncApiDocument', 'AsyncApiInfo', 'AsyncApiMessage', 'AsyncApiOperation', 'AsyncApiOptions', 'AsyncApiParameter',
  'AsyncApiPluginOptions', 'AsyncApiReference', 'AsyncApiServer',
  'BinaryMessagePolicy', 'BroadcastOptions', 'BufferFullPolicy', 'CompressionOptions', 'DiscriminatorOf', 'Http2WebSocketOptions', 'IncomingMessageOf', 'InjectWSHooks', 'InjectWSOptions',
  'InvalidMessageBody', 'InvalidMessagePolicy', 'JsonMessageHandler', 'JsonMessageSettings', 'MessageValidationIssue',
  'OutgoingMessageOf', 'SendCallback', 'SendOptions', 'TopicAdapter', 'TopicAdapterHost', 'VariantHandlers', 'WebSocketData', 'WebSocketErrorHandler', 'WebSocketEventMap', 'WebSocketHandler',
  'WebSocketPluginOptions', 'WebSocketPreClose', 'WebSocketRegistry', 'WebSocketRouteOptions', 'WebSocketRouteSettings', 'WebSocketStreamOptions'
]

/** `fastify-rfc6455/protocol`: the sans-I/O core. */
const PROTOCOL_VALUES = [
  'CloseCode', 'DEFAULT_MAX_MESSAGE_PIECES', 'DEFAULT_MIN_AVERAGE_PIECE_SIZE', 'ERROR_CODES', 'EXTENDED_CONNECT_PROTOCOL', 'FrameParser', 'MAX_CLOSE_REASON_BYTES',
  'Opcode', 'PERMESSAGE_DEFLATE', 'ProtocolError', 'ReadyState', 'Utf8Validator', 'WEBSOCKET_GUID', 'WEBSOCKET_VERSION', 'WebSocketError', 'WebSocketProtocol',
  'acceptDeflateResponse', 'buildClientRequest', 'buildUpgradeResponse', 'computeAccept', 'deflateOffer', 'encodeCloseFrame', 'encodeControlFrame', 'encodeFrame', 'extendedConnectRequestHeaders', 'extendedConnectResponseHeaders', 'formatExtensions', 'generateKey',
  'headerHasToken', 'isControlOpcode', 'isKnownOpcode', 'isToken', 'isValidKey', 'isValidUtf8', 'isValidWireCloseCode', 'maskInto',
  'negotiateDeflate', 'parseExtensions', 'parseResponseHead', 'parseSubprotocols', 'selectSubprotocol', 'toBuffer', 'truncateReason', 'unmaskInPlace',
  'validateExtendedConnect', 'validateExtendedConnectResponse', 'validateHandshake', 'validateServerResponse'
]
const PROTOCOL_TYPES = [
  'ClientRequestOptions', 'ClosingErrorCode', 'DeflateParams', 'DeflatePreferences', 'ErrorCode', 'ErrorCodeInfo', 'ExtendedConnectOptions', 'ExtensionOffer', 'FrameOptions', 'FrameParserOptions',
  'FrameParserSink', 'HandshakeAccepted', 'HandshakeRefused', 'Http2RequestHeaders', 'HandshakeRequest', 'HandshakeResult', 'MessageExtension', 'PieceLimitOptions', 'ProtocolHandler',
  'ProtocolOptions', 'ResponseHead', 'Role', 'SubprotocolSelector', 'UpgradeResponseOptions'
]

/** `fastify-rfc6455/redis`: the Redis topic adapter (needs the optional peer ioredis). */
const REDIS_VALUES = ['redisAdapter']
const REDIS_TYPES = ['RedisAdapter', 'RedisAdapterOptions', 'RedisAdapterStats']

/** What the declarations show of `WebSocketConnection` (README, "The connection"); its machinery is behind a `#private` field. */
const CONNECTION_PUBLIC = [
  'static CONNECTING', 'static OPEN', 'static CLOSING', 'static CLOSED', 'CONNECTING', 'OPEN', 'CLOSING', 'CLOSED',
  'request', 'protocol', 'extensions', 'log', 'constructor',
  'readyState', 'bufferedAmount', 'wasClean', 'closeEmitted', 'send', 'sendAsync', 'sendFrame', 'ping', 'pong', 'close',
  'terminate', 'pause', 'resume', 'isPaused', '[Symbol.asyncIterator]',
  'subscribe', 'unsubscribe', 'isSubscribed', 'topics', 'publish'
]
/** The hook a subclass overrides (the JSON connection hands the error to the route's errorHandler). */
const CONNECTION_PROTECTED = ['listenerFailed']

const sorted = (names: Iterable<string>): string[] => [...names].sort()

t.test('runtime exports of both entry points, through require and import', async (t) => {
  const out = execFileSync(process.execPath, ['-e', `
    const keys = (m) => Object.keys(m).sort()
    Promise.all([import('fastify-rfc6455'), import('fastify-rfc6455/protocol'), import('fastify-rfc6455/redis')]).then(([main, protocol, redis]) => {
      console.log(JSON.stringify({
        require: keys(require('fastify-rfc6455')), requireProtocol: keys(require('fastify-rfc6455/protocol')),
        requireRedis: keys(require('fastify-rfc6455/redis')),
        import: keys(main), importProtocol: keys(protocol), importRedis: keys(redis)
      }))
    })`], { cwd: root, encoding: 'utf8' })
  const found = JSON.parse(out)
  t.same(found.require, sorted(MAIN_VALUES), "require('fastify-rfc6455')")
  t.same(found.import, sorted(MAIN_VALUES), "import 'fastify-rfc6455'")
  t.same(found.requireProtocol, sorted(PROTOCOL_VALUES), "require('fastify-rfc6455/protocol')")
  t.same(found.importProtocol, sorted(PROTOCOL_VALUES), "import 'fastify-rfc6455/protocol'")
  t.same(found.requireRedis, sorted(REDIS_VALUES), "require('fastify-rfc6455/redis')")
  t.same(found.importRedis, sorted(REDIS_VALUES), "import 'fastify-rfc6455/redis'")
})

t.test('the main entry and the protocol entry do not load ioredis (an optional peer dependency)', async (t) => {
  const out = execFileSync(process.execPath, ['-e', `
    require('fastify-rfc6455'); require('fastify-rfc6455/protocol')
    const before = Object.keys(require.cache).filter((file) => file.includes('/node_modules/ioredis/')).length
    require('fastify-rfc6455/redis')
    const after = Object.keys(require.cache).filter((file) => file.includes('/node_modules/ioredis/')).length
    console.log(JSON.stringify({ before, after: after > 0 }))`], { cwd: root, encoding: 'utf8' })
  t.same(JSON.parse(out), { before: 0, after: true }, 'only fastify-rfc6455/redis requires it')
})

/**
 * The entry declarations of one build (cjs or esm), as a consumer's compiler
 * sees them. One program per build: both augment the 'fastify' module.
 */
function declarations (format: 'cjs' | 'esm') {
  const main = join(root, 'dist', format, 'index.d.ts')
  const protocol = join(root, 'dist', format, 'protocol/index.d.ts')
  const redis = join(root, 'dist', format, 'adapters/redis.d.ts')
  const program = ts.createProgram([main, protocol, redis], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    types: ['node'],
    strict: true,
    noEmit: true
  })
  const checker = program.getTypeChecker()
  const exportsOf = (file: string): ts.Symbol[] => checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(file)!)!)
  return { program, checker, exportsOf, main, protocol, redis }
}

const builds = [declarations('cjs'), declarations('esm')]
const relative = (file: string): string => file.slice(root.length + 1)

t.test('names exported by the entry declarations', async (t) => {
  for (const { exportsOf, main, protocol, redis } of builds) {
    t.same(sorted(exportsOf(main).map((symbol) => symbol.name)), sorted([...MAIN_VALUES, ...MAIN_TYPES]), relative(main))
    t.same(sorted(exportsOf(protocol).map((symbol) => symbol.name)), sorted([...PROTOCOL_VALUES, ...PROTOCOL_TYPES]), relative(protocol))
    t.same(sorted(exportsOf(redis).map((symbol) => symbol.name)), sorted([...REDIS_VALUES, ...REDIS_TYPES]), relative(redis))
  }
})

t.test('members the declarations show of WebSocketConnection', async (t) => {
  for (const { checker, exportsOf, main } of builds) {
    const exported = exportsOf(main).find((symbol) => symbol.name === 'WebSocketConnection')!
    const declaration = checker.getAliasedSymbol(exported).declarations!.find(ts.isClassDeclaration)!
    const visible: string[] = []
    const hidden: string[] = []
    for (const member of declaration.members) {
      if (member.name !== undefined && ts.isPrivateIdentifier(member.name)) continue // `#private`: nothing to see
      const modifiers = ts.getCombinedModifierFlags(member)
      const name = ts.isConstructorDeclaration(member) ? 'constructor' : member.name!.getText()
      if (modifiers & ts.ModifierFlags.Private) hidden.push(`private ${name}`)
      else if (modifiers & ts.ModifierFlags.Protected) hidden.push(`protected ${name}`)
      else visible.push(modifiers & ts.ModifierFlags.Static ? `static ${name}` : name)
    }
    const file = relative(declaration.getSourceFile().fileName)
    t.same(sorted(visible), sorted(CONNECTION_PUBLIC), `public members (${file})`)
    t.same(hidden, CONNECTION_PROTECTED.map((name) => `protected ${name}`), `no private members, only the protected hook (${file})`)
  }
})

t.test('the published declarations type-check on their own (a consumer without skipLibCheck)', async (t) => {
  for (const { program, main } of builds) {
    const problems = program.getSourceFiles()
      .filter((source) => source.fileName.startsWith(join(root, 'dist')))
      .flatMap((source) => [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)])
      .map((d) => `${relative(d.file!.fileName)}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`)
    t.same(problems, [], `nothing under ${relative(main)} points at a declaration stripInternal removed`)
  }
})
