import fs from 'node:fs'
import crypto from 'node:crypto'
import * as jose from 'jose'
import { Edge } from 'phantom-edge'
const KEYS = '/work/main/tests/vectors/keys'
const EDGE_KEY = fs.readFileSync(KEYS + '/edge-ed25519.pem', 'utf8')
const AS_KEY = fs.readFileSync(KEYS + '/as-es256.pem', 'utf8')
const ISS = 'https://as.example'
const config = {
  authorization_server: { issuer: ISS, introspection_endpoint: `${ISS}/introspect`, jwks_uri: `${ISS}/jwks`, client_id: 'gateway', client_secret: 'gateway-secret', dialect: 'rfc9701' },
  cache: { ignore_no_store: true }, assertions: { signing_key: EDGE_KEY, kid: 'edge-1' },
  routes: [{ path_prefix: '/orders', required_scopes: ['orders:read'], audience: 'orders-api' }],
}
const asPrivate = crypto.createPrivateKey(AS_KEY); const asPublic = crypto.createPublicKey(asPrivate)
const jwks = JSON.stringify({ keys: [{ ...asPublic.export({ format: 'jwk' }), kid: 'as-es256', alg: 'ES256', use: 'sig' }] })
const now = Math.floor(Date.now()/1000)
const c = { active: true, client_id: 'app', sub: 'alice', scope: 'orders:read', aud: 'orders-api', iss: ISS, exp: now + 600, iat: now }
const answer = await new jose.SignJWT({ token_introspection: c, aud: 'gateway', iss: ISS, iat: now }).setProtectedHeader({ alg: 'ES256', typ: 'token-introspection+jwt', kid: 'as-es256' }).sign(asPrivate)
const edge = new Edge(config); edge.drainActions(); edge.handleJwks(jwks); edge.drainActions(); edge.auditActions = false
let rid = 0
edge.handleRequest(++rid, 'GET', 'https', 'api.example', '/orders/1', [['authorization', 'Bearer tok-hit']], null, Date.now())
let intro; for (let a; (a = edge.pollAction()) !== null;) if (a.type === 'introspect') intro = a
edge.handleIntrospectionResponse(intro.ticket, 200, [['content-type', 'application/token-introspection+jwt']], answer, Date.now())
while (edge.pollAction() !== null);
const H = [['authorization', 'Bearer tok-hit']]
const fn = edge._decideBearer
function time(name, f) {
  for (let i = 0; i < 200000; i++) f()
  const N = 3_000_000
  let best = Infinity
  for (let r = 0; r < 5; r++) { const t = process.hrtime.bigint(); for (let i = 0; i < N; i++) f(); best = Math.min(best, Number(process.hrtime.bigint() - t) / N) }
  console.log(name.padEnd(40), best.toFixed(1), 'ns')
}
let x = 0
time('empty', () => { x++ })
time('Date.now', () => { x += Date.now() })
time('decide', () => { const f = edge.decide(++rid, 'GET', 'https', 'api.example', '/orders/1', H, null, Date.now()); if (f.type !== 'forward') throw 1 })
time('raw fn', () => { const f = fn(++rid, 'GET', 'https', 'api.example', '/orders/1', 'Bearer tok-hit', Date.now()); if (f.type !== 'forward') throw 1 })
time('raw fn no now', () => { const f = fn(++rid, 'GET', 'https', 'api.example', '/orders/1', 'Bearer tok-hit', null); if (f.type !== 'forward') throw 1 })
time('raw fn no auth (reject)', () => { const f = fn(++rid, 'GET', 'https', 'api.example', '/orders/1', null, 1); })
