// Cache-hit and miss decisions through the Node binding, side by side in one run with a peer
// written the way a Node team would today (fetch + jose + lru-cache; the HTTP call replaced on both
// sides by the same in-process answer, so both do the same work).
//
//   cd bindings/node && npm ci
//   npx napi build --platform --release --output-dir ../../target/node-release
//   NAPI_RS_NATIVE_LIBRARY_PATH=$PWD/../../target/node-release/phantom-edge.linux-x64-gnu.node \
//     node benchmarks/bench.mjs
//
// BENCH_TIME (ms per task, default 2000) sets the measuring time.
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { Bench } from 'tinybench'
import { LRUCache } from 'lru-cache'
import * as jose from 'jose'

import { Edge, PhantomEdge } from 'phantom-edge'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const KEYS = path.resolve(HERE, '../../../tests/vectors/keys')
const EDGE_KEY = fs.readFileSync(path.join(KEYS, 'edge-ed25519.pem'), 'utf8')
const AS_KEY = fs.readFileSync(path.join(KEYS, 'as-es256.pem'), 'utf8')
const ISS = 'https://as.example'
const TIME = Number(process.env.BENCH_TIME || 2000)

if (!process.env.NAPI_RS_NATIVE_LIBRARY_PATH) {
  console.error('warning: NAPI_RS_NATIVE_LIBRARY_PATH is not set: measuring whatever .node is in bindings/node (debug from ci.sh?)')
}

const config = {
  authorization_server: {
    issuer: ISS, introspection_endpoint: `${ISS}/introspect`, jwks_uri: `${ISS}/jwks`,
    client_id: 'gateway', client_secret: 'gateway-secret', dialect: 'rfc9701',
    max_introspections_per_second: 1_000_000, // the miss benchmark makes new tokens as fast as it can
  },
  cache: { ignore_no_store: true },
  assertions: { signing_key: EDGE_KEY, kid: 'edge-1' },
  routes: [{ path_prefix: '/orders', required_scopes: ['orders:read'], audience: 'orders-api' }],
}

const nowS = () => Math.floor(Date.now() / 1000)
const claims = (now) => ({ active: true, client_id: 'app', sub: 'alice', scope: 'orders:read', aud: 'orders-api', iss: ISS, exp: now + 600, iat: now })

const asPrivate = crypto.createPrivateKey(AS_KEY)
const asPublic = crypto.createPublicKey(asPrivate)
const jwks = JSON.stringify({ keys: [{ ...asPublic.export({ format: 'jwk' }), kid: 'as-es256', alg: 'ES256', use: 'sig' }] })

// One signed RFC 9701 answer, reused (it does not name the token); iat stays within the core's
// 60 s response_max_age for the run. Re-signed for each benchmark group.
async function es256Answer() {
  const now = nowS()
  return new jose.SignJWT({ token_introspection: claims(now), aud: 'gateway', iss: ISS, iat: now })
    .setProtectedHeader({ alg: 'ES256', typ: 'token-introspection+jwt', kid: 'as-es256' })
    .sign(asPrivate)
}

const ANSWER_HEADERS = [['content-type', 'application/token-introspection+jwt']]

// -- phantom-edge ------------------------------------------------------------------------------

function newEdge() {
  const edge = new Edge(config)
  const [jwksFetch] = edge.initialStep().fetches
  edge.handleFetch(jwksFetch.ticket, { status: 200, headers: [['content-type', 'application/json']], body: jwks })
  return edge
}

let rid = 0
/** One request through the Step API: its decision, or the introspection it needs. */
function edgeRequest(edge, token, handle = edge.handleRequest) {
  const step = handle.call(edge, ++rid, 'GET', 'https', 'api.example', '/orders/1', `Bearer ${token}`, null, null, Date.now())
  const d = step.decisions[0] ?? step.fetches[0]
  if (d === undefined) throw new Error('no decision')
  return d
}

function edgeMiss(edge, token, answer) {
  const fetch = edgeRequest(edge, token)
  assert.equal(fetch.kind, 'introspection')
  const step = edge.handleFetch(fetch.ticket, { status: 200, headers: ANSWER_HEADERS, body: answer }, Date.now())
  if (step.decisions.length === 0) throw new Error('no decision')
  return step.decisions[0]
}

// -- the peer: what a Node team writes today ---------------------------------------------------

class Peer {
  constructor() {
    this.cache = new LRUCache({ max: 100_000, ttl: 300_000 })
    this.signingKey = crypto.createPrivateKey(EDGE_KEY)
    this.asKey = asPublic
  }

  async mint(c) {
    const now = nowS()
    return new jose.SignJWT({ sub: c.sub, client_id: c.client_id, scope: 'orders:read', jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: 'edge-1' })
      .setIssuer('phantom-edge').setAudience('orders-api').setIssuedAt(now).setExpirationTime(Math.min(now + 60, c.exp))
      .sign(this.signingKey)
  }

  hit(header) {
    if (!header.startsWith('Bearer ')) return { status: 401 }
    const key = crypto.createHash('sha256').update(header.slice(7)).digest('base64url')
    const entry = this.cache.get(key)
    if (entry === undefined) return undefined
    const { c, minted } = entry
    if (c.exp <= Date.now() / 1000 || !c.scope.split(' ').includes('orders:read') || c.aud !== 'orders-api') return { status: 401 }
    return { headerName: 'authorization', headerValue: `Bearer ${minted}`, claims: c }
  }

  // The fetch would return `answer`; verify it (jose), check, mint, cache, then decide.
  async miss(header, answer) {
    const { payload } = await jose.jwtVerify(answer, this.asKey, {
      algorithms: ['ES256'], issuer: ISS, audience: 'gateway', typ: 'token-introspection+jwt', maxTokenAge: '60s',
    })
    const c = payload.token_introspection
    if (!c || c.active !== true || c.iss !== ISS) return { status: 401 }
    const key = crypto.createHash('sha256').update(header.slice(7)).digest('base64url')
    this.cache.set(key, { c, minted: await this.mint(c) })
    return this.hit(header)
  }
}

// -- run -------------------------------------------------------------------------------------

async function main() {
  const answer = await es256Answer()

  // Hit setup: one cached token on each side.
  const edge = newEdge()
  assert.equal(edgeMiss(edge, 'tok-hit', answer).type, 'forward')
  // The host's fetch answers the JWKS and the introspection in process.
  const fakeFetch = async (url) => url.endsWith('/jwks')
    ? new Response(jwks, { status: 200, headers: { 'content-type': 'application/json' } })
    : new Response(answer, { status: 200, headers: { 'content-type': 'application/token-introspection+jwt' } })
  const host = new PhantomEdge(config, { fetch: fakeFetch })
  await new Promise((resolve) => setTimeout(resolve, 50)) // the initial JWKS fetch
  const hostReq = { method: 'GET', url: 'https://api.example/orders/1', headers: { authorization: 'Bearer tok-hit' } }
  assert.equal((await host.authorize(hostReq)).type, 'forward')
  // The same with a logger at info level (pino-like): routine audit kinds muted, others logged.
  const infoLogger = { info() {}, debug() {}, isLevelEnabled: (l) => l !== 'debug' }
  const logged = new PhantomEdge(config, { fetch: fakeFetch, logger: infoLogger })
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal((await logged.authorize(hostReq)).type, 'forward')
  const peer = new Peer()
  assert.ok((await peer.miss('Bearer tok-hit', answer)).headerValue)

  const hitBench = new Bench({ name: 'cache hit', time: TIME, warmupTime: 300 })
  const quiet = newEdge()
  quiet.auditActions = false
  assert.equal(edgeMiss(quiet, 'tok-hit', answer).type, 'forward')
  const nativeHandle = Object.getPrototypeOf(Edge.prototype).handleRequest
  hitBench
    .add('hit: phantom-edge Edge.handleRequest (Step: audits + Forward with claims; audit on)', () => {
      const f = edgeRequest(edge, 'tok-hit')
      if (f.type !== 'forward') throw new Error(f.type)
    })
    .add('hit: phantom-edge Edge.handleRequest (one call → Step with the Forward; auditActions = false)', () => {
      const step = quiet.handleRequest(++rid, 'GET', 'https', 'api.example', '/orders/1', 'Bearer tok-hit', null, null, Date.now())
      if (step.decisions[0].type !== 'forward') throw new Error('no forward')
    })
    .add('hit: phantom-edge native handleRequest method (napi-rs method, no bearerRequest; auditActions = false)', () => {
      const f = edgeRequest(quiet, 'tok-hit', nativeHandle)
      if (f.type !== 'forward') throw new Error('no forward')
    })
    .add('hit: peer (sha256 + lru-cache + checks), sync', () => {
      const r = peer.hit('Bearer tok-hit')
      if (!r.headerValue) throw new Error('peer')
    })
    .add('hit: phantom-edge PhantomEdge.authorize (await; no logger)', async () => {
      const f = await host.authorize(hostReq)
      if (f.type !== 'forward') throw new Error(f.type)
    })
    .add('hit: phantom-edge PhantomEdge.authorize (await; logger at info level)', async () => {
      const f = await logged.authorize(hostReq)
      if (f.type !== 'forward') throw new Error(f.type)
    })
    .add('hit: peer, async (await of the same function)', async () => {
      const r = await Promise.resolve(peer.hit('Bearer tok-hit'))
      if (!r.headerValue) throw new Error('peer')
    })
  await hitBench.run()
  print(hitBench)

  // Miss: a new token each iteration; the same ES256 answer; verify + mint on both sides.
  const answer2 = await es256Answer()
  const missEdge = newEdge()
  const missPeer = new Peer()
  let n = 0
  const missBench = new Bench({ name: 'miss', time: TIME, warmupTime: 300 })
  missBench
    .add('miss: phantom-edge Edge (introspection fetch → ES256 RFC 9701 verify → EdDSA mint → Forward)', () => {
      const f = edgeMiss(missEdge, `tok-miss-${++n}`, answer2)
      if (f.type !== 'forward') throw new Error(`${f.type} ${f.reason}`)
    })
    .add('miss: peer (jose jwtVerify ES256 + jose SignJWT EdDSA + lru-cache)', async () => {
      const r = await missPeer.miss(`Bearer tok-miss-${++n}`, answer2)
      if (!r.headerValue) throw new Error('peer')
    })
  await missBench.run()
  print(missBench)
  await host.close()
  await logged.close()
}

function print(bench) {
  console.log(`\n## ${bench.name}  (node ${process.version}, ${new Date().toISOString()})`)
  const rows = bench.tasks.map((t) => {
    const r = t.result
    if (r?.latency == null) return { task: t.name, error: String(r?.error ?? 'no result') }
    const lat = r.latency
    return { task: t.name, 'median (µs)': (lat.p50 * 1000).toFixed(3), 'mean (µs)': (lat.mean * 1000).toFixed(3), 'ops/s': Math.round(r.throughput.mean), samples: lat.samplesCount ?? lat.samples?.length }
  })
  console.table(rows)
}

await main()
