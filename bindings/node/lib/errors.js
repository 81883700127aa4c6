'use strict'
// Typed errors. The native module throws plain Errors whose `code` starts with PHANTOM_EDGE_ and
// whose message is JSON with the fields; `translate` turns them into these classes.

class PhantomEdgeError extends Error {
  constructor(message, code = 'PHANTOM_EDGE_ERROR', options) {
    super(message, options)
    this.name = 'PhantomEdgeError'
    this.code = code
  }
}

/** The configuration was refused: `field` names the key (e.g. `authorization_server.issuer`). */
class ConfigError extends PhantomEdgeError {
  constructor(field, message, options) {
    super(`invalid config: ${field}: ${message}`, 'PHANTOM_EDGE_CONFIG', options)
    this.name = 'ConfigError'
    this.field = field
    this.detail = message
  }
}

/** A revocation was refused: answer `status` (400/401) with `body` (JSON). */
class RevocationError extends PhantomEdgeError {
  constructor(status, body, message, options) {
    super(message || `revocation refused (${status})`, 'PHANTOM_EDGE_REVOCATION', options)
    this.name = 'RevocationError'
    this.status = status
    this.body = body
    let field = null
    try {
      const parsed = JSON.parse(body)
      field = typeof parsed.error === 'string' ? parsed.error : null
    } catch {}
    /** The `error` member of the body (`invalid_request`, `invalid_token`, ...). */
    this.field = field
  }
}

/** API misuse: an answer for a ticket the core never issued (or that already timed out). */
class EdgeError extends PhantomEdgeError {
  constructor(code, ticket, message, options) {
    super(message, code, options)
    this.name = 'EdgeError'
    this.ticket = ticket
    /** `unknown_ticket` or `wrong_ticket_kind`. */
    this.kind = code === 'PHANTOM_EDGE_WRONG_TICKET_KIND' ? 'wrong_ticket_kind' : 'unknown_ticket'
    this.field = 'ticket'
  }
}

/** A bad argument to the native API (`field` names it). */
class InvalidArgumentError extends PhantomEdgeError {
  constructor(field, message, options) {
    super(`${field}: ${message}`, 'PHANTOM_EDGE_INVALID_ARG', options)
    this.name = 'InvalidArgumentError'
    this.field = field
  }
}

function translate(e) {
  if (!e || typeof e.code !== 'string' || !e.code.startsWith('PHANTOM_EDGE_') || e instanceof PhantomEdgeError) {
    return e
  }
  let p
  try {
    p = JSON.parse(e.message)
  } catch {
    return new PhantomEdgeError(e.message, e.code, { cause: e })
  }
  switch (e.code) {
    case 'PHANTOM_EDGE_CONFIG':
      return new ConfigError(p.field, p.message)
    case 'PHANTOM_EDGE_REVOCATION':
      return new RevocationError(p.status, p.body, p.message)
    case 'PHANTOM_EDGE_UNKNOWN_TICKET':
    case 'PHANTOM_EDGE_WRONG_TICKET_KIND':
      return new EdgeError(e.code, p.ticket, p.message)
    case 'PHANTOM_EDGE_INVALID_ARG':
      return new InvalidArgumentError(p.field, p.message)
    default:
      return new PhantomEdgeError(p.message || e.message, e.code)
  }
}

module.exports = { PhantomEdgeError, ConfigError, RevocationError, EdgeError, InvalidArgumentError, translate }
