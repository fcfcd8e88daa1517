export { JsonWebSocketConnection, kSetFailureHandler } from './connection.js'
export { RouteMessages, checkMessageSettings } from './codec.js'
export { CompilerCache, setFastifyInternalsEnabled } from './compile.js'
export { InvalidMessageError, InvalidMessageCode, type InvalidMessageBody, type MessageValidationIssue } from './errors.js'
export type {
  BinaryMessagePolicy, DiscriminatorOf, IncomingMessageOf, InvalidMessagePolicy, JsonMessageHandler, JsonMessageSettings,
  OutgoingMessageOf, VariantHandlers
} from './types.js'
