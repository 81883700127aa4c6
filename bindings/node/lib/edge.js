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
