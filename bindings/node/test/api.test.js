'use strict'
// Unit tests of the package's JavaScript surface: config loading, the error classes (their JS
// shape: class, code, field), and the async host (coalescing, timers, transport failures) with an
// in-process fake fetch.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const pe = require('..')
const { Config, Edge, PhantomEdge, loadConfig, ConfigError, RevocationError, EdgeError, InvalidArgumentError, PhantomEdgeError } = pe
const { EDGE_KEY } = require('./support.js')

const ISSUER = 'https://as.example'

function config(extra = {}) {
  return {
    authorization_server: {
      issuer: ISSUER,
      introspection_endpoint: `${ISSUER}/introspect`,
      client_id: 'gateway',
      client_secret: 'gateway-secret',
      dialect: 'rfc7662',
      timeout: '2s',
      ...extra.as,
    },
    assertions: { signing_key: EDGE_KEY, kid: 'edge-1' },
    admin: { token: 'admin-secret-0123456789' },
    routes: [{ path_prefix: '/orders', required_scopes: ['orders:read'], audience: 'orders-api' }],
    ...extra.top,
  }
}

const TOML = `
[authorization_server]
issuer = "${ISSUER}"
introspection_endpoint = "${ISSUER}/introspect"
client_id = "gateway"
client_secret_env = "PHANTOM_EDGE_TEST_SECRET"
dialect = "rfc7662"

[assertions]
signing_key_env = "PHANTOM_EDGE_TEST_KEY"
kid = "edge-1"

[middleware]
revocation_path = "/admin/revoke"
metrics_path = ""

[[routes]]
path_prefix = "/orders"
required_scopes = ["orders:read"]
`

test('config from an object, TOML text, a TOML path and a JSON path', () => {
  process.env.PHANTOM_EDGE_TEST_SECRET = 'gateway-secret'
  process.env.PHANTOM_EDGE_TEST_KEY = EDGE_KEY
  assert.equal(loadConfig(config()).issuer, ISSUER)
  const fromText = loadConfig(TOML)
  assert.ok(fromText instanceof Config)
  assert.deepEqual(JSON.parse(fromText.middlewareJson), { revocation_path: '/admin/revoke', metrics_path: '' })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pe-node-'))
  fs.writeFileSync(path.join(dir, 'edge.toml'), TOML)
  fs.writeFileSync(path.join(dir, 'edge.json'), JSON.stringify(config()))
  assert.equal(loadConfig(path.join(dir, 'edge.toml')).timeoutMs, 2000)
  assert.equal(loadConfig(path.join(dir, 'edge.json')).middlewareJson, null)
  assert.equal(new Edge(path.join(dir, 'edge.toml')).config.issuer, ISSUER)
  fs.rmSync(dir, { recursive: true })
})

test('ConfigError: an Error subclass with code and the bad field', () => {
  const bad = config()
  delete bad.authorization_server.client_secret
  let err
  try {
    new Edge(bad)
  } catch (e) {
    err = e
  }
  assert.ok(err instanceof ConfigError)
  assert.ok(err instanceof PhantomEdgeError)
  assert.ok(err instanceof Error)
  assert.equal(err.name, 'ConfigError')
  assert.equal(err.code, 'PHANTOM_EDGE_CONFIG')
  assert.match(err.field, /^authorization_server\.client_secret/)
  assert.match(err.message, /^invalid config: authorization_server\.client_secret/)

  assert.throws(() => loadConfig({ ...config(), nope: 1 }), (e) => e instanceof ConfigError && e.field === 'nope')
  delete process.env.PHANTOM_EDGE_TEST_SECRET_MISSING
  assert.throws(() => loadConfig(TOML.replace('PHANTOM_EDGE_TEST_SECRET', 'PHANTOM_EDGE_TEST_SECRET_MISSING')),
    (e) => e instanceof ConfigError && e.field === 'authorization_server.client_secret_env')
  assert.throws(() => loadConfig('/does/not/exist.toml'), (e) => e instanceof ConfigError && e.field === '(file)')
})

test('RevocationError and EdgeError carry status/body and ticket', () => {
  const edge = new Edge(config())
  assert.throws(() => edge.handleRevocation({ sub: 'a', jti: 'b' }), (e) => {
    assert.ok(e instanceof RevocationError)
    assert.equal(e.code, 'PHANTOM_EDGE_REVOCATION')
    assert.equal(e.status, 400)
    assert.equal(JSON.parse(e.body).error, 'invalid_request')
    assert.equal(e.field, 'invalid_request')
    return true
  })
  const admin = (authorization) => edge.handleAdmin({ route: 'revocations', listener: 'app', method: 'POST',
    contentType: 'application/json', authorization, body: '{"sub":"a"}' })
  const refused = admin('Bearer wrong-wrong-wrong-wrong')
  assert.equal(refused.answer.status, 401)
  assert.deepEqual(refused.answer.headers.find(([n]) => n === 'www-authenticate'), ['www-authenticate', 'Bearer realm="phantom-edge-admin"'])
  assert.equal(admin('Bearer admin-secret-0123456789').answer.status, 204)
  assert.deepEqual(edge.handleRevocation({ sub: 'b' }, 'shared').decisions, [])
  assert.throws(() => edge.handleFetch(42, 'x'), (e) => {
    assert.ok(e instanceof EdgeError)
    assert.equal(e.code, 'PHANTOM_EDGE_UNKNOWN_TICKET')
    assert.equal(e.kind, 'unknown_ticket')
    assert.equal(e.ticket, 42)
    return true
  })
  assert.throws(() => edge.handleRequest(-1, 'GET', 'https', 'a', '/', []), (e) => e instanceof Error)
  assert.throws(() => new Edge(config(), Buffer.alloc(3)), (e) => e instanceof InvalidArgumentError && e.field === 'seed')
  assert.throws(() => edge.handleRevocation({ sub: 'c' }, 'elsewhere'), (e) => e instanceof InvalidArgumentError && e.field === 'origin')
  assert.throws(() => edge.handleAdmin({ route: 'nope', listener: 'app', method: 'GET' }), (e) => e instanceof InvalidArgumentError && e.field === 'route')
  assert.throws(() => edge.upstreamHeaders([], 'x', 'proxy'), (e) => e instanceof InvalidArgumentError && e.field === 'hop')
})

test('the Step API: request → introspection fetch → forward with claims, camelCase', () => {
  const now = 1_700_000_000_000
  const edge = new Edge(config(), Buffer.alloc(32, 7), now)
  assert.deepEqual(edge.initialStep(), { decisions: [], fetches: [], lookups: [], publishes: [], audits: [], wakeAt: null })
  const step = edge.handleRequest(1, 'GET', 'https', 'api.example', '/orders/1', 'Bearer tok-123', null, null, now)
  assert.deepEqual(step.decisions, [])
  assert.deepEqual(step.audits.map((a) => a.kind), ['cache_miss'])
  const [intro] = step.fetches
  assert.equal(intro.kind, 'introspection')
  assert.equal(intro.method, 'POST')
  assert.equal(intro.url, `${ISSUER}/introspect`)
  assert.ok(intro.headers.some(([n]) => n === 'authorization'))
  assert.equal(intro.timeoutMs, 2000)
  assert.ok(intro.maxResponseBytes > 0)
  assert.equal(intro.fingerprint, edge.fingerprint('tok-123'))
  assert.equal(step.wakeAt, now + 2000) // the ticket's deadline
  const body = JSON.stringify({ active: true, scope: 'orders:read', aud: 'orders-api', client_id: 'app', sub: 'alice', exp: now / 1000 + 600, iss: ISSUER })
  const answered = edge.handleFetch(intro.ticket, { status: 200, headers: [['content-type', 'application/json']], body }, now + 5)
  const [fwd] = answered.decisions
  assert.equal(fwd.type, 'forward')
  assert.equal(fwd.requestId, 1)
  assert.equal(fwd.headerName, 'authorization')
  assert.match(fwd.headerValue, /^Bearer ey/)
  assert.ok(fwd.stripHeaders.includes('authorization'))
  assert.equal(fwd.token.clientId, 'app')
  assert.equal(fwd.token.sub, 'alice')
  assert.deepEqual(fwd.token.scopes, ['orders:read'])
  assert.ok(!JSON.stringify(fwd).includes('tok-123'))
  assert.deepEqual(edge.forwardPolicy(), { headerName: fwd.headerName, stripHeaders: [...fwd.stripHeaders] })
  // The forwarding policy, in process: the credentials and every spelling of the header go.
  const inbound = [['Host', 'api'], ['Authorization', 'Bearer tok-123'], ['X-Forwarded-For', '1.2.3.4'], ['dpop', 'p'], ['accept', '*/*']]
  const up = edge.upstreamHeaders(inbound, fwd.headerValue, 'in_process')
  assert.deepEqual(up, { drop: [1, 3], set: [['authorization', fwd.headerValue]] })
  const proxy = edge.upstreamHeaders(inbound, fwd.headerValue, { peer: '10.0.0.1', proto: 'https', upstreamAuthority: 'orders:8080' })
  assert.deepEqual(proxy.drop, [0, 1, 2, 3])
  assert.deepEqual(proxy.set.map(([n]) => n), ['authorization', 'host', 'x-forwarded-host', 'x-forwarded-for', 'x-forwarded-proto'])
  assert.deepEqual(pe.hopByHopHeaders([['Connection', 'x-a'], ['x-a', '1'], ['te', 'x'], ['accept', 'y']]), [0, 1, 2])
  assert.equal(edge.metrics().introspections, 1)
  assert.equal(edge.stats().cacheEntries, 1)
  assert.match(edge.prometheus(), /phantom_edge_requests_total 1/)
  assert.ok(JSON.parse(edge.assertionJwks()).keys.length === 1)
  // The operator routes, answered whole by the core.
  const metrics = (authorization, listener = 'app', method = 'GET') => edge.handleAdmin({ route: 'metrics', listener, method, authorization }).answer
  assert.equal(metrics(null).status, 401)
  assert.equal(metrics(null, 'operator').status, 200)
  assert.match(metrics('Bearer admin-secret-0123456789').body, /phantom_edge_requests_total 1/)
  assert.deepEqual(metrics(null, 'app', 'POST').headers.find(([n]) => n === 'allow'), ['allow', 'GET, HEAD'])
  const big = edge.handleAdmin({ route: 'revocations', listener: 'app', method: 'POST', body: Buffer.alloc(pe.MAX_ADMIN_BODY + 1) })
  assert.equal(big.answer.status, 413)
  assert.equal(pe.MAX_ADMIN_BODY, 64 * 1024)
})

test('Forward values of one cache entry are shared and frozen; auditActions = false drops only audits', () => {
  const now = 1_700_000_000_000
  const edge = new Edge(config(), Buffer.alloc(32, 9), now)
  const [intro] = edge.handleRequest(1, 'GET', 'https', 'api.example', '/orders/1', 'Bearer tok-9', null, null, now).fetches
  const body = JSON.stringify({ active: true, scope: 'orders:read', aud: 'orders-api', client_id: 'app', exp: now / 1000 + 600, iss: ISSUER })
  const [first] = edge.handleFetch(intro.ticket, { status: 200, headers: [['content-type', 'application/json']], body }, now).decisions
  const hit = edge.handleRequest(2, 'GET', 'https', 'api.example', '/orders/2', 'Bearer tok-9', null, null, now + 1)
  assert.deepEqual(hit.audits.map((a) => [a.kind, a.requestId]), [['cache_hit', 2]])
  const second = hit.decisions[0]
  assert.equal(second.requestId, 2)
  assert.notEqual(second, first)
  assert.equal(second.token, first.token)
  assert.ok(Object.isFrozen(second.token) && Object.isFrozen(second.token.scopes) && Object.isFrozen(second.stripHeaders))
  assert.throws(() => { second.token.scopes.push('admin') }, TypeError)
  assert.throws(() => { second.token.sub = 'mallory' }, TypeError)
  assert.equal(edge.auditActions, true)
  edge.auditActions = false

  // A hit with nothing else to hand out: one frozen Step shared by every hit on this entry
  // (while wakeAt stays), whose Forward has no requestId (it is the caller's request).
  const fast = edge.handleRequest(3, 'GET', 'https', 'api.example', '/orders/3', 'Bearer tok-9', null, null, now + 2)
  assert.deepEqual([fast.fetches, fast.lookups, fast.publishes, fast.audits], [[], [], [], []])
  const [d] = fast.decisions
  assert.equal(d.type, 'forward')
  assert.equal(d.requestId, undefined)
  assert.equal(d.token, second.token)
  assert.equal(d.headerValue, second.headerValue)
  assert.ok(Object.isFrozen(fast) && Object.isFrozen(fast.decisions) && Object.isFrozen(d) && Object.isFrozen(fast.audits))
  assert.equal(edge.handleRequest(55, 'GET', 'https', 'api.example', '/orders/55', ['Bearer tok-9'], [], null, now + 4), fast)
  const refused = edge.handleRequest(56, 'GET', 'https', 'api.example', '/orders/56', 'Bearer a b', null, null, now + 4)
  assert.deepEqual(refused.decisions.map((x) => [x.type, x.requestId, x.status]), [['reject', 56, 400]])
  assert.deepEqual(edge.handleRequest(4, 'GET', 'https', 'api.example', '/orders/4', null, null, null, now + 3).decisions.map((x) => [x.type, x.status]), [['reject', 401]])
  // A miss: no decision yet, the fetch to do.
  const miss = edge.handleRequest(6, 'GET', 'https', 'api.example', '/orders/6', 'Bearer other', null, null, now + 5)
  assert.deepEqual([miss.decisions.length, miss.fetches.length], [0, 1])
  edge.auditActions = true
  const audited = edge.handleRequest(7, 'GET', 'https', 'api.example', '/orders/7', 'Bearer tok-9', null, null, now + 6)
  assert.deepEqual(audited.audits.map((a) => [a.kind, a.requestId]), [['cache_hit', 7]])
  assert.deepEqual(audited.decisions.map((x) => [x.type, x.requestId]), [['forward', 7]])
  assert.ok(!Object.isFrozen(audited))
})

test('bearerRequest(): the same steps as the native handleRequest, exact strings, typed errors', () => {
  const native = require('../lib/native.js')
  const now = 1_700_000_000_000
  const cfg = config({ top: { routes: [
    { path_prefix: '/orders', required_scopes: ['orders:read'], audience: 'orders-api' },
    { path_prefix: '/caf\u00e9' },
  ] } })
  // Two edges with one seed: the same inputs must give the same steps (fingerprints included).
  const fastEdge = new Edge(cfg, Buffer.alloc(32, 3), now)
  const slowEdge = new Edge(cfg, Buffer.alloc(32, 3), now)
  const requestFast = fastEdge.bearerRequest()
  // Audits off: hits come back as the frozen shared steps, compared too.
  fastEdge.auditActions = false
  slowEdge.auditActions = false
  let id = 0
  const both = (method, scheme, authority, p, authorization) => {
    id += 1
    const a = requestFast(id, method, scheme, authority, p, authorization, now + id)
    const b = native.Edge.prototype.handleRequest.call(slowEdge, id, method, scheme, authority, p, authorization, null, null, now + id)
    const out = [JSON.stringify(a), JSON.stringify(b)]
    assert.equal(out[0], out[1], `${method} ${p} ${authorization}`)
    return JSON.parse(out[0])
  }
  assert.equal(JSON.stringify(fastEdge.initialStep()), JSON.stringify(slowEdge.initialStep()))
  const longToken = 'x'.repeat(4000) // under the core's 4096-byte limit, over any stack buffer
  const longPath = `/orders/${'y'.repeat(5000)}`
  const cases = [
    ['GET', 'https', 'api.example', '/orders/1', 'Bearer tok-1'],
    ['GET', 'https', 'api.example', '/orders/1', null],
    ['GET', 'https', 'api.example', '/orders/1', undefined],
    ['GET', 'https', 'api.example', '/orders/1', ''],
    ['GET', 'https', 'api.example', '/orders/1', 'Bearer a b'],
    ['GET', 'https', 'api.example', '/orders/1', 'Bearer t\u00f6k'],
    ['GET', 'https', 'api.example', '/caf\u00e9/x', 'Bearer tok-2'],
    ['GET', 'https', 'api.example', '/cafe/x', 'Bearer tok-2'],
    ['GET', 'https', 'api.example', '/caf\ud800/x', 'Bearer tok-2'],
    ['GET', 'https', 'api.\u{1F600}', '/orders/\u{1F600}', 'Bearer tok-3'],
    ['POST', 'http', '', longPath, `Bearer ${longToken}`],
  ]
  const results = cases.map((c) => both(...c))
  // Answer every introspection on both edges (same tickets: same seed, same inputs), then send
  // every case again: the tokens are cached now, so hits come back as decisions at once.
  const answer = JSON.stringify({ active: true, scope: 'orders:read', aud: 'orders-api', client_id: 'app', sub: 'alice', exp: now / 1000 + 600, iss: ISSUER })
  for (const r of results) {
    for (const f of r.fetches) {
      const steps = [fastEdge, slowEdge].map((e) =>
        e.handleFetch(f.ticket, { status: 200, headers: [['content-type', 'application/json']], body: answer }, now + 50))
      assert.equal(JSON.stringify(steps[0]), JSON.stringify(steps[1]))
    }
  }
  const again = cases.map((c) => both(...c))
  const hits = again.filter((s) => s.decisions[0]?.type === 'forward')
  assert.ok(hits.length >= 4, `cache hits decided at once: ${hits.length}`)
  assert.ok(again.some((s) => s.decisions[0]?.type === 'reject'), 'rejections decided at once')
  // The inputs were read exactly: the long token reached the introspection body whole, and the
  // non-ASCII route matched only for the exact path.
  assert.ok(results[10].fetches.some((f) => new URLSearchParams(f.body).get('token') === longToken))
  assert.equal(results[6].fetches.length, 1, 'caf\u00e9 route matched')
  assert.equal(results[7].decisions[0].status, 404, '/cafe has no route')
  assert.equal(results[8].decisions[0].status, 404, 'a lone surrogate is not the route')

  // Around the function's first read buffer (1024 UTF-16 units, fresh edges): one call when the
  // string fits, length-checked second read when it might not.
  {
    const a = new Edge(cfg, Buffer.alloc(32, 4), now)
    const b = new Edge(cfg, Buffer.alloc(32, 4), now)
    const f = a.bearerRequest()
    for (const n of [1021, 1022, 1023, 1024, 1025, 2047, 2048, 2049]) {
      const p = `/orders/${'z'.repeat(n - 8)}`
      const tok = `Bearer ${'t'.repeat(n - 7)}`
      assert.equal(p.length, n)
      const x = JSON.stringify(f(n, 'GET', 'https', 'h', p, tok, now))
      const y = JSON.stringify(native.Edge.prototype.handleRequest.call(b, n, 'GET', 'https', 'h', p, [tok], null, null, now))
      assert.equal(x, y, `length ${n}`)
      assert.match(x, new RegExp(`token=t{${n - 7}}[&"]`), `length ${n}: token read whole`)
    }
  }

  // Wrong argument types: a typed error naming the argument, and nothing reaches the core.
  const before = fastEdge.metrics().requests
  for (const [args, field] of [
    [['1', 'GET', 'https', 'a', '/orders/1', 'Bearer t'], 'id'],
    [[-1, 'GET', 'https', 'a', '/orders/1', 'Bearer t'], 'id'],
    [[1, 7, 'https', 'a', '/orders/1', 'Bearer t'], 'method'],
    [[1, 'GET', 'https', 'a', null, 'Bearer t'], 'path'],
    [[1, 'GET', 'https', 'a', '/orders/1', 42], 'authorization'],
    [[1, 'GET', 'https', 'a', '/orders/1', 'Bearer t', 'soon'], 'now'],
  ]) {
    assert.throws(() => requestFast(...args), (e) => {
      assert.equal(e.code, 'PHANTOM_EDGE_INVALID_ARG')
      assert.match(e.message, new RegExp(field))
      return true
    }, `${field}: ${JSON.stringify(args)}`)
  }
  assert.equal(fastEdge.metrics().requests, before)

  // The wrapper's handleRequest takes this path for one Authorization value or none, and the
  // native method otherwise (DPoP, repeated Authorization, client certificate).
  const nativeRequest = native.Edge.prototype.handleRequest
  let nativeCalls = 0
  native.Edge.prototype.handleRequest = function (...args) { nativeCalls += 1; return nativeRequest.apply(this, args) }
  try {
    assert.equal(fastEdge.handleRequest(900, 'GET', 'https', 'a', '/orders/1', ['Bearer tok-1'], [], null, now + 60).decisions[0].type, 'forward')
    assert.equal(fastEdge.handleRequest(901, 'GET', 'https', 'a', '/orders/1', [], null, null, now + 60).decisions[0].status, 401)
    assert.equal(fastEdge.handleRequest(904, 'GET', 'https', 'a', '/orders/1', 'Bearer tok-1', undefined, undefined, now + 60).decisions[0].type, 'forward')
    assert.equal(nativeCalls, 0)
    assert.equal(fastEdge.handleRequest(902, 'GET', 'https', 'a', '/orders/1', ['Bearer a', 'Bearer b'], null, null, now + 60).decisions[0].status, 400)
    assert.equal(fastEdge.handleRequest(903, 'GET', 'https', 'a', '/orders/1', 'Bearer tok-1', null, 'x5t', now + 60).decisions[0].type, 'forward')
    assert.equal(nativeCalls, 2)
  } finally {
    native.Edge.prototype.handleRequest = nativeRequest
  }
})

function introspectionAnswer(now = Date.now()) {
  return JSON.stringify({ active: true, scope: 'orders:read', aud: 'orders-api', client_id: 'app', exp: Math.floor(now / 1000) + 600, iss: ISSUER })
}

test('PhantomEdge: concurrent misses for one token → one fetch, every waiter answered', async () => {
  let calls = 0
  let release
  const gate = new Promise((r) => { release = r })
  const fakeFetch = async (url, init) => {
    calls++
    assert.equal(url, `${ISSUER}/introspect`)
    assert.ok(init.signal instanceof AbortSignal)
    await gate
    return new Response(introspectionAnswer(), { status: 200, headers: { 'content-type': 'application/json' } })
  }
  const edge = new PhantomEdge(config(), { fetch: fakeFetch })
  const pending = Array.from({ length: 50 }, () => edge.authorize({ method: 'GET', url: 'https://api.example/orders/1', headers: { authorization: 'Bearer shared-token' } }))
  await new Promise((r) => setImmediate(r))
  assert.equal(calls, 1)
  release()
  const decisions = await Promise.all(pending)
  assert.deepEqual(decisions.map((d) => d.type), Array(50).fill('forward'))
  assert.equal(new Set(decisions.map((d) => d.requestId)).size, 50)
  assert.equal(calls, 1)
  // A hit is decided synchronously inside authorize (no I/O).
  const hit = await edge.authorize({ url: 'https://api.example/orders/2', headers: [['Authorization', 'Bearer shared-token']] })
  assert.equal(hit.type, 'forward')
  assert.equal(calls, 1)
  await edge.close()
})

test('PhantomEdge: no answer → the core times the ticket out (timer) → 503', async () => {
  const hang = (url, init) => new Promise(() => {}) // ignores the AbortSignal on purpose
  const edge = new PhantomEdge(config({ as: { timeout: '150ms' } }), { fetch: hang })
  const t0 = Date.now()
  const d = await edge.authorize({ url: 'https://api.example/orders/1', headers: { authorization: 'Bearer slow-token' } })
  assert.equal(d.type, 'reject')
  assert.equal(d.status, 503)
  assert.equal(d.reason, 'timeout')
  assert.ok(Date.now() - t0 >= 140, 'decided by the timer, not earlier')
  await edge.close()
})

test('PhantomEdge: transport failure → 503 unavailable; HTTP 500 → 503', async () => {
  const refused = async () => { throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } }) }
  const a = new PhantomEdge(config(), { fetch: refused })
  const d = await a.authorize({ url: 'http://api.example/orders/1', headers: { authorization: 'Bearer t1' } })
  assert.equal(d.status, 503)
  assert.equal(d.reason, 'unavailable')
  await a.close()
  const five = async () => new Response('oops', { status: 500 })
  const b = new PhantomEdge(config(), { fetch: five })
  const e = await b.authorize({ url: 'http://api.example/orders/1', headers: { authorization: 'Bearer t2' } })
  assert.equal(e.status, 503)
  await b.close()
})

test('PhantomEdge: revoke(), metrics() and the audit logger (no tokens)', async () => {
  const lines = []
  const fakeFetch = async () => new Response(introspectionAnswer(), { status: 200, headers: { 'content-type': 'application/json' } })
  const edge = new PhantomEdge(config(), { fetch: fakeFetch, logger: { debug: (l) => lines.push(l), info: (l) => lines.push(l) } })
  const token = 'secret-token-value-abcdef'
  assert.equal((await edge.authorize({ url: 'http://a/orders/1', headers: { authorization: `Bearer ${token}` } })).type, 'forward')
  const r = await edge.revoke('application/json', 'Bearer admin-secret-0123456789', JSON.stringify({ token }))
  assert.deepEqual(r, { status: 204, body: '' })
  const bad = await edge.revoke('application/json', null, JSON.stringify({ token }))
  assert.equal(bad.status, 401)
  const d = await edge.authorize({ url: 'http://a/orders/1', headers: { authorization: `Bearer ${token}` } })
  assert.equal(d.status, 401)
  assert.match(edge.metrics(), /phantom_edge_revocations_total 1/)
  const text = lines.join('\n')
  assert.match(text, /"kind":"revoked"/)
  assert.ok(!text.includes(token))
  await edge.close()
})

test('PhantomEdge builds audit actions only for a logger that writes debug, info or warn', async () => {
  const f = async () => new Response('{}', { status: 500 })
  const cases = [
    [undefined, false],
    [{ info() {}, debug() {} }, true],
    [{ info() {}, level: 'silent' }, false],
    [{ info() {}, isLevelEnabled: () => false }, false],
    [{ info() {}, isLevelEnabled: (l) => l === 'warn' }, true],
    [{ info() {}, isLevelEnabled: (l) => l === 'info' }, true],
  ]
  for (const [logger, expected] of cases) {
    const pe = new PhantomEdge(config(), { fetch: f, logger })
    assert.equal(pe.edge.auditActions, expected)
    await pe.close()
  }
  // A logger at info level: the routine kinds (cache_hit, ...) are not built, the others are.
  const lines = []
  const info = { info: (l) => lines.push(l), debug: () => assert.fail('debug is off'), isLevelEnabled: (l) => l !== 'debug' }
  const ok = async () => new Response(introspectionAnswer(), { status: 200, headers: { 'content-type': 'application/json' } })
  const pe = new PhantomEdge(config(), { fetch: ok, logger: info })
  const req = { url: 'http://a/orders/1', headers: { authorization: 'Bearer info-token' } }
  assert.equal((await pe.authorize(req)).type, 'forward')
  assert.equal((await pe.authorize(req)).type, 'forward')
  assert.equal((await pe.authorize({ url: 'http://a/orders/1' })).status, 401)
  const kinds = lines.map((l) => JSON.parse(l.replace('phantom_edge audit ', '')).kind)
  assert.deepEqual(kinds, ['rejected'])
  assert.equal(JSON.parse(lines[0].replace('phantom_edge audit ', '')).level, 'info')
  // The hit's step holds only its decision: audits of routine kinds are not built.
  assert.deepEqual(pe.edge.handleRequest(99, 'GET', 'http', 'a', '/orders/1', 'Bearer info-token').audits, [])
  await pe.close()
  // A logger at warn level: a rejection is not built, the AS failing is logged with logger.warn.
  const warned = []
  const warn = { info: () => assert.fail('info is off'), warn: (l) => warned.push(l), isLevelEnabled: (l) => l === 'warn' }
  const down = new PhantomEdge(config(), { fetch: f, logger: warn })
  assert.equal((await down.authorize({ url: 'http://a/orders/1' })).status, 401)
  assert.equal((await down.authorize({ url: 'http://a/orders/1', headers: { authorization: 'Bearer t2' } })).status, 503)
  const events = warned.map((l) => JSON.parse(l.replace('phantom_edge audit ', '')))
  assert.deepEqual(events.map((e) => [e.kind, e.level]), [['as_failure', 'warn']])
  await down.close()
})

test('setAuditLevel leaves out lower levels, refuses unknown ones and composes with muteAudits', () => {
  const edge = new Edge(config())
  edge.initialStep()
  const kinds = (step) => [...step.audits.map((a) => [a.kind, a.level]), ...step.decisions.map((d) => d.type)]
  assert.throws(() => edge.setAuditLevel('verbose'), (e) => e instanceof InvalidArgumentError && e.field === 'level')
  assert.deepEqual(kinds(edge.handleRequest(1, 'GET', 'https', 'a', '/orders/1', 'Bearer lv')), [['cache_miss', 'debug']])
  edge.setAuditLevel('info')
  const quiet = edge.handleRequest(2, 'GET', 'https', 'a', '/orders/1', 'Bearer lv2')
  assert.deepEqual([kinds(quiet), quiet.fetches.length], [[], 1])
  assert.deepEqual(kinds(edge.handleRequest(3, 'GET', 'https', 'a', '/orders/1', null)), [['rejected', 'info'], 'reject'])
  edge.muteAudits(['rejected'])
  edge.setAuditLevel('debug')
  assert.deepEqual(kinds(edge.handleRequest(4, 'GET', 'https', 'a', '/orders/1', null)), ['reject'])
  edge.muteAudits([])
  edge.setAuditLevel('warn')
  assert.deepEqual(kinds(edge.handleRequest(5, 'GET', 'https', 'a', '/orders/1', null)), ['reject'])
})

test('muteAudits refuses unknown kinds and [] unmutes', () => {
  const edge = new Edge(config())
  assert.throws(() => edge.muteAudits(['cache_hit', 'nope']), (e) => e instanceof InvalidArgumentError && e.field === 'kinds')
  edge.muteAudits(['rejected'])
  assert.deepEqual(edge.handleRequest(1, 'GET', 'https', 'a', '/orders/1', null).audits, [])
  edge.muteAudits([])
  assert.deepEqual(edge.handleRequest(2, 'GET', 'https', 'a', '/orders/1', null).audits.map((a) => a.kind), ['rejected'])
})

test('ESM entry points export the same objects as CommonJS', async () => {
  const esm = await import('phantom-edge')
  assert.equal(esm.Edge, pe.Edge)
  assert.equal(esm.PhantomEdge, pe.PhantomEdge)
  assert.equal(esm.ConfigError, pe.ConfigError)
  const ex = await import('phantom-edge/express')
  assert.equal(ex.phantomToken, require('phantom-edge/express').phantomToken)
  const fa = await import('phantom-edge/fastify')
  assert.equal(fa.default, require('phantom-edge/fastify'))
})

test('PhantomEdge: a decision at once (a DPoP hit) re-arms an idle timer for the sweep (wakeAt)', async () => {
  const jose = await import('jose')
  const crypto = require('node:crypto')
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256')
  const { crv, kty, x, y } = await jose.exportJWK(publicKey)
  const jkt = await jose.calculateJwkThumbprint({ crv, kty, x, y }, 'sha256')
  const token = 'tok-dpop'
  const ath = crypto.createHash('sha256').update(token).digest('base64url')
  const proof = (jti) => new jose.SignJWT({ jti, htm: 'GET', htu: 'https://api/orders/1', ath })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: { crv, kty, x, y } })
    .setIssuedAt()
    .sign(privateKey)
  const answer = JSON.stringify({ ...JSON.parse(introspectionAnswer()), cnf: { jkt }, token_type: 'DPoP' })
  const fetch = async () => new Response(answer, { status: 200, headers: { 'content-type': 'application/json' } })
  const pe = new PhantomEdge(config(), { fetch })
  try {
    const req = async (jti) => pe.authorize({ method: 'GET', url: 'https://api/orders/1', headers: { authorization: `DPoP ${token}`, dpop: await proof(jti) } })
    assert.equal((await req('1')).type, 'forward')
    // Idle, as after a sweep that emptied every bounded set: no timer.
    clearTimeout(pe._timer)
    pe._timer = null
    pe._timerAt = null
    const hit = await req('2')
    assert.equal(hit.type, 'forward')
    assert.notEqual(pe._timer, null)
    assert.ok(pe._timerAt > Date.now(), `timer at ${pe._timerAt}`)
  } finally {
    await pe.close()
  }
})

test('PhantomEdge: a split-mode lookup answering bytes (ioredis getBuffer) is read as text; other types are a store error', async () => {
  const { PhantomEdge } = require('phantom-edge')
  const cfg = {
    mode: 'split',
    authorization_server: { issuer: ISSUER, jwks_uri: `${ISSUER}/jwks` },
    routes: [{ path_prefix: '/orders', required_scopes: ['orders:read'] }],
  }
  const jwk = { ...require('node:crypto').createPublicKey(EDGE_KEY).export({ format: 'jwk' }), kid: 'k1', alg: 'EdDSA', use: 'sig' }
  const jwks = async () => new Response(JSON.stringify({ keys: [jwk] }), { status: 200, headers: { 'content-type': 'application/json' } })
  for (const [value, status, reason] of [[Buffer.from('not.ajwt'), 401, 'invalid_token'], [42, 503, 'unavailable'], [Buffer.from([0x61, 0xff, 0x2e, 0x62]), 503, 'unavailable']]) {
    const pe = new PhantomEdge(cfg, { fetch: jwks, sharedLookup: async () => value })
    const t0 = Date.now()
    const d = await pe.authorize({ url: 'http://a/orders/1', headers: { authorization: 'Bearer sig-part' } })
    assert.equal(d.status, status, JSON.stringify(d))
    assert.equal(d.reason, reason)
    assert.ok(Date.now() - t0 < 1000, 'answered at once, not at the ticket timeout')
    await pe.close()
  }
})

test('PhantomEdge: an async onPublish that rejects never crashes the process (logged at warn)', async () => {
  const { PhantomEdge } = require('phantom-edge')
  const unhandled = []
  const onUnhandled = (e) => unhandled.push(e)
  process.on('unhandledRejection', onUnhandled)
  const warned = []
  const logger = { info() {}, debug() {}, warn: (l) => warned.push(l) }
  try {
    const pe = new PhantomEdge(config(), {
      fetch: async () => new Response('{}', { status: 500 }),
      logger,
      onPublish: async () => { throw Object.assign(new Error('redis down'), { code: 'ECONNREFUSED' }) },
    })
    const r = await pe.revoke('application/json', 'Bearer admin-secret-0123456789', JSON.stringify({ sub: 'alice' }))
    assert.equal(r.status, 204)
    await new Promise((resolve) => setTimeout(resolve, 20))
    assert.ok(warned.some((l) => l.includes('publish failed: ECONNREFUSED')), warned.join('\n'))
    await pe.close()
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
  assert.deepEqual(unhandled, [])
})

test('PhantomEdge: introspection answers over 1 MiB are refused (503), not read to the end', async () => {
  const { PhantomEdge } = require('phantom-edge')
  const chunk = new Uint8Array(64 * 1024).fill(0x20)
  let pulled = 0
  const pe = new PhantomEdge(config(), {
    // 8 MiB, without a content-length, produced as it is read.
    fetch: async () => new Response(new ReadableStream({
      pull(c) { if (++pulled > 128) c.close(); else c.enqueue(chunk) },
    }), { status: 200, headers: { 'content-type': 'application/json' } }),
  })
  const d = await pe.authorize({ url: 'http://a/orders/1', headers: { authorization: 'Bearer big-answer' } })
  assert.equal(d.status, 503)
  assert.ok(pulled <= 20, `read ${pulled} chunks of 64 KiB`)
  await pe.close()
})

test('PhantomEdge.close() with a fetch that never ends: the waiting request still gets the core\'s 503', async () => {
  const { PhantomEdge } = require('phantom-edge')
  const cfg = config({ as: { timeout: '300ms' } })
  // A fetch that ignores its abort signal and never settles.
  const pe = new PhantomEdge(cfg, { fetch: () => new Promise(() => {}) })
  const pending = pe.authorize({ url: 'http://a/orders/1', headers: { authorization: 'Bearer hangs' } })
  await new Promise((resolve) => setTimeout(resolve, 10))
  const t0 = Date.now()
  await pe.close()
  const d = await Promise.race([pending, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 3000))])
  assert.notEqual(d, 'still waiting')
  assert.equal(d.status, 503)
  assert.ok(Date.now() - t0 < 3000)
})

test('splitJwt seals the store value (the issuer side of split tokens)', () => {
  const jwt = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDMwMH0.c2lnbmF0dXJl'
  const s = pe.splitJwt(jwt)
  assert.equal(s.clientToken, 'c2lnbmF0dXJl')
  assert.ok(s.storeKey.startsWith('phantom-edge:split:'))
  assert.ok(!s.storeKey.includes('c2lnbmF0dXJl'))
  assert.ok(s.storeValue.startsWith('pe1:') && !s.storeValue.includes('eyJ'))
  assert.equal(s.expiresAt, 1700000300)
  assert.ok(pe.splitJwt(jwt, 'x:').storeKey.startsWith('x:'))
  assert.throws(() => pe.splitJwt('not.a'))
})
