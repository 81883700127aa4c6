import type { FastifyPluginAsync } from 'fastify'
import type { ConfigSource, PhantomEdge, PhantomEdgeOptions, TokenClaims } from './index.js'

export interface PhantomEdgePluginOptions extends PhantomEdgeOptions {
  /** TOML path, TOML text, object or Config (default `phantom-edge.toml`). */
  config?: ConfigSource
  revocationPath?: string
  metricsPath?: string
  edge?: PhantomEdge
}

declare module 'fastify' {
  interface FastifyInstance {
    phantomEdge: PhantomEdge
  }
  interface FastifyRequest {
    /** The claims of the forwarded token. */
    phantomEdge: TokenClaims | null
  }
  interface FastifyContextConfig {
    /** `false`: this route skips the phantom-edge hook. */
    phantomEdge?: boolean
  }
}

declare const phantomEdge: FastifyPluginAsync<PhantomEdgePluginOptions>
export { phantomEdge }
export default phantomEdge
