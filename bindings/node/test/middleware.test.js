'use strict'
// The Express middleware and the Fastify plugin without an authorization server (in-process fake
// fetch): revocation route behind a body parser, [middleware] paths, disabled routes, 405s.
const test = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const Fastify = require('fastify')
const { phantomToken } = require('phantom-edge/express')
const phantomEdge = require('phantom-edge/fastify')
const { EDGE_KEY, ADMIN_TOKEN } = require('./support.js')

const ISSUER = 'https://as.example'
const config = (middleware) => ({
  authorization_server: { issuer: ISSUER, introspection_endpoint: `${ISSUER}/introspect`, client_id: 'gateway', client_secret: 'gateway-secret', dialect: 'rfc7662' },
  assertions: { signing_key: EDGE_KEY, kid: 'edge-1' },
  admin: { token: ADMIN_TOKEN },
  routes: [{ path_prefix: '/orders', required_scopes: ['orders:read'], audience: 'orders-api' }],
  ...(middleware ? { middleware } : {}),
})
const fakeFetch = async () => new Response(JSON.stringify({ active: true, scope: 'orders:read', aud: 'orders-api', client_id: 'app', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600, iss: ISSUER }), { status: 200, headers: { 'content-type': 'application/json' } })

async function listen(app) {
  const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)) } }
}

const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }

test('express: revocation route behind express.json() keeping the raw body, paths from [middleware], "" disables metrics', async () => {
  const app = express()
  app.use(express.json({ verify: (req, res, buf) => { req.rawBody = buf } }))
  const mw = phantomToken(config({ revocation_path: '/admin/revoke', metrics_path: '' }), { fetch: fakeFetch })
  app.use(mw)
  app.get('/orders/:id', (req, res) => res.json({ sub: req.phantomEdge.sub }))
  app.get('/_phantom/metrics', (req, res) => res.status(418).end())
  const s = await listen(app)
  try {
    assert.equal(mw.revocationPath, '/admin/revoke')
    assert.equal(mw.metricsPath, '')
    const ok = await fetch(`${s.url}/orders/1`, { headers: { authorization: 'Bearer tok-a' } })
    assert.deepEqual(await ok.json(), { sub: 'alice' })
    assert.equal((await fetch(`${s.url}/admin/revoke`)).status, 405)
    const r = await fetch(`${s.url}/admin/revoke`, { method: 'POST', headers: admin, body: JSON.stringify({ sub: 'alice' }) })
    assert.equal(r.status, 204)
    assert.equal((await fetch(`${s.url}/orders/1`, { headers: { authorization: 'Bearer tok-a' } })).status, 401)
    const bad = await fetch(`${s.url}/admin/revoke`, { method: 'POST', headers: admin, body: '{"sub": 1}' })
    assert.equal(bad.status, 400)
    // metrics disabled: not served by the middleware; the edge decides it like any other request
    // (no [[routes]] prefix matches: 404), so the app's own handler (418) is not reached either.
    const m = await fetch(`${s.url}/_phantom/metrics`)
    assert.equal(m.status, 404)
    assert.doesNotMatch(await m.text(), /phantom_edge_requests_total/)
  } finally {
    await s.close()
    await mw.close()
  }
})

test('fastify: routes with config.phantomEdge = false skip the hook; revocation takes raw bodies', async () => {
  const app = Fastify()
  await app.register(phantomEdge, { config: config(), fetch: fakeFetch })
  app.get('/orders/:id', async (request) => ({ sub: request.phantomEdge.sub, auth: request.headers.authorization.slice(0, 10) }))
  app.get('/healthz', { config: { phantomEdge: false } }, async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${app.server.address().port}`
  try {
    // Fastify's logger is off: no audit actions are built (the hit takes the one-call path).
    assert.equal(app.phantomEdge.edge.auditActions, false)
    assert.deepEqual(await (await fetch(`${url}/orders/1`, { headers: { authorization: 'Bearer tok-b' } })).json(), { sub: 'alice', auth: 'Bearer eyJ' })
    assert.equal(await (await fetch(`${url}/healthz`)).text(), 'ok')
    assert.equal((await fetch(`${url}/orders/1`)).status, 401)
    const set = await fetch(`${url}/_phantom/revocations`, { method: 'POST', headers: { 'content-type': 'application/secevent+jwt' }, body: 'not.a.jwt' })
    assert.equal(set.status, 401) // no revocation.set_key configured: SETs are refused
    const r = await fetch(`${url}/_phantom/revocations`, { method: 'POST', headers: admin, body: JSON.stringify({ client_id: 'app' }) })
    assert.equal(r.status, 204)
    assert.equal((await fetch(`${url}/orders/1`, { headers: { authorization: 'Bearer tok-b' } })).status, 401)
    assert.equal((await fetch(`${url}/_phantom/metrics`)).status, 401) // [admin] configured
    const m = await fetch(`${url}/_phantom/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    assert.match(await m.text(), /phantom_edge_revocations_total 1/)
  } finally {
    await app.close()
  }
})

test('metrics without [admin]: 403 from Express and Fastify, whatever bearer is sent (fail closed)', async () => {
  const { admin: _, ...noAdmin } = config()
  const app = express()
  const mw = phantomToken(noAdmin, { fetch: fakeFetch })
  app.use(mw)
  const s = await listen(app)
  const f = Fastify()
  await f.register(phantomEdge, { config: noAdmin, fetch: fakeFetch })
  await f.listen({ port: 0, host: '127.0.0.1' })
  try {
    for (const url of [s.url, `http://127.0.0.1:${f.server.address().port}`]) {
      for (const headers of [{}, { authorization: `Bearer ${ADMIN_TOKEN}` }]) {
        const m = await fetch(`${url}/_phantom/metrics`, { headers })
        assert.equal(m.status, 403, url)
        const body = await m.text()
        assert.doesNotMatch(body, /phantom_edge_/)
        assert.match(JSON.parse(body).error_description, /\[admin\]/)
      }
    }
  } finally {
    await s.close()
    await mw.close()
    await f.close()
  }
})

test('query tokens (request.allow_query_token): the handlers see neither the token nor access_token', async () => {
  const cfg = { ...config(), request: { allow_query_token: true } }
  const token = 'query-token-0123456789abcdef'
  const target = `/orders/9?x=1&access_token=${token}&y=2`

  const app = express()
  const mw = phantomToken(cfg, { fetch: fakeFetch })
  app.use(mw)
  app.get('/orders/:id', (req, res) => res.json({ url: req.url, originalUrl: req.originalUrl, query: req.query, authorization: req.headers.authorization }))
  const s = await listen(app)
  const f = Fastify()
  await f.register(phantomEdge, { config: cfg, fetch: fakeFetch })
  f.get('/orders/:id', async (request) => ({ url: request.url, raw: request.raw.url, query: request.query, authorization: request.headers.authorization }))
  await f.listen({ port: 0, host: '127.0.0.1' })
  try {
    for (const base of [s.url, `http://127.0.0.1:${f.server.address().port}`]) {
      const r = await fetch(`${base}${target}`)
      const text = await r.text()
      assert.equal(r.status, 200, text)
      assert.ok(!text.includes(token), `${base}: the query token reached the handler`)
      assert.ok(!text.includes('access_token'), `${base}: access_token reached the handler`)
      const body = JSON.parse(text)
      assert.equal(body.url, '/orders/9?x=1&y=2')
      assert.deepEqual({ ...body.query }, { x: '1', y: '2' })
      assert.match(body.authorization, /^Bearer eyJ/)
    }
  } finally {
    await s.close()
    await mw.close()
    await f.close()
  }
})

// Raw request targets as a client wrote them (fetch() would resolve the dot segments first).
function rawGet(url, target, headers) {
  const http = require('node:http')
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method: 'GET', path: target, headers }, (res) => {
      let body = ''
      res.on('data', (c) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode, www: res.headers['www-authenticate'] || '', body }))
    })
    req.on('error', reject)
    req.end()
  })
}

test('express and fastify hand the core the raw path: one an upstream could resolve elsewhere is 400', async () => {
  const targets = ['/orders/../admin', '/orders/%2e%2e/admin', '/orders%2Fadmin', '//orders/1']
  const auth = { authorization: 'Bearer tok-raw' }
  const reached = []

  const app = express()
  const mw = phantomToken(config(), { fetch: fakeFetch })
  app.use(mw)
  app.use((req, res) => { reached.push(req.url); res.json({ ok: true }) })
  const s = await listen(app)
  try {
    assert.equal((await rawGet(s.url, '/orders/1', auth)).status, 200)
    for (const t of targets) {
      const r = await rawGet(s.url, t, auth)
      assert.equal(r.status, 400, `express ${t}`)
      assert.match(r.www, /error="invalid_request"/)
    }
  } finally {
    await s.close()
    await mw.close()
  }

  const f = Fastify()
  await f.register(phantomEdge, { config: config(), fetch: fakeFetch })
  f.get('/*', async (req) => { reached.push(req.url); return { ok: true } })
  await f.listen({ port: 0, host: '127.0.0.1' })
  try {
    const url = `http://127.0.0.1:${f.server.address().port}`
    assert.equal((await rawGet(url, '/orders/1', auth)).status, 200)
    for (const t of targets) {
      const r = await rawGet(url, t, auth)
      assert.equal(r.status, 400, `fastify ${t}`)
      assert.match(r.www, /error="invalid_request"/)
    }
  } finally {
    await f.close()
  }
  assert.deepEqual(reached, ['/orders/1', '/orders/1'])
})

test('express authorizes the path it routes on: a rewrite before the middleware cannot change the route', async () => {
  const cfg = {
    ...config(),
    routes: [
      { path_prefix: '/orders', required_scopes: ['orders:read'], audience: 'orders-api' },
      { path_prefix: '/admin', required_scopes: ['admin'], audience: 'orders-api' },
    ],
  }
  const app = express()
  // A legacy-prefix rewrite, as url-rewrite middleware do: /orders/legacy/x is served by /admin/x.
  app.use((req, res, next) => {
    if (req.url.startsWith('/orders/legacy/')) req.url = '/admin/' + req.url.slice('/orders/legacy/'.length)
    next()
  })
  const mw = phantomToken(cfg, { fetch: fakeFetch })
  app.use(mw)
  app.get('/admin/:x', (req, res) => res.json({ route: 'admin' }))
  app.get('/orders/:id', (req, res) => res.json({ route: 'orders' }))
  // In a router mounted at /orders, req.url is relative ("/1"): the core must still see the
  // full path ("/orders/1" -> the /orders route), not "/1" (no route: 404).
  const app2 = express()
  const sub = express.Router()
  const mounted = phantomToken(cfg, { fetch: fakeFetch })
  sub.use(mounted)
  sub.get('/:id', (req, res) => res.json({ route: 'mounted-orders' }))
  app2.use('/orders', sub)
  const s = await listen(app)
  const s2 = await listen(app2)
  try {
    const headers = { authorization: 'Bearer orders-only' }
    const r = await fetch(`${s.url}/orders/legacy/users`, { headers })
    assert.equal(r.status, 403, 'a token with orders:read only reached the /admin handler')
    assert.equal((await fetch(`${s.url}/orders/1`, { headers })).status, 200)
    const m = await fetch(`${s2.url}/orders/1`, { headers })
    assert.deepEqual([m.status, await m.json()], [200, { route: 'mounted-orders' }])
  } finally {
    await s.close()
    await s2.close()
    await mw.close()
    await mounted.close()
  }
})

test('every header view is rewritten: headersDistinct read before the middleware no longer holds the token', async () => {
  const cfg = { ...config(), upstream: { strip_headers: ['cookie'] } }
  const app = express()
  app.use((req, res, next) => { void req.headersDistinct; next() }) // e.g. a tracing middleware
  const mw = phantomToken(cfg, { fetch: fakeFetch })
  app.use(mw)
  app.get('/orders/:id', (req, res) => res.json({ distinct: req.headersDistinct, raw: req.rawHeaders }))
  const s = await listen(app)
  const f = Fastify()
  f.addHook('onRequest', async (request) => { void request.raw.headersDistinct })
  await f.register(phantomEdge, { config: cfg, fetch: fakeFetch })
  f.get('/orders/:id', async (request) => ({ distinct: request.raw.headersDistinct, raw: request.raw.rawHeaders }))
  await f.listen({ port: 0, host: '127.0.0.1' })
  try {
    for (const base of [s.url, `http://127.0.0.1:${f.server.address().port}`]) {
      const r = await fetch(`${base}/orders/1`, { headers: { authorization: 'Bearer OPAQUE-SECRET-1', cookie: 'a=b', 'x-keep': 'yes' } })
      const text = await r.text()
      assert.equal(r.status, 200, text)
      assert.ok(!text.includes('OPAQUE-SECRET-1'), `${base}: the opaque token reached the handler: ${text}`)
      const body = JSON.parse(text)
      assert.equal(body.distinct.authorization.length, 1)
      assert.match(body.distinct.authorization[0], /^Bearer eyJ/)
      assert.equal(body.distinct.cookie, undefined)
      assert.deepEqual(body.distinct['x-keep'], ['yes'])
    }
  } finally {
    await s.close()
    await mw.close()
    await f.close()
  }
})

test('fastify refuses query tokens while its request logging would write them', async () => {
  const cfg = { ...config(), request: { allow_query_token: true } }
  const logged = Fastify({ logger: { level: 'info', stream: { write() {} } } })
  await assert.rejects(logged.register(phantomEdge, { config: cfg, fetch: fakeFetch }).ready(),
    (e) => e.code === 'PHANTOM_EDGE_CONFIG' && e.field === 'request.allow_query_token')
  await logged.close()
  const quiet = Fastify({ logger: { level: 'info', stream: { write() {} } }, disableRequestLogging: true })
  await quiet.register(phantomEdge, { config: cfg, fetch: fakeFetch })
  await quiet.ready()
  await quiet.close()
})

test('certificate-bound tokens: the self-signed client certificate the TLS handshake proved is the one compared (RFC 8705 §2.2)', async () => {
  const fs = require('node:fs')
  const https = require('node:https')
  const crypto = require('node:crypto')
  const path = require('node:path')
  const keys = path.resolve(__dirname, '../../../tests/vectors/keys')
  const server = fs.readFileSync(path.join(keys, 'tls-server.pem'), 'utf8')
  const client = fs.readFileSync(path.join(keys, 'tls-client.pem'), 'utf8')
  const der = new crypto.X509Certificate(client).raw
  const thumb = crypto.createHash('sha256').update(der).digest('base64url')
  const bound = async () => new Response(JSON.stringify({
    active: true, scope: 'orders:read', aud: 'orders-api', client_id: 'app', sub: 'alice',
    exp: Math.floor(Date.now() / 1000) + 600, iss: ISSUER, cnf: { 'x5t#S256': thumb },
  }), { status: 200, headers: { 'content-type': 'application/json' } })
  const app = express()
  const mw = phantomToken(config(), { fetch: bound })
  app.use(mw)
  app.get('/orders/:id', (req, res) => res.json({ sub: req.phantomEdge.sub }))
  // Client certificates requested, none required to chain to a CA (self-signed binding).
  const tls = https.createServer({ key: server, cert: server, requestCert: true, rejectUnauthorized: false }, app)
  await new Promise((resolve) => tls.listen(0, '127.0.0.1', resolve))
  const get = (opts) => new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: tls.address().port, path: '/orders/1', ca: server, servername: 'localhost',
      headers: { authorization: 'Bearer bound-token' }, agent: false, ...opts }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)) })
    req.on('error', reject)
    req.end()
  })
  try {
    assert.equal(await get({ key: client, cert: client }), 200)
    assert.equal(await get({}), 401, 'no certificate: sender mismatch')
    assert.equal(await get({ key: server, cert: server }), 401, 'another certificate: sender mismatch')
  } finally {
    tls.closeAllConnections()
    await new Promise((resolve) => tls.close(resolve))
    await mw.close()
  }
})

test('redactQueryTokens is the core\'s (CJS and ESM)', async () => {
  const { redactQueryTokens } = require('phantom-edge')
  const esm = await import('phantom-edge')
  assert.equal(esm.redactQueryTokens, redactQueryTokens)
  assert.equal(redactQueryTokens('/orders/1?x=1'), null)
  assert.equal(redactQueryTokens('/orders/1'), null)
  assert.equal(redactQueryTokens('/o?x=1&access_token=t&y=2'), '/o?x=1&y=2')
  for (const spelt of ['access%5Ftoken', 'ACCESS_TOKEN', 'access.token', 'access_token[]']) {
    assert.equal(redactQueryTokens(`/o?${spelt}=t`), '/o', spelt)
  }
  assert.equal(redactQueryTokens('/o?x=1;access_token=t&y=2'), '/o?y=2')
})

test('query tokens: a rejected (or failed) request leaves no token in the URL access loggers read', async () => {
  const cfg = { ...config(), request: { allow_query_token: true } }
  const token = 'query-token-rejected-0123456789'
  const targets = [`/orders/1?access_token=${token}`, `/orders/1?access%5Ftoken=${token}`, `/orders/1?ACCESS_TOKEN=${token}`,
    `/orders/1?x=1;access_token=${token}`, `/orders/1?access.token=${token}&y=2`]
  const inactive = async () => new Response('{"active":false}', { status: 200, headers: { 'content-type': 'application/json' } })
  const down = async () => { throw new Error('down') }
  const fails = (mw) => { mw.edge.authorizeParts = async () => { throw new Error('authorize failed') } }
  for (const [fetchImpl, patch] of [[inactive, null], [down, null], [fakeFetch, fails]]) {
    const logged = []
    const app = express()
    // An access logger before the edge, as morgan is mounted: it reads req.originalUrl at the end.
    app.use((req, res, next) => { res.on('finish', () => logged.push(`express ${res.statusCode} ${req.originalUrl} ${req.url}`)); next() })
    const mw = phantomToken(cfg, { fetch: fetchImpl })
    if (patch) patch(mw)
    app.use(mw)
    app.get('/orders/:id', (req, res) => res.json({}))
    app.use((err, req, res, next) => res.status(500).end()) // eslint-disable-line no-unused-vars
    const s = await listen(app)
    const f = Fastify()
    await f.register(phantomEdge, { config: cfg, fetch: fetchImpl })
    if (patch) patch({ edge: f.phantomEdge })
    f.addHook('onResponse', async (request, reply) => { logged.push(`fastify ${reply.statusCode} ${request.raw.url} ${request.url}`) })
    f.get('/orders/:id', async () => ({}))
    await f.listen({ port: 0, host: '127.0.0.1' })
    try {
      for (const base of [s.url, `http://127.0.0.1:${f.server.address().port}`]) {
        for (const target of targets) {
          const r = await rawGet(base, target, {})
          assert.ok(r.status >= 400, `${target}: ${r.status}`)
        }
      }
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(logged.length, 2 * targets.length)
      for (const line of logged) assert.ok(!line.includes(token), `token in the access log: ${line}`)
    } finally {
      await s.close()
      await mw.close()
      await f.close()
    }
  }
})

test('express and fastify: "_" spellings of stripped and set headers do not reach the handlers', async () => {
  const cfg = { ...config(), upstream: { header: 'x-jwt-assertion', strip_headers: ['x-user-id'] } }
  const app = express()
  const mw = phantomToken(cfg, { fetch: fakeFetch })
  app.use(mw)
  // What an onward proxy (http-proxy-middleware) sends on: rawHeaders; and the other views.
  app.get('/orders/:id', (req, res) => res.json({ raw: req.rawHeaders, headers: req.headers, distinct: req.headersDistinct }))
  const s = await listen(app)
  const f = Fastify()
  await f.register(phantomEdge, { config: cfg, fetch: fakeFetch })
  f.get('/orders/:id', async (request) => ({ raw: request.raw.rawHeaders, headers: request.headers, distinct: request.raw.headersDistinct }))
  await f.listen({ port: 0, host: '127.0.0.1' })
  try {
    for (const base of [s.url, `http://127.0.0.1:${f.server.address().port}`]) {
      const r = await rawGet(base, '/orders/1', { authorization: 'Bearer tok-u', x_user_id: 'admin', X_Jwt_Assertion: 'forged', x_original_url: '/admin' })
      assert.equal(r.status, 200, r.body)
      const body = JSON.parse(r.body)
      // WSGI/CGI/Django read x_user_id as X-User-Id (core: header_name_as_read).
      const asRead = (names) => names.map((n) => n.toLowerCase().replace(/_/g, '-'))
      for (const names of [asRead(body.raw.filter((_, i) => i % 2 === 0)), asRead(Object.keys(body.headers)), asRead(Object.keys(body.distinct))]) {
        assert.equal(names.filter((n) => n === 'x-user-id').length, 0, `${base}: ${names}`)
        assert.equal(names.filter((n) => n === 'x-original-url').length, 0, `${base}: ${names}`)
        assert.equal(names.filter((n) => n === 'x-jwt-assertion').length, 1, `${base}: ${names}`)
      }
      assert.match(body.headers['x-jwt-assertion'], /eyJ/) // the edge's, not the forged one
    }
  } finally {
    await s.close()
    await mw.close()
    await f.close()
  }
})

test('express: the revocation route hands the core the body as sent; behind a parser without the raw body it is 400', async () => {
  const dup = '{"sub":"alice","sub":"bob"}'
  for (const parser of [null, express.json(), express.json({ verify: (req, res, buf) => { req.rawBody = buf } }), express.text({ type: '*/*' })]) {
    const app = express()
    if (parser) app.use(parser)
    const mw = phantomToken(config(), { fetch: fakeFetch })
    app.use(mw)
    const s = await listen(app)
    try {
      const r = await fetch(`${s.url}/_phantom/revocations`, { method: 'POST', headers: admin, body: dup })
      assert.equal(r.status, 400, `parser: ${parser && parser.name}`)
      assert.equal(typeof (await r.json()).error, 'string')
    } finally {
      await s.close()
      await mw.close()
    }
  }
  // Parsed, no raw body: refused with a message naming the cause (never re-serialized).
  const app = express()
  app.use(express.json())
  const mw = phantomToken(config(), { fetch: fakeFetch })
  app.use(mw)
  const s = await listen(app)
  try {
    const r = await fetch(`${s.url}/_phantom/revocations`, { method: 'POST', headers: admin, body: JSON.stringify({ sub: 'alice' }) })
    assert.equal(r.status, 400)
    assert.match((await r.json()).error_description, /before body parsers/)
  } finally {
    await s.close()
    await mw.close()
  }
})
