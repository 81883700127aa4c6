import cjs from './index.js'

export const {
  Config,
  Edge,
  PhantomEdge,
  loadConfig,
  auditJson,
  hopByHopHeaders,
  MAX_ADMIN_BODY,
  redactQueryTokens,
  splitJwt,
  PhantomEdgeError,
  ConfigError,
  RevocationError,
  EdgeError,
  InvalidArgumentError,
} = cjs
export default cjs
