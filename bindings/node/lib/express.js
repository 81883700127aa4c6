'use strict'
// Express (and plain node:http / Connect) middleware:
//
//   const { phantomToken } = require('phantom-edge/express')
//   app.use(phantomToken('phantom-edge.toml'))
//
// For each request the core decides. A forward rewrites the headers the handlers see (strips the
// listed ones, sets the upstream header; `req.headers`, `req.rawHeaders`, `req.headersDistinct`) and puts the claims in
// `req.phantomEdge`; a reject is answered with the core's status, WWW-Authenticate and JSON body.
// It also serves the revocation route (default /_phantom/revocations) and metrics (default
// /_phantom/metrics), both answered whole by the core (`handleAdmin` on the app's listener:
// methods, body limit, the [admin] bearer token, status and headers); both paths come from the
// config's [middleware] section (`revocation_path`, `metrics_path`; "" disables a route). Logs
// carry audit events, never tokens.
const { PhantomEdge, certThumbprint, rewriteRequestHeaders } = require('./client.js')
const { redactQueryTokens, MAX_ADMIN_BODY } = require('./native.js')
const { loadConfig, middlewareSection } = require('./config.js')

const DEFAULT_REVOCATION_PATH = '/_phantom/revocations'
const DEFAULT_METRICS_PATH = '/_phantom/metrics'

function routePaths(config, options) {
  const section = middlewareSection(config)
  const pick = (opt, key, dflt) => {
    if (opt !== undefined && opt !== null) return opt
    return typeof section[key] === 'string' ? section[key] : dflt
  }
  return {
    revocationPath: pick(options.revocationPath, 'revocation_path', DEFAULT_REVOCATION_PATH),
    metricsPath: pick(options.metricsPath, 'metrics_path', DEFAULT_METRICS_PATH),
  }
}

function pathOf(url) {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

function send(res, status, body, headers) {
  res.statusCode = status
  for (const [n, v] of Object.entries(headers)) res.setHeader(n, v)
  res.setHeader('content-length', Buffer.byteLength(body))
  res.end(body)
}

/** Writes the core's answer to an operator route out as it is. */
function sendAnswer(res, answer) {
  send(res, answer.status, answer.body, Object.fromEntries(answer.headers))
}

/**
 * Removes from `req.url` and `req.originalUrl` (`raw.url` for Fastify) every query parameter
 * the core reads as access_token, in any spelling it takes or refuses (the core's
 * `redactQueryTokens`): with `request.allow_query_token`, on every decision and failure.
 * Returns whether `req.url` changed.
 */
function redactRequestUrl(req) {
  let changed = false
  if (typeof req.url === 'string') {
    const url = redactQueryTokens(req.url)
    if (url !== null) {
      req.url = url
      changed = true
    }
  }
  if (typeof req.originalUrl === 'string') {
    const url = redactQueryTokens(req.originalUrl)
    if (url !== null) req.originalUrl = url
  }
  return changed
}

function schemeOf(req) {
  if (typeof req.protocol === 'string') return req.protocol // Express (honours `trust proxy`)
  return req.socket && req.socket.encrypted ? 'https' : 'http'
}

/** The answer when a body parser before the middleware left only a parsed body. */
const PARSED_BODY = JSON.stringify({
  error: 'invalid_request',
  error_description: 'the revocation route must be mounted before body parsers (or the parser must keep req.rawBody): the core reads the body as sent',
})

function readBody(req) {
  // The body as sent: a parser that kept it (`verify` storing req.rawBody), or a raw/text one.
  if (Buffer.isBuffer(req.rawBody)) return Promise.resolve(req.rawBody)
  if (typeof req.rawBody === 'string') return Promise.resolve(Buffer.from(req.rawBody))
  if (Buffer.isBuffer(req.body)) return Promise.resolve(req.body)
  if (typeof req.body === 'string') return Promise.resolve(Buffer.from(req.body))
  if (req.body !== null && typeof req.body === 'object' && (req._body || req.readableEnded)) {
    // Parsed by a body parser (express.json()): re-serializing it would hide what the core
    // refuses in the text (duplicate members, ...). (Express 4 sets `{}` without reading a
    // body of another type: that stream is still read below.)
    return Promise.reject(Object.assign(new Error('body already parsed'), { status: 400, body: PARSED_BODY }))
  }
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0)) // consumed by someone else
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    // At most MAX_ADMIN_BODY + 1 bytes: the core answers a longer body 413.
    const onData = (c) => {
      chunks.push(c)
      size += c.length
      if (size > MAX_ADMIN_BODY) {
        req.off('data', onData)
        req.resume() // the rest is discarded
        resolve(Buffer.concat(chunks, size).subarray(0, MAX_ADMIN_BODY + 1))
      }
    }
    req.on('data', onData)
    req.on('end', () => resolve(Buffer.concat(chunks, size)))
    req.on('error', reject)
  })
}

/**
 * The middleware. `config`: a TOML path, TOML text, an object of the same shape or a Config.
 * `options`: `fetch`, `seed`, `logger` (`{debug, info}`), `sharedLookup`, `onPublish`,
 * `revocationPath`, `metricsPath` (override the [middleware] section), or `edge` (a PhantomEdge to
 * share). The returned function has `.edge` (the PhantomEdge) and `.close()`.
 */
function phantomToken(config = 'phantom-edge.toml', options = {}) {
  const edge = options.edge || new PhantomEdge(loadConfig(config), options)
  const { revocationPath, metricsPath } = routePaths(edge.config, options)

  /** An operator route: the core answers it whole (app listener). */
  async function admin(route, req, res) {
    let body
    try {
      body = route === 'revocations' ? await readBody(req) : undefined
    } catch (e) {
      if (e.body) return send(res, 400, e.body, { 'content-type': 'application/json' })
      throw e
    }
    const { authorization = null, 'content-type': contentType = null } = req.headers
    sendAnswer(res, edge.admin({ route, method: req.method, authorization, contentType, body }))
  }

  const middleware = function phantomEdgeMiddleware(req, res, next) {
    // The path Express routes on from here: the mount point plus req.url (which a rewriting
    // middleware before this one may have changed; originalUrl keeps the URL as received).
    const url = typeof req.url === 'string' ? (typeof req.baseUrl === 'string' ? req.baseUrl : '') + req.url : req.originalUrl
    const path = pathOf(url)
    const route = (revocationPath && path === revocationPath && 'revocations') || (metricsPath && path === metricsPath && 'metrics')
    if (route) {
      admin(route, req, res).catch(next)
      return
    }
    const authority = req.headers.host || 'localhost'
    let decided
    try {
      decided = edge.authorizeParts(req.method, schemeOf(req), authority, url, req.rawHeaders || req.headers, certThumbprint(req))
    } catch (e) {
      decided = Promise.reject(e)
    }
    decided
      .then((d) => {
        if (d.type !== 'forward') {
          // Access loggers (morgan) read the URL once answered: no query token stays in it.
          // (A forward's URL is its rewrittenPath below: the core forwards no other spelling.)
          if (edge.config.allowQueryToken) redactRequestUrl(req)
          const headers = { 'content-type': 'application/json' }
          if (d.wwwAuthenticate) headers['www-authenticate'] = d.wwwAuthenticate
          if (d.retryAfter != null) headers['retry-after'] = String(d.retryAfter)
          send(res, d.status, d.body, headers)
          return
        }
        rewriteRequestHeaders(edge, d, req)
        if (d.rewrittenPath != null) {
          // The token came in the query (request.allow_query_token): the handlers see the URL
          // without it (req.url relative to the mount point, as Express has it).
          const base = typeof req.baseUrl === 'string' ? req.baseUrl : ''
          req.url = base && d.rewrittenPath.startsWith(base) ? d.rewrittenPath.slice(base.length) || '/' : d.rewrittenPath
          if (req.originalUrl !== undefined) req.originalUrl = d.rewrittenPath
        }
        req.phantomEdge = d.token
        next()
      }, (e) => {
        if (edge.config.allowQueryToken) redactRequestUrl(req)
        next(e)
      })
  }
  middleware.edge = edge
  middleware.revocationPath = revocationPath
  middleware.metricsPath = metricsPath
  middleware.close = () => edge.close()
  return middleware
}

module.exports = { phantomToken, routePaths, redactRequestUrl, sendAnswer, DEFAULT_REVOCATION_PATH, DEFAULT_METRICS_PATH }
