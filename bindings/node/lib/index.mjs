import cjs from './index.js'

export const {
  Config,
  Edge,
  PhantomEdge,
  loadConfig,
  applyForward,
  applyForwardRaw,
  auditJson,
  redactQueryTokens,
  PhantomEdgeError,
  ConfigError,
  RevocationError,
  EdgeError,
  InvalidArgumentError,
} = cjs
export default cjs
