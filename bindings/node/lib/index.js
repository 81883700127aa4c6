'use strict'
// phantom-edge: the phantom-edge core for Node. Every decision is the core's (Rust, napi-rs);
// this package translates types and does the I/O.
const native = require('./native.js')
const errors = require('./errors.js')
const { loadConfig } = require('./config.js')
const { Edge } = require('./edge.js')
const { PhantomEdge, auditJson } = require('./client.js')

module.exports = {
  Config: native.Config,
  Edge,
  PhantomEdge,
  loadConfig,
  auditJson,
  hopByHopHeaders: native.hopByHopHeaders,
  MAX_ADMIN_BODY: native.MAX_ADMIN_BODY,
  redactQueryTokens: native.redactQueryTokens,
  splitJwt: native.splitJwt,
  PhantomEdgeError: errors.PhantomEdgeError,
  ConfigError: errors.ConfigError,
  RevocationError: errors.RevocationError,
  EdgeError: errors.EdgeError,
  InvalidArgumentError: errors.InvalidArgumentError,
}
