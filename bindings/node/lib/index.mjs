import cjs from './index.js'

export const {
  Config,
  Edge,
  PhantomEdge,
  loadConfig,
  applyForward,
  applyForwardRaw,
  auditJson,
  PhantomEdgeError,
  ConfigError,
  RevocationError,
  EdgeError,
  InvalidArgumentError,
} = cjs
export default cjs
