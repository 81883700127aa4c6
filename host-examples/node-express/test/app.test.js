'use strict'
// The example app against the real authorization server: both hosts, one shared config file
// (a copy with the test AS's issuer; everything else as committed).
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const { AuthServer, EDGE_KEY, ADMIN_TOKEN } = require('../../../bindings/node/test/support.js')
const { createExpressApp, createFastifyApp, CONFIG } = require('../app.js')

let as
let configPath
before(async () => {
  as = await AuthServer.start()
  const text = fs.readFileSync(CONFIG, 'utf8').replaceAll('http://127.0.0.1:3000', as.issuer)
  assert.ok(text.includes(`issuer = "${as.issuer}"`))
  configPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pe-example-')), 'phantom-edge.toml')
  fs.writeFileSync(configPath, text)
  process.env.PHANTOM_EDGE_CLIENT_SECRET = 'gateway-secret'
  process.env.PHANTOM_EDGE_SIGNING_KEY = EDGE_KEY
  process.env.PHANTOM_EDGE_ADMIN_TOKEN = ADMIN_TOKEN
})
after(async () => {
  await as?.stop()
})

async function listenExpress() {
  const app = createExpressApp(configPath)
  const server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)) })
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: async () => { server.closeAllConnections(); await new Promise((r) => server.close(r)); await app.close() },
  }
}

async function listenFastify() {
  const app = await createFastifyApp(configPath)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { url: `http://127.0.0.1:${app.server.address().port}`, close: () => app.close() }
}

for (const [name, listen] of [['express', listenExpress], ['fastify', listenFastify]]) {
  describe(`example app (${name})`, () => {
    let app
    before(async () => { app = await listen() })
    after(async () => { await app?.close() })

    it('forwards a valid token as the edge JWT and exposes the claims', async () => {
      const token = await as.token('orders:read')
      const r = await fetch(`${app.url}/orders/7`, { headers: { authorization: `Bearer ${token}` } })
      const text = await r.text()
      assert.equal(r.status, 200, text)
      const body = JSON.parse(text)
      assert.equal(body.order, 7)
      assert.equal(body.client_id, 'app')
      assert.deepEqual(body.scopes, ['orders:read'])
      assert.match(body.upstream_authorization, /^Bearer eyJ[\w-]+\.[\w-]+\.[\w-]+$/)
      assert.ok(!text.includes(token))
    })

    it('rejects: missing 401, wrong scope 403', async () => {
      const missing = await fetch(`${app.url}/orders/7`)
      assert.equal(missing.status, 401)
      assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="phantom-edge"')
      const token = await as.token('orders:read')
      const write = await fetch(`${app.url}/orders/write`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
      assert.equal(write.status, 403)
      const both = await as.token('orders:read orders:write')
      const ok = await fetch(`${app.url}/orders/write`, { method: 'POST', headers: { authorization: `Bearer ${both}` } })
      assert.equal(ok.status, 201)
    })

    it('serves the revocation and metrics routes from [middleware]', async () => {
      const token = await as.token('orders:read')
      assert.equal((await fetch(`${app.url}/orders/1`, { headers: { authorization: `Bearer ${token}` } })).status, 200)
      const r = await fetch(`${app.url}/_phantom/revocations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: 'app' }),
      })
      assert.equal(r.status, 204)
      assert.equal((await fetch(`${app.url}/orders/1`, { headers: { authorization: `Bearer ${token}` } })).status, 401)
      assert.equal((await fetch(`${app.url}/_phantom/metrics`)).status, 401)
      const m = await fetch(`${app.url}/_phantom/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
      assert.equal(m.status, 200)
      assert.match(await m.text(), /phantom_edge_revocations_total 1/)
    })
  })
}
