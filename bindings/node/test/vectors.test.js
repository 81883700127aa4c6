'use strict'
// Replays every shared vector in tests/vectors/cases through the Node binding. The canonical JSON
// of each action (tests/vectors/README.md) is rebuilt here from the JS objects the binding returns.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const { Edge, EdgeError, RevocationError } = require('..')

const CASES_DIR = process.env.PHANTOM_EDGE_VECTORS || path.resolve(__dirname, '../../../tests/vectors/cases')
const CASES = fs.readdirSync(CASES_DIR).filter((f) => f.endsWith('.json')).sort()

const TYPES = {
  forward: 'forward',
  reject: 'reject',
  introspect: 'introspect',
  fetchJwks: 'fetch_jwks',
  sharedLookup: 'shared_lookup',
  sharedPublish: 'shared_publish',
  audit: 'audit',
}

function claims(t) {
  const out = {}
  const map = {
    sub: 'sub', clientId: 'client_id', scopes: 'scopes', aud: 'aud', iss: 'iss', exp: 'exp',
    iat: 'iat', nbf: 'nbf', jti: 'jti', sid: 'sid', username: 'username', tokenType: 'token_type',
    cnfJkt: 'cnf_jkt', cnfX5tS256: 'cnf_x5t_s256',
  }
  for (const [k, v] of Object.entries(t)) {
    assert.ok(k in map, `unexpected claim key ${k}`)
    if (v !== undefined && v !== null) out[map[k]] = v
  }
  return out
}

function canon(a) {
  const type = TYPES[a.type]
  assert.ok(type, `unknown action type ${a.type}`)
  switch (a.type) {
    case 'forward':
      return {
        type, request_id: a.requestId, header_name: a.headerName, header_value: a.headerValue,
        strip_headers: [...a.stripHeaders], fingerprint: a.fingerprint, token: claims(a.token),
      }
    case 'reject':
      return {
        type, request_id: a.requestId, status: a.status, www_authenticate: a.wwwAuthenticate ?? null,
        retry_after: a.retryAfter ?? null,
        body: a.body, reason: a.reason, fingerprint: a.fingerprint ?? null,
      }
    case 'introspect':
      return {
        type, ticket: a.ticket, method: a.method, url: a.url,
        headers: a.headers.map(([n, v]) => [n, v]), body: a.body, timeout_ms: a.timeoutMs,
        fingerprint: a.fingerprint,
      }
    case 'fetchJwks':
      return { type, url: a.url }
    case 'sharedLookup':
      return { type, ticket: a.ticket, key: a.key }
    case 'sharedPublish':
      return { type, message: a.message }
    case 'audit': {
      const out = { type, kind: a.kind, level: a.level }
      for (const [k, j] of [['requestId', 'request_id'], ['ticket', 'ticket'], ['fingerprint', 'fingerprint'], ['reason', 'reason'], ['detail', 'detail']]) {
        if (a[k] !== undefined && a[k] !== null) out[j] = a[k]
      }
      return out
    }
  }
}

function ticketResult(call) {
  try {
    call()
  } catch (e) {
    assert.ok(e instanceof EdgeError, `expected EdgeError, got ${e}`)
    assert.match(e.code, /^PHANTOM_EDGE_(UNKNOWN_TICKET|WRONG_TICKET_KIND)$/)
    return { error: e.kind }
  }
  return undefined
}

function revocationResult(call) {
  try {
    call()
  } catch (e) {
    assert.ok(e instanceof RevocationError, `expected RevocationError, got ${e}`)
    assert.equal(e.code, 'PHANTOM_EDGE_REVOCATION')
    return { error: { status: e.status } }
  }
  return { ok: true }
}

function apply(edge, now, inp) {
  const pairs = (k) => inp[k].map(([n, v]) => [n, v])
  switch (inp.type) {
    case 'request':
      edge.handleRequest(inp.id, inp.method, inp.scheme, inp.authority, inp.path, pairs('headers'),
        inp.client_cert_thumbprint, now)
      return undefined
    case 'introspection_response':
      return ticketResult(() => edge.handleIntrospectionResponse(inp.ticket, inp.status, pairs('headers'),
        Buffer.from(inp.body, 'utf8'), now))
    case 'introspection_failure':
      return ticketResult(() => edge.handleIntrospectionFailure(inp.ticket, inp.detail, now))
    case 'jwks':
      edge.handleJwks(inp.body, now)
      return undefined
    case 'jwks_failure':
      edge.handleJwksFailure(inp.detail, now)
      return undefined
    case 'shared_lookup': {
      const r = inp.result
      if (r === 'not_found') return ticketResult(() => edge.handleSharedLookup(inp.ticket, null, false, now))
      if (r === 'error') return ticketResult(() => edge.handleSharedLookup(inp.ticket, null, true, now))
      return ticketResult(() => edge.handleSharedLookup(inp.ticket, r.found, false, now))
    }
    case 'revocation':
      return revocationResult(() => edge.handleRevocation(inp.selector, inp.origin, now))
    case 'admin_revocation':
      try {
        edge.handleAdminRevocation(inp.content_type, inp.authorization, Buffer.from(inp.body, 'utf8'), now)
        return { status: 204 }
      } catch (e) {
        assert.ok(e instanceof RevocationError)
        return { status: e.status }
      }
    case 'security_event':
      return revocationResult(() => edge.handleSecurityEvent(inp.set, now))
    case 'timeout':
      edge.handleTimeout(now)
      return undefined
    default:
      throw new Error(`unknown input type ${inp.type}`)
  }
}

// `decide` instead of `handleRequest`: the decision it returns (a returned Forward has no
// requestId: it is this request's), then whatever is queued. Requests with one Authorization
// header or none and no client certificate take the bearerDecider() function, the others the
// native method.
function decideRequest(edge, now, inp) {
  const d = edge.decide(inp.id, inp.method, inp.scheme, inp.authority, inp.path,
    inp.headers.map(([n, v]) => [n, v]), inp.client_cert_thumbprint, now)
  if (d === null) return []
  return [d.type === 'forward' ? { ...d, requestId: inp.id } : d]
}

function replay(file, viaDecide = false) {
  const c = JSON.parse(fs.readFileSync(path.join(CASES_DIR, file), 'utf8'))
  const edge = new Edge(c.config, Buffer.from(c.seed, 'hex'), c.start)
  assert.deepEqual(edge.drainActions().map(canon), c.initial ?? [], 'initial actions differ')
  c.steps.forEach((step, i) => {
    let actions = []
    const result = viaDecide && step.input.type === 'request'
      ? void (actions = decideRequest(edge, step.now, step.input))
      : apply(edge, step.now, step.input)
    // pollAction and drainActions must agree: pollAction on odd steps.
    if (i % 2) {
      for (let a; (a = edge.pollAction()) !== null;) actions.push(a)
    } else {
      actions.push(...edge.drainActions())
    }
    assert.deepEqual(actions.map(canon), step.expect, `step ${i} (${step.input.type}): actions differ`)
    assert.deepEqual(result, step.result, `step ${i}: result differs`)
    if ('timeout' in step) {
      assert.equal(edge.pollTimeout(), step.timeout, `step ${i}: pollTimeout differs`)
    }
  })
}

test('all 69 vector cases are present', () => {
  assert.equal(CASES.length, 69)
})

for (const file of CASES) {
  test(`vector ${file.replace(/\.json$/, '')}`, () => replay(file))
  test(`vector ${file.replace(/\.json$/, '')} (requests through decide)`, () => replay(file, true))
}
