// Compiled (not run) by ci.sh with `tsc -p test/types`: the published types describe the API.
import { Edge, PhantomEdge, loadConfig, ConfigError, RevocationError, EdgeError, auditJson, redactQueryTokens } from 'phantom-edge'
import type { Decision, Step, TokenClaims } from 'phantom-edge'
import { phantomToken } from 'phantom-edge/express'
import phantomEdge from 'phantom-edge/fastify'
import type { FastifyInstance } from 'fastify'

const config = loadConfig({ authorization_server: { issuer: 'https://as.example' } })
const edge = new Edge(config, null, Date.now())
edge.auditActions = false
const first: Step = edge.initialStep()
void first
const step: Step = edge.handleRequest(1, 'GET', 'https', 'api.example', '/orders/1', 'Bearer x')
for (const d of step.decisions) {
  switch (d.type) {
    case 'forward': {
      const claims: TokenClaims = d.token
      const scopes: string[] = claims.scopes
      const up = edge.upstreamHeaders([['authorization', 'Bearer x']], d.headerValue, 'in_process')
      const drop: number[] = up.drop
      void scopes; void drop
      break
    }
    case 'reject': {
      const status: number = d.status
      const challenge: string | undefined = d.wwwAuthenticate
      void status; void challenge
      break
    }
  }
}
for (const f of step.fetches) {
  const pairs: Array<[string, string]> = f.headers
  const next: Step = edge.handleFetch(f.ticket, { status: 200, headers: pairs, body: Buffer.from('{}') })
  edge.handleFetch(f.ticket, 'connection refused')
  void next
}
for (const a of step.audits) console.log(auditJson(a))
const wake: number | null = step.wakeAt
void wake
const { answer } = edge.handleAdmin({ route: 'metrics', listener: 'app', method: 'GET', authorization: null })
const status: number = answer.status
void status
edge.handleRevocation({ sub: 'alice' }, 'shared')

async function host(): Promise<void> {
  const pe = new PhantomEdge('phantom-edge.toml', { fetch: globalThis.fetch, logger: console })
  const d: Decision = await pe.authorize({ method: 'GET', url: 'https://api.example/orders/1', headers: { authorization: 'Bearer x' } })
  if (d.type === 'forward') {
    const strip: readonly string[] = d.stripHeaders
    void strip
  } else {
    void d.body
  }
  const r: { status: number; body: string } = await pe.revoke('application/json', null, '{}')
  void r
  await pe.close()
}

try {
  loadConfig('nope.toml')
} catch (e) {
  if (e instanceof ConfigError) {
    const field: string = e.field
    const code: 'PHANTOM_EDGE_CONFIG' = e.code
    void field; void code
  } else if (e instanceof RevocationError) {
    void e.status
  } else if (e instanceof EdgeError) {
    void e.ticket
  }
}

const mw = phantomToken({ routes: [] }, { revocationPath: '/revoke' })
void mw.edge
async function fastify(app: FastifyInstance): Promise<void> {
  await app.register(phantomEdge, { config: 'phantom-edge.toml' })
  app.get('/x', async (request) => request.phantomEdge?.clientId ?? null)
}
void host; void fastify

const redacted: string | null = redactQueryTokens('/orders/1?access_token=x')
void redacted
