'use strict'
// Express (and plain node:http / Connect) middleware:
//
//   const { phantomToken } = require('phantom-edge/express')
//   app.use(phantomToken('phantom-edge.toml'))
//
// For each request the core decides. A forward rewrites the headers the handlers see (strips the
// listed ones, sets the upstream header; `req.headers`, `req.rawHeaders`, `req.headersDistinct`) and puts the claims in
// `req.phantomEdge`; a reject is answered with the core's status, WWW-Authenticate and JSON body.
// It also serves the revocation route (POST, default /_phantom/revocations) and metrics (GET,
// default /_phantom/metrics; the [admin] bearer token only, 403 without [admin]); both
// paths come from the config's [middleware] section
// (`revocation_path`, `metrics_path`; "" disables a route). Logs carry audit events, never tokens.
const { PhantomEdge, certThumbprint, coreHeaders, rewriteRequestHeaders } = require('./client.js')
const { redactQueryTokens } = require('./native.js')
const { loadConfig, middlewareSection } = require('./config.js')

const DEFAULT_REVOCATION_PATH = '/_phantom/revocations'
const DEFAULT_METRICS_PATH = '/_phantom/metrics'
const MAX_REVOCATION_BODY = 64 * 1024

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

/** The challenge of a metrics request without the [admin] bearer token. */
const METRICS_CHALLENGE = 'Bearer realm="phantom-edge metrics"'
/** The answer of the metrics route when no [admin] token is configured. */
const NO_ADMIN = '{"error":"forbidden","error_description":"metrics need an [admin] token in the configuration"}'

/**
 * Whether `authorization` may read the metrics, for the Express and Fastify routes alike: only
 * the [admin] token's bearer (the app's listener may be public; the core checks it), and nobody
 * without [admin] (fail closed). `null` when allowed, else the answer `{ status, headers, body }`
 * (`body` undefined: none, and no content-type).
 */
function metricsRefusal(edge, authorization) {
  const authorized = edge.adminAuthorized(authorization)
  if (authorized == null) return { status: 403, headers: { 'content-type': 'application/json' }, body: NO_ADMIN }
  if (!authorized) return { status: 401, headers: { 'www-authenticate': METRICS_CHALLENGE }, body: undefined }
  return null
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
    req.on('data', (c) => {
      size += c.length
      if (size > MAX_REVOCATION_BODY) {
        reject(Object.assign(new Error('body too large'), { status: 413 }))
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
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

  async function revocation(req, res) {
    if (req.method !== 'POST') return send(res, 405, '', { allow: 'POST' })
    let body
    try {
      body = await readBody(req)
    } catch (e) {
      if (e.body) return send(res, 400, e.body, { 'content-type': 'application/json' })
      return send(res, e.status === 413 ? 413 : 400, '', {})
    }
    const r = await edge.revoke(req.headers['content-type'], req.headers.authorization, body)
    return send(res, r.status, r.body, r.body ? { 'content-type': 'application/json' } : {})
  }

  function metrics(req, res) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, '', { allow: 'GET' })
    const refusal = metricsRefusal(edge, req.headers.authorization)
    if (refusal) return send(res, refusal.status, refusal.body ?? '', refusal.headers)
    return send(res, 200, edge.metrics(), { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
  }

  const middleware = function phantomEdgeMiddleware(req, res, next) {
    // The path Express routes on from here: the mount point plus req.url (which a rewriting
    // middleware before this one may have changed; originalUrl keeps the URL as received).
    const url = typeof req.url === 'string' ? (typeof req.baseUrl === 'string' ? req.baseUrl : '') + req.url : req.originalUrl
    const path = pathOf(url)
    if (revocationPath && path === revocationPath) {
      revocation(req, res).catch(next)
      return
    }
    if (metricsPath && path === metricsPath) {
      metrics(req, res)
      return
    }
    const authority = req.headers.host || 'localhost'
    let decided
    try {
      decided = edge.authorizeParts(req.method, schemeOf(req), authority, url, coreHeaders(req.rawHeaders || req.headers), certThumbprint(req))
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
        rewriteRequestHeaders(d, req)
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

module.exports = { phantomToken, routePaths, metricsRefusal, redactRequestUrl, DEFAULT_REVOCATION_PATH, DEFAULT_METRICS_PATH, METRICS_CHALLENGE, NO_ADMIN }
