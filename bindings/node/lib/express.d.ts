import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ConfigSource, PhantomEdge, PhantomEdgeOptions, TokenClaims } from './index.js'

export interface PhantomTokenOptions extends PhantomEdgeOptions {
  /** Override `[middleware] revocation_path` (default `/_phantom/revocations`; `''` disables). */
  revocationPath?: string
  /** Override `[middleware] metrics_path` (default `/_phantom/metrics`; `''` disables). */
  metricsPath?: string
  /** Share one PhantomEdge between hosts. */
  edge?: PhantomEdge
}

export interface PhantomTokenMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void
  readonly edge: PhantomEdge
  readonly revocationPath: string
  readonly metricsPath: string
  close(): Promise<void>
}

/** Express / Connect middleware; the claims of a forwarded token are in `req.phantomEdge`. */
export declare function phantomToken(config?: ConfigSource, options?: PhantomTokenOptions): PhantomTokenMiddleware
export declare const DEFAULT_REVOCATION_PATH: string
export declare const DEFAULT_METRICS_PATH: string
export default phantomToken

declare module 'node:http' {
  interface IncomingMessage {
    /** Set by phantom-edge on forwarded requests. */
    phantomEdge?: TokenClaims
  }
}
