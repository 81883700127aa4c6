'use strict'
// Helpers for the end-to-end tests against the real oidc-provider fixture
// (tests/e2e/authorization-server), and the two host apps under test (Express and Fastify).
const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')

const REPO = path.resolve(__dirname, '../../..')
const AS_DIR = path.join(REPO, 'tests/e2e/authorization-server')
const EDGE_KEY = fs.readFileSync(path.join(REPO, 'tests/vectors/keys/edge-ed25519.pem'), 'utf8')
const ADMIN_TOKEN = 'admin-secret-0123456789'

function basic(id, secret) {
  return 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64')
}

class AuthServer {
  // `port` 0 picks a free one; a fixed port (freePort()) lets a test start an edge before its AS.
  static async start(port = 0) {
    if (!fs.existsSync(path.join(AS_DIR, 'node_modules/oidc-provider'))) {
      execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: AS_DIR, stdio: 'ignore' })
    }
    const proc = spawn(process.execPath, ['server.mjs'], {
      cwd: AS_DIR,
      env: { ...process.env, AS_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    const line = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('authorization server did not start in 30 s')), 30_000)
      const rl = readline.createInterface({ input: proc.stdout })
      rl.once('line', (l) => { clearTimeout(timer); rl.close(); resolve(l.trim()) })
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`authorization server exited ${code}`)) })
    })
    if (!line.startsWith('READY ')) throw new Error(`authorization server did not start: ${line}`)
    const s = new AuthServer()
    s.proc = proc
    s.issuer = line.slice(6)
    return s
  }

  async token(scope = 'orders:read') {
    const r = await fetch(`${this.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic('app', 'app-secret'), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope }),
    })
    if (r.status !== 200) throw new Error(`token endpoint: ${r.status}`)
    return (await r.json()).access_token
  }

  async revoke(token) {
    const r = await fetch(`${this.issuer}/token/revocation`, {
      method: 'POST',
      headers: { authorization: basic('gateway', 'gateway-secret'), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    })
    if (r.status !== 200) throw new Error(`revocation endpoint: ${r.status}`)
  }

  async stop() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return
    const exited = new Promise((resolve) => this.proc.once('exit', resolve))
    this.proc.kill('SIGTERM')
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(t)
  }
}

// A loopback port nothing listens on now (for a server started later).
async function freePort() {
  const net = require('node:net')
  return await new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function edgeConfig(issuer, middleware) {
  const cfg = {
    authorization_server: {
      issuer,
      introspection_endpoint: `${issuer}/token/introspection`,
      jwks_uri: `${issuer}/jwks`,
      client_id: 'gateway',
      client_secret: 'gateway-secret',
      dialect: 'rfc9701',
      timeout: '2s',
    },
    cache: { ignore_no_store: true },
    assertions: { signing_key: EDGE_KEY, kid: 'edge-1' },
    admin: { token: ADMIN_TOKEN },
    routes: [
      { path_prefix: '/orders/write', required_scopes: ['orders:write'], audience: 'orders-api' },
      { path_prefix: '/orders', required_scopes: ['orders:read'], audience: 'orders-api' },
    ],
  }
  if (middleware) cfg.middleware = middleware
  return cfg
}

/** A fetch that counts the introspection calls it makes. */
function countingFetch() {
  const counter = { introspections: 0, jwks: 0 }
  const f = (url, init) => {
    const u = String(url)
    if (u.endsWith('/token/introspection')) counter.introspections++
    if (u.endsWith('/jwks')) counter.jwks++
    return fetch(url, init)
  }
  return { fetch: f, counter }
}

/** Collects log lines (both a `{debug, info}` logger and a writable stream for pino). */
function logCapture() {
  const lines = []
  return {
    lines,
    logger: { debug: (l) => lines.push(String(l)), info: (l) => lines.push(String(l)) },
    stream: { write: (l) => { lines.push(String(l)) } },
    text: () => lines.join('\n'),
  }
}

function echoBody(headers, rawHeaders, claims) {
  return { authorization: headers.authorization ?? null, rawHeaders, claims }
}

/** An Express app behind phantomToken, listening on 127.0.0.1. */
async function startExpress(config, options) {
  const express = require('express')
  const { phantomToken } = require('phantom-edge/express')
  const app = express()
  const mw = phantomToken(config, options)
  app.use(mw)
  const echo = (req, res) => res.json(echoBody(req.headers, req.rawHeaders, req.phantomEdge))
  app.get('/orders/write', echo)
  app.get('/orders/:id', echo)
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    edge: mw.edge,
    async close() {
      server.closeAllConnections?.()
      await new Promise((resolve) => server.close(resolve))
      await mw.close()
    },
  }
}

/** A Fastify app with the phantom-edge plugin, listening on 127.0.0.1. */
async function startFastify(config, options, capture) {
  const Fastify = require('fastify')
  const phantomEdge = require('phantom-edge/fastify')
  const app = Fastify(capture ? { logger: { level: 'debug', stream: capture.stream } } : { logger: false })
  await app.register(phantomEdge, { config, ...options })
  const echo = async (request) => echoBody(request.headers, request.raw.rawHeaders, request.phantomEdge)
  app.get('/orders/write', echo)
  app.get('/orders/:id', echo)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    url: `http://127.0.0.1:${app.server.address().port}`,
    edge: app.phantomEdge,
    async close() {
      await app.close()
    },
  }
}

module.exports = { REPO, AS_DIR, EDGE_KEY, ADMIN_TOKEN, AuthServer, freePort, edgeConfig, countingFetch, logCapture, startExpress, startFastify }
