'use strict'
// Fastify plugin (an `onRequest` hook; registered without encapsulation, like fastify-plugin):
//
//   fastify.register(require('phantom-edge/fastify'), { config: 'phantom-edge.toml' })
//
// For each request the core decides. A forward rewrites `request.headers` (strips the listed
// headers, sets the upstream header) and puts the claims in `request.phantomEdge`; a reject is
// answered with the core's status, WWW-Authenticate and JSON body. It also serves the revocation
// route and metrics at the paths of the config's [middleware] section (`revocation_path`,
// `metrics_path`; "" disables a route), both answered whole by the core (`handleAdmin` on the
// app's listener: methods, body limit, the [admin] bearer token, status and headers). Audit events go to `fastify.log`
// (debug/info) when Fastify's logger is enabled, or to `logger`; never tokens. Routes with `config: { phantomEdge: false }`
// skip the hook (the plugin's own routes do).
const querystring = require('node:querystring')
const { PhantomEdge, certThumbprint, rewriteRequestHeaders } = require('./client.js')
const { loadConfig } = require('./config.js')
const { ConfigError } = require('./errors.js')
const { routePaths, redactRequestUrl } = require('./express.js')
const { MAX_ADMIN_BODY } = require('./native.js')

/** The body as sent, at most MAX_ADMIN_BODY + 1 bytes (the core answers a longer one 413). */
async function readAdminBody(payload) {
  const chunks = []
  let size = 0
  for await (const c of payload) {
    chunks.push(c)
    size += c.length
    if (size > MAX_ADMIN_BODY) break
  }
  return Buffer.concat(chunks, size).subarray(0, MAX_ADMIN_BODY + 1)
}

async function phantomEdge(fastify, opts = {}) {
  // Fastify's logger when it is enabled (pino has isLevelEnabled; the disabled stand-in has not).
  const fastifyLog = typeof fastify.log.isLevelEnabled === 'function' ? fastify.log : null
  const edge = opts.edge || new PhantomEdge(loadConfig(opts.config ?? 'phantom-edge.toml'), {
    ...opts,
    logger: opts.logger || fastifyLog,
  })
  const { revocationPath, metricsPath } = routePaths(edge.config, opts)
  // Fastify logs each request's URL before any hook runs: with tokens allowed in the query that
  // log line would carry them (invariant 1). Refused at start-up, not discovered in the logs.
  if (edge.config.allowQueryToken && fastifyLog !== null && !fastify.initialConfig.disableRequestLogging) {
    throw new ConfigError('request.allow_query_token',
      "Fastify's request logging would write query tokens to the log: create Fastify with disableRequestLogging: true (or without a logger)")
  }

  fastify.decorate('phantomEdge', edge)
  fastify.decorateRequest('phantomEdge', null)

  fastify.addHook('onRequest', async (request, reply) => {
    const routeConfig = request.routeOptions && request.routeOptions.config
    if (routeConfig && routeConfig.phantomEdge === false) return
    const raw = request.raw
    const reparseQuery = () => {
      const q = raw.url.indexOf('?')
      request.query = querystring.parse(q === -1 ? '' : raw.url.slice(q + 1))
    }
    // On a rejection, and if there was no decision: no query token stays in the URL and query
    // that onResponse hooks and error handlers read. (A forward's URL is its rewrittenPath
    // below: the core forwards no other spelling.)
    const redact = () => {
      if (edge.config.allowQueryToken && redactRequestUrl(raw)) reparseQuery()
    }
    let d
    try {
      d = await edge.authorizeParts(raw.method, request.protocol, raw.headers.host || 'localhost',
        raw.url, raw.rawHeaders, certThumbprint(raw))
    } catch (e) {
      redact()
      throw e
    }
    if (d.type !== 'forward') {
      redact()
      reply.code(d.status).header('content-type', 'application/json')
      if (d.wwwAuthenticate) reply.header('www-authenticate', d.wwwAuthenticate)
      if (d.retryAfter != null) reply.header('retry-after', String(d.retryAfter))
      return reply.send(d.body)
    }
    rewriteRequestHeaders(edge, d, raw, request.headers)
    if (d.rewrittenPath != null) {
      // The token came in the query (request.allow_query_token): the handlers see the URL and
      // the query without it. (Fastify logs the incoming URL before any hook: the plugin refuses
      // to start with query tokens while that request logging is on.)
      raw.url = d.rewrittenPath
      if (raw.originalUrl !== undefined) raw.originalUrl = d.rewrittenPath
      reparseQuery()
    }
    request.phantomEdge = d.token
  })

  if (revocationPath || metricsPath) {
    fastify.register(async function phantomEdgeRoutes(child) {
      child.removeAllContentTypeParsers()
      child.addContentTypeParser('*', (request, payload, done) => {
        readAdminBody(payload).then((body) => done(null, body), done)
      })
      const config = { phantomEdge: false }
      const route = (name) => async (request, reply) => {
        const body = Buffer.isBuffer(request.body) ? request.body : undefined
        const { authorization = null, 'content-type': contentType = null } = request.headers
        const a = edge.admin({ route: name, method: request.raw.method, authorization, contentType, body })
        return reply.code(a.status).headers(Object.fromEntries(a.headers)).send(a.body)
      }
      if (revocationPath) child.all(revocationPath, { config }, route('revocations'))
      if (metricsPath) child.all(metricsPath, { config }, route('metrics'))
    })
  }

  fastify.addHook('onClose', async () => {
    if (!opts.edge) await edge.close()
  })
}

// fastify-plugin semantics without the dependency: no encapsulation, so the hook applies to the
// routes of the registering context.
phantomEdge[Symbol.for('skip-override')] = true
phantomEdge[Symbol.for('fastify.display-name')] = 'phantom-edge'
phantomEdge[Symbol.for('plugin-meta')] = { name: 'phantom-edge', fastify: '>=4' }

module.exports = phantomEdge
module.exports.default = phantomEdge
module.exports.phantomEdge = phantomEdge
