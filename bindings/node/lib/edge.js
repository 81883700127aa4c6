'use strict'
// The core's event/action API: the native Edge, with config loading, a random seed by default
// and typed errors. Hot methods (handleRequest, pollAction, drainActions) are the native ones.
const { randomBytes } = require('node:crypto')
const native = require('./native.js')
const { loadConfig } = require('./config.js')
const { translate } = require('./errors.js')

class Edge extends native.Edge {
  /**
   * @param config a Config, an object of the TOML's shape, TOML text or a TOML/JSON path
   * @param seed 32 random bytes (default: crypto.randomBytes(32))
   * @param now Unix ms (default: Date.now())
   */
  constructor(config, seed, now) {
    const cfg = loadConfig(config)
    try {
      super(cfg, seed == null ? randomBytes(32) : Buffer.from(seed), now)
    } catch (e) {
      throw translate(e)
    }
    this.config = cfg
    // The same decisions as native decide() for the common request shape (see decide below).
    Object.defineProperty(this, '_decideBearer', { value: super.bearerDecider() })
  }

  /**
   * `handleRequest`, then this request's decision when the core made it at once and nothing
   * else is queued, else `null` (see index.d.ts). A request with one `Authorization` header or
   * none, no `DPoP` header and no client certificate goes through `bearerDecider()`'s function
   * (a plain N-API call), every other one through the native method; both hand the core the
   * same request. Arguments of the wrong type throw on both paths (the error's code can differ:
   * PHANTOM_EDGE_INVALID_ARG here, napi-rs's conversion codes there).
   */
  decide(id, method, scheme, authority, path, headers, clientCertThumbprint, now) {
    if (clientCertThumbprint == null && Array.isArray(headers) && headers.length <= 1) {
      if (headers.length === 0) return this._decideBearer(id, method, scheme, authority, path, null, now)
      const h = headers[0]
      if (Array.isArray(h) && h.length === 2 && typeof h[1] === 'string' &&
          (h[0] === 'authorization' || (typeof h[0] === 'string' && h[0].toLowerCase() === 'authorization'))) {
        return this._decideBearer(id, method, scheme, authority, path, h[1], now)
      }
    }
    return super.decide(id, method, scheme, authority, path, headers, clientCertThumbprint, now)
  }
}

// Every method that can throw: rethrow typed errors. (handleRequest and decide, the hot path, stay
// native: they throw only for invalid arguments, with code PHANTOM_EDGE_INVALID_ARG.)
for (const name of [
  'handleIntrospectionResponse',
  'handleIntrospectionFailure',
  'handleJwks',
  'handleJwksFailure',
  'handleSharedLookup',
  'handleSecurityEvent',
  'handleAdminRevocation',
  'handleTimeout',
  'muteAudits',
  'setAuditLevel',
]) {
  const base = native.Edge.prototype[name]
  Object.defineProperty(Edge.prototype, name, {
    value: function (...args) {
      try {
        return base.apply(this, args)
      } catch (e) {
        throw translate(e)
      }
    },
    writable: true,
    configurable: true,
  })
}

// handleRevocation also takes the selector as an object.
const baseRevocation = native.Edge.prototype.handleRevocation
Object.defineProperty(Edge.prototype, 'handleRevocation', {
  value: function (selector, origin, now) {
    const body = selector !== null && typeof selector === 'object' && !Buffer.isBuffer(selector)
      ? JSON.stringify(selector)
      : selector
    try {
      return baseRevocation.call(this, body, origin, now)
    } catch (e) {
      throw translate(e)
    }
  },
  writable: true,
  configurable: true,
})

module.exports = { Edge }
