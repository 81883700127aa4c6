'use strict'
// Replays every shared vector in tests/vectors/cases through the Node binding's Step driver: each
// input returns a Step, whose lists must equal the expected actions of their types, in order, and
// whose wakeAt must equal `timeout` (tests/vectors/README.md). The canonical JSON of each action
// is rebuilt here from the JS objects the binding returns.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const { Edge, EdgeError, RevocationError } = require('..')
const native = require('../lib/native.js')

const CASES_DIR = process.env.PHANTOM_EDGE_VECTORS || path.resolve(__dirname, '../../../tests/vectors/cases')
const CASES = fs.readdirSync(CASES_DIR).filter((f) => f.endsWith('.json')).sort()

/** Which Step list each expected action type lands in. */
const LISTS = {
  forward: 'decisions',
  reject: 'decisions',
  fetch: 'fetches',
  shared_lookup: 'lookups',
  shared_publish: 'publishes',
  audit: 'audits',
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

function canonDecision(a) {
  switch (a.type) {
    case 'forward':
      return {
        type: 'forward', request_id: a.requestId, header_name: a.headerName, header_value: a.headerValue,
        strip_headers: [...a.stripHeaders], fingerprint: a.fingerprint, token: claims(a.token),
      }
    case 'reject':
      return {
        type: 'reject', request_id: a.requestId, status: a.status, www_authenticate: a.wwwAuthenticate ?? null,
        retry_after: a.retryAfter ?? null,
        body: a.body, reason: a.reason, fingerprint: a.fingerprint ?? null,
      }
    default:
      throw new Error(`unknown decision type ${a.type}`)
  }
}

const CANON = {
  decisions: canonDecision,
  fetches: (f) => ({
    type: 'fetch', ticket: f.ticket, kind: f.kind, method: f.method, url: f.url,
    headers: f.headers.map(([n, v]) => [n, v]), body: f.body, timeout_ms: f.timeoutMs,
    max_response_bytes: f.maxResponseBytes, fingerprint: f.fingerprint ?? null,
  }),
  lookups: (l) => ({ type: 'shared_lookup', ticket: l.ticket, key: l.key }),
  publishes: (message) => ({ type: 'shared_publish', message }),
  audits: (a) => {
    const out = { type: 'audit', kind: a.kind, level: a.level }
    for (const [k, j] of [['requestId', 'request_id'], ['ticket', 'ticket'], ['fingerprint', 'fingerprint'], ['reason', 'reason'], ['detail', 'detail']]) {
      if (a[k] !== undefined && a[k] !== null) out[j] = a[k]
    }
    return out
  },
}

/** Compares each list of `step` with the expected actions of its types, and wakeAt. */
function checkStep(step, expect, timeout, what) {
  for (const list of Object.keys(CANON)) {
    const want = expect.filter((a) => LISTS[a.type] === list)
    assert.deepEqual(step[list].map(CANON[list]), want, `${what}: ${list} differ`)
  }
  for (const a of expect) assert.ok(a.type in LISTS, `${what}: unknown expected action ${a.type}`)
  assert.deepEqual(Object.keys(step).sort(), ['audits', 'decisions', 'fetches', 'lookups', 'publishes', 'wakeAt'])
  if (timeout !== undefined) assert.equal(step.wakeAt, timeout, `${what}: wakeAt differs`)
}

// An input that throws produces no step: its actions (none in the vectors) stay queued.
function ticketResult(call) {
  try {
    return [call(), undefined]
  } catch (e) {
    assert.ok(e instanceof EdgeError, `expected EdgeError, got ${e}`)
    assert.match(e.code, /^PHANTOM_EDGE_(UNKNOWN_TICKET|WRONG_TICKET_KIND)$/)
    return [null, { error: e.kind }]
  }
}

function revocationResult(call) {
  try {
    return [call(), { ok: true }]
  } catch (e) {
    assert.ok(e instanceof RevocationError, `expected RevocationError, got ${e}`)
    assert.equal(e.code, 'PHANTOM_EDGE_REVOCATION')
    return [null, { error: { status: e.status } }]
  }
}

/** The values of the headers named `name` (any case), in order. */
const values = (headers, name) => headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v)

/**
 * Feeds one input; returns `[step, result]` (`step` null: the input produced none). `native`:
 * requests through the native method instead of the wrapper's (which takes the bearerRequest
 * function for requests with at most one Authorization value, no DPoP and no certificate).
 */
function apply(edge, now, inp, viaNative) {
  const pairs = (k) => inp[k].map(([n, v]) => [n, v])
  switch (inp.type) {
    case 'request': {
      const handle = viaNative ? native.Edge.prototype.handleRequest : edge.handleRequest
      const step = handle.call(edge, inp.id, inp.method, inp.scheme, inp.authority, inp.path,
        values(inp.headers, 'authorization'), values(inp.headers, 'dpop'), inp.client_cert_thumbprint, now)
      // A hit's frozen shared Forward has no requestId: it is this request's.
      const decisions = step.decisions.map((d) => d.requestId === undefined ? { ...d, requestId: inp.id } : d)
      return [{ ...step, decisions }, undefined]
    }
    case 'fetch_response':
      return ticketResult(() => edge.handleFetch(inp.ticket,
        { status: inp.status, headers: pairs('headers'), body: Buffer.from(inp.body, 'utf8') }, now))
    case 'fetch_failure':
      return ticketResult(() => edge.handleFetch(inp.ticket, inp.detail, now))
    case 'shared_lookup': {
      const r = inp.result
      if (r === 'not_found') return ticketResult(() => edge.handleSharedLookup(inp.ticket, null, false, now))
      if (r === 'error') return ticketResult(() => edge.handleSharedLookup(inp.ticket, null, true, now))
      return ticketResult(() => edge.handleSharedLookup(inp.ticket, r.found, false, now))
    }
    case 'revocation':
      return revocationResult(() => edge.handleRevocation(inp.selector, inp.origin, now))
    case 'admin': {
      const { answer, step } = edge.handleAdmin({
        route: inp.route, listener: inp.listener, method: inp.method, authorization: inp.authorization,
        contentType: inp.content_type, body: Buffer.from(inp.body, 'utf8'),
      }, now)
      return [step, { status: answer.status, headers: answer.headers.map(([n, v]) => [n, v]), body: answer.body }]
    }
    case 'upstream_headers': {
      const hop = inp.hop === 'in_process'
        ? 'in_process'
        : { peer: inp.hop.proxy.peer, proto: inp.hop.proxy.proto, upstreamAuthority: inp.hop.proxy.upstream_authority }
      const u = edge.upstreamHeaders(pairs('inbound'), inp.header_value, hop)
      return [null, { drop: [...u.drop], set: u.set.map(([n, v]) => [n, v]) }]
    }
    case 'security_event':
      return revocationResult(() => edge.handleSecurityEvent(inp.set, now))
    case 'timeout':
      return [edge.handleTimeout(now), undefined]
    default:
      throw new Error(`unknown input type ${inp.type}`)
  }
}

function replay(file, viaNative = false) {
  const c = JSON.parse(fs.readFileSync(path.join(CASES_DIR, file), 'utf8'))
  const edge = new Edge(c.config, Buffer.from(c.seed, 'hex'), c.start)
  let last = edge.initialStep()
  checkStep(last, c.initial ?? [], undefined, 'initial step')
  c.steps.forEach((step, i) => {
    const what = `step ${i} (${step.input.type})`
    const [produced, result] = apply(edge, step.now, step.input, viaNative)
    if (produced === null) {
      // No step (a policy call, or a refused input): nothing was produced, and the timer stands.
      assert.deepEqual(step.expect, [], `${what}: expected actions without a step`)
      if ('timeout' in step) assert.equal(last.wakeAt, step.timeout, `${what}: wakeAt differs`)
    } else {
      checkStep(produced, step.expect, step.timeout, what)
      last = produced
    }
    assert.deepEqual(result, step.result, `${what}: result differs`)
  })
}

test('all 74 vector cases are present', () => {
  assert.equal(CASES.length, 74)
})

for (const file of CASES) {
  test(`vector ${file.replace(/\.json$/, '')}`, () => replay(file))
  test(`vector ${file.replace(/\.json$/, '')} (requests through the native method)`, () => replay(file, true))
}
