'use strict'
// End to end against the real oidc-provider authorization server, through both hosts: the Express
// middleware and the Fastify plugin, each in front of an echo handler, over real HTTP.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')

const { AuthServer, freePort, edgeConfig, countingFetch, logCapture, startExpress, startFastify, EDGE_KEY, ADMIN_TOKEN } = require('./support.js')

const EDGE_PUBLIC = crypto.createPublicKey(crypto.createPrivateKey(EDGE_KEY))

const bearer = (t) => ({ authorization: `Bearer ${t}` })
// A JWT-shaped token (header.payload.signature) that oidc-provider refuses to introspect.
const JWT_SHAPED = 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtYWxsb3J5IiwiZXhwIjo0MTAyNDQ0ODAwfQ.c2lnbmF0dXJlLW9mLW5vLWtleS1hdC1hbGw'

async function verifyJwt(value) {
  const { jwtVerify, decodeProtectedHeader } = await import('jose')
  assert.ok(value.startsWith('Bearer '), 'upstream authorization is a Bearer value')
  const jwt = value.slice(7)
  const { payload } = await jwtVerify(jwt, EDGE_PUBLIC, { audience: 'orders-api', issuer: 'phantom-edge', algorithms: ['EdDSA'] })
  return { payload, header: decodeProtectedHeader(jwt) }
}

const HOSTS = {
  express: (config, options, capture) => startExpress(config, { ...options, logger: capture?.logger }),
  fastify: (config, options, capture) => startFastify(config, options, capture),
}

let as
before(async () => {
  as = await AuthServer.start()
})
after(async () => {
  await as?.stop()
})

for (const [name, start] of Object.entries(HOSTS)) {
  describe(`e2e through ${name}`, () => {
    let app
    let counter
    let capture
    before(async () => {
      const f = countingFetch()
      counter = f.counter
      capture = logCapture()
      app = await start(edgeConfig(as.issuer), { fetch: f.fetch }, capture)
    })
    after(async () => {
      await app?.close()
    })

    it('valid token: the handler sees a JWT for orders-api with orders:read, never the opaque token', async () => {
      const token = await as.token()
      const r = await fetch(`${app.url}/orders/7`, { headers: bearer(token) })
      const text = await r.text()
      assert.equal(r.status, 200, text)
      assert.ok(!text.includes(token), 'the opaque token reached the handler')
      const body = JSON.parse(text)
      const { payload, header } = await verifyJwt(body.authorization)
      assert.equal(header.typ, 'at+jwt')
      assert.equal(payload.aud, 'orders-api')
      assert.equal(payload.scope, 'orders:read')
      assert.equal(payload.client_id, 'app')
      assert.equal(body.claims.clientId, 'app')
      assert.deepEqual(body.claims.scopes, ['orders:read'])
      assert.deepEqual(body.claims.aud, ['orders-api'])
      const auth = []
      for (let i = 0; i < body.rawHeaders.length; i += 2) {
        if (body.rawHeaders[i].toLowerCase() === 'authorization') auth.push(body.rawHeaders[i + 1])
      }
      assert.deepEqual(auth, [body.authorization], 'rawHeaders carry only the edge JWT')
    })

    it('missing token: 401 with a bare Bearer challenge', async () => {
      const r = await fetch(`${app.url}/orders/7`)
      assert.equal(r.status, 401)
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="phantom-edge"')
    })

    it('malformed Authorization: 400 invalid_request', async () => {
      const r = await fetch(`${app.url}/orders/7`, { headers: { authorization: 'Bearer a b c' } })
      assert.equal(r.status, 400)
      assert.match(r.headers.get('www-authenticate'), /error="invalid_request"/)
      assert.equal((await r.json()).error, 'invalid_request')
    })

    it('unknown token: 401 invalid_token', async () => {
      const r = await fetch(`${app.url}/orders/7`, { headers: bearer('x'.repeat(43)) })
      assert.equal(r.status, 401)
      assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/)
      assert.equal((await r.json()).error, 'invalid_token')
    })

    it('insufficient scope: 403 naming the scope', async () => {
      const token = await as.token('orders:read')
      const r = await fetch(`${app.url}/orders/write`, { headers: bearer(token) })
      assert.equal(r.status, 403)
      const challenge = r.headers.get('www-authenticate')
      assert.match(challenge, /error="insufficient_scope"/)
      assert.match(challenge, /scope="orders:write"/)
    })

    it('revoked at the AS, then pushed to the revocation route: 401', async () => {
      const token = await as.token()
      assert.equal((await fetch(`${app.url}/orders/1`, { headers: bearer(token) })).status, 200)
      await as.revoke(token)
      // Still cached at the edge until the revocation is pushed.
      assert.equal((await fetch(`${app.url}/orders/1`, { headers: bearer(token) })).status, 200)
      const bad = await fetch(`${app.url}/_phantom/revocations`, {
        method: 'POST',
        headers: { authorization: 'Bearer wrong-wrong-wrong-wrong', 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      })
      assert.equal(bad.status, 401)
      assert.equal((await fetch(`${app.url}/orders/1`, { headers: bearer(token) })).status, 200)
      const malformed = await fetch(`${app.url}/_phantom/revocations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: '{"nope": 1}',
      })
      assert.equal(malformed.status, 400)
      assert.equal((await malformed.json()).error, 'invalid_request')
      const ok = await fetch(`${app.url}/_phantom/revocations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      })
      assert.equal(ok.status, 204, await ok.text())
      const r = await fetch(`${app.url}/orders/1`, { headers: bearer(token) })
      assert.equal(r.status, 401)
      assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/)
    })

    it('metrics route serves Prometheus text to the [admin] bearer only', async () => {
      for (const headers of [{}, { authorization: 'Bearer wrong' }]) {
        const denied = await fetch(`${app.url}/_phantom/metrics`, { headers })
        assert.equal(denied.status, 401)
        assert.match(denied.headers.get('www-authenticate'), /^Bearer realm=/)
        assert.doesNotMatch(await denied.text(), /phantom_edge/)
      }
      const r = await fetch(`${app.url}/_phantom/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
      assert.equal(r.status, 200)
      assert.match(r.headers.get('content-type'), /^text\/plain/)
      assert.match(await r.text(), /^phantom_edge_requests_total \d+$/m)
    })

    it('100 concurrent requests with one new token: exactly one introspection', async () => {
      const token = await as.token()
      const before = counter.introspections
      const metricsBefore = app.edge.edge.metrics().introspections
      const rs = await Promise.all(Array.from({ length: 100 }, () => fetch(`${app.url}/orders/1`, { headers: bearer(token) })))
      assert.deepEqual(rs.map((r) => r.status), Array(100).fill(200))
      await Promise.all(rs.map((r) => r.arrayBuffer()))
      assert.equal(counter.introspections - before, 1, 'introspection calls made to the AS')
      assert.equal(app.edge.edge.metrics().introspections - metricsBefore, 1)
    })

    it('logs carry audit events and never a raw token', async () => {
      const token = await as.token('orders:read')
      const unknown = 'y'.repeat(43)
      await fetch(`${app.url}/orders/1`, { headers: bearer(token) })
      await fetch(`${app.url}/orders/1`, { headers: bearer(token) })
      await fetch(`${app.url}/orders/write`, { headers: bearer(token) })
      await fetch(`${app.url}/orders/1`, { headers: bearer(unknown) })
      await fetch(`${app.url}/_phantom/revocations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ token }),
      })
      await fetch(`${app.url}/orders/1`, { headers: bearer(token) })
      // pino (Fastify) writes JSON lines: the audit line is inside a string, with escaped quotes.
      const text = capture.text().replace(/\\"/g, '"')
      assert.equal(app.edge.edge.auditActions, true)
      assert.match(text, /phantom_edge audit \{/)
      assert.match(text, /"kind":"introspected"/)
      assert.match(text, /"kind":"revoked"/)
      assert.match(text, new RegExp(app.edge.fingerprint(token)))
      assert.ok(!text.includes(token), 'raw token in logs')
      assert.ok(!text.includes(unknown), 'raw unknown token in logs')
      assert.ok(!text.includes(Buffer.from(token).toString('base64')), 'base64 token in logs')
      assert.ok(!text.includes(ADMIN_TOKEN), 'admin secret in logs')
    })
  })

  it(`${name}: authorization server down → 503, cached tokens still served`, async () => {
    const server = await AuthServer.start()
    const f = countingFetch()
    const a = await start(edgeConfig(server.issuer), { fetch: f.fetch })
    try {
      const ok = await server.token()
      assert.equal((await fetch(`${a.url}/orders/1`, { headers: bearer(ok) })).status, 200)
      const fresh = await server.token()
      await server.stop()
      const r = await fetch(`${a.url}/orders/1`, { headers: bearer(fresh) })
      assert.equal(r.status, 503)
      assert.ok((await r.json()).error)
      assert.equal((await fetch(`${a.url}/orders/1`, { headers: bearer(ok) })).status, 200)
    } finally {
      await a.close()
      await server.stop()
    }
  })

  it(`${name}: a JWT-shaped token the AS refuses to introspect (400 unsupported_token_type) → 401, not 503`, async () => {
    const server = await AuthServer.start()
    const f = countingFetch()
    const capture = logCapture()
    const a = await start(edgeConfig(server.issuer), { fetch: f.fetch }, capture)
    try {
      for (let i = 0; i < 2; i++) { // the second answer comes from the negative cache
        const r = await fetch(`${a.url}/orders/1`, { headers: bearer(JWT_SHAPED) })
        assert.equal(r.status, 401, await r.text())
        assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/)
      }
      assert.equal(f.counter.introspections, 1, 'cached negatively')
      const ok = await server.token()
      assert.equal((await fetch(`${a.url}/orders/1`, { headers: bearer(ok) })).status, 200)
      assert.ok(!capture.text().includes('as_failure'), 'not an authorization-server failure')
    } finally {
      await a.close()
      await server.stop()
    }
  })

  it(`${name}: started before the authorization server, serves within seconds of it coming up`, async () => {
    const port = await freePort()
    const issuer = `http://127.0.0.1:${port}`
    const a = await start(edgeConfig(issuer), {})
    let server
    try {
      const down = await fetch(`${a.url}/orders/1`, { headers: bearer('some-opaque-token') })
      assert.equal(down.status, 503)
      await new Promise((resolve) => setTimeout(resolve, 3000)) // the AS comes up 3 s later
      server = await AuthServer.start(port)
      assert.equal(server.issuer, issuer)
      const token = await server.token()
      const up = Date.now()
      const statuses = []
      // Before the fix: 503 ("JWKS refresh rate-limited") for the rest of jwks_min_refresh (30 s).
      while (Date.now() - up < 10_000) {
        const r = await fetch(`${a.url}/orders/2`, { headers: bearer(token) })
        statuses.push(r.status)
        if (r.status === 200) break
        assert.equal(r.status, 503, await r.text())
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
      assert.equal(statuses.at(-1), 200, `still failing 10 s after the AS came up: ${statuses}`)
    } finally {
      await a.close()
      await server?.stop()
    }
  })
}
