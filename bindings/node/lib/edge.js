'use strict'
// The core's host-driver API: the native Edge, with config loading, a random seed by default
// and typed errors. Every input (`handle*`) returns the Step it produced.
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
    // The same steps as the native handleRequest for the common request shape (see below).
    Object.defineProperty(this, '_bearerRequest', { value: super.bearerRequest() })
  }

  /**
   * A client request arrived: its Step (see index.d.ts). A request with one `Authorization`
   * value or none, no `DPoP` and no client certificate goes through `bearerRequest()`'s function
   * (a plain N-API call), every other one through the native method; both hand the core the
   * same request. Arguments of the wrong type throw on both paths (the error's code can differ:
   * PHANTOM_EDGE_INVALID_ARG here, napi-rs's conversion codes there).
   */
  handleRequest(id, method, scheme, authority, path, authorization, dpop, clientCertThumbprint, now) {
    if (clientCertThumbprint == null && (dpop == null || (Array.isArray(dpop) && dpop.length === 0))) {
      if (authorization == null || typeof authorization === 'string') {
        return this._bearerRequest(id, method, scheme, authority, path, authorization, now)
      }
      if (Array.isArray(authorization) && authorization.length <= 1 &&
          (authorization.length === 0 || typeof authorization[0] === 'string')) {
        return this._bearerRequest(id, method, scheme, authority, path, authorization[0], now)
      }
    }
    return super.handleRequest(id, method, scheme, authority, path, authorization, dpop, clientCertThumbprint, now)
  }
}

// Every method that can throw: rethrow typed errors. (handleRequest, the hot path, stays
// native: it throws only for invalid arguments, with code PHANTOM_EDGE_INVALID_ARG.)
for (const name of [
  'initialStep',
  'handleFetch',
  'handleSharedLookup',
  'handleSecurityEvent',
  'handleAdmin',
  'handleTimeout',
  'upstreamHeaders',
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

// handleAdmin also takes null for an absent authorization, content type or body.
const baseAdmin = Edge.prototype.handleAdmin
Object.defineProperty(Edge.prototype, 'handleAdmin', {
  value: function (request, now) {
    const { authorization, contentType, body } = request
    return baseAdmin.call(this, { ...request, authorization: authorization ?? undefined,
      contentType: contentType ?? undefined, body: body ?? undefined }, now)
  },
  writable: true,
  configurable: true,
})

// upstreamHeaders also takes null for a proxy hop's absent peer or upstream authority.
const baseUpstream = Edge.prototype.upstreamHeaders
Object.defineProperty(Edge.prototype, 'upstreamHeaders', {
  value: function (inbound, headerValue, hop) {
    const h = hop !== null && typeof hop === 'object'
      ? { ...hop, peer: hop.peer ?? undefined, upstreamAuthority: hop.upstreamAuthority ?? undefined }
      : hop
    return baseUpstream.call(this, inbound, headerValue, h)
  },
  writable: true,
  configurable: true,
})

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
