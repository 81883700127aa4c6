'use strict'
// An orders API served twice from one config file: by Express (phantom-edge/express middleware)
// and by Fastify (phantom-edge/fastify plugin). The handlers see the edge's JWT in Authorization,
// never the client's opaque token, and the token's claims in req.phantomEdge.
//
//   export PHANTOM_EDGE_CLIENT_SECRET=gateway-secret
//   export PHANTOM_EDGE_SIGNING_KEY="$(cat tests/vectors/keys/edge-ed25519.pem)"
//   export PHANTOM_EDGE_ADMIN_TOKEN=admin-secret-0123456789
//   (cd tests/e2e/authorization-server && npm ci && node server.mjs) &   # READY http://127.0.0.1:3000
//   (cd host-examples/node-express && npm ci && node app.js)             # Express :8081, Fastify :8082
//   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8081/orders/7
const path = require('node:path')
const express = require('express')
const Fastify = require('fastify')
const { phantomToken } = require('phantom-edge/express')
const phantomEdge = require('phantom-edge/fastify')

const CONFIG = process.env.PHANTOM_EDGE_CONFIG || path.join(__dirname, 'phantom-edge.toml')

function order(id, claims, authorization) {
  return {
    order: Number(id),
    client_id: claims.clientId ?? null,
    scopes: claims.scopes,
    // "Bearer <JWT minted by the edge>": what a backend behind the edge verifies.
    upstream_authorization: authorization,
  }
}

function createExpressApp(config = CONFIG, options = {}) {
  const app = express()
  const edge = phantomToken(config, options)
  app.use(edge)
  app.get('/orders/:id', (req, res) => res.json(order(req.params.id, req.phantomEdge, req.headers.authorization)))
  app.post('/orders/write', (req, res) => res.status(201).json({ created: true, client_id: req.phantomEdge.clientId ?? null }))
  app.close = () => edge.close()
  return app
}

async function createFastifyApp(config = CONFIG, options = {}) {
  const app = Fastify({ logger: options.logger ?? false })
  await app.register(phantomEdge, { config, ...options, logger: undefined })
  app.get('/orders/:id', async (request) => order(request.params.id, request.phantomEdge, request.headers.authorization))
  app.post('/orders/write', async (request, reply) => reply.code(201).send({ created: true, client_id: request.phantomEdge.clientId ?? null }))
  return app
}

async function main() {
  const expressPort = Number(process.env.EXPRESS_PORT || 8081)
  const fastifyPort = Number(process.env.FASTIFY_PORT || 8082)
  const host = process.env.HOST || '127.0.0.1'
  const e = createExpressApp()
  const server = e.listen(expressPort, host)
  await new Promise((resolve) => server.once('listening', resolve))
  const f = await createFastifyApp(CONFIG, { logger: { level: 'info' } })
  await f.listen({ port: fastifyPort, host })
  console.log(`READY express=http://${host}:${server.address().port} fastify=http://${host}:${f.server.address().port}`)
  const stop = async () => {
    server.close()
    await Promise.all([e.close(), f.close()])
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err.message)
    process.exit(1)
  })
}

module.exports = { createExpressApp, createFastifyApp, CONFIG }
