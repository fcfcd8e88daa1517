export { JsonWebSocketConnection } from './json-connection.js'
/** @internal */
export { kSetFailureHandler } from './json-connection.js'
export { RouteMessages } from './route-messages.js'
export { checkMessageSettings } from './policies.js'
export { CompilerCache } from './compile.js'
/** @internal */
export { setFastifyInternalsEnabled } from './compile.js'
export { InvalidMessageError, InvalidMessageCode, type InvalidMessageBody, type MessageValidationIssue } from './errors.js'
export type { BinaryMessagePolicy, InvalidMessagePolicy, JsonMessageSettings } from './settings.js'
export type { DiscriminatorOf, IncomingMessageOf, JsonMessageHandler, OutgoingMessageOf, VariantHandlers } from './types.js'
