// Compiled (not run) by ci.sh with `tsc -p test/types`: the published types describe the API.
import { Edge, PhantomEdge, loadConfig, ConfigError, RevocationError, EdgeError, auditJson, redactQueryTokens } from 'phantom-edge'
import type { Action, DecidedForward, Decision, TokenClaims } from 'phantom-edge'
import { phantomToken } from 'phantom-edge/express'
import phantomEdge from 'phantom-edge/fastify'
import type { FastifyInstance } from 'fastify'

const config = loadConfig({ authorization_server: { issuer: 'https://as.example' } })
const edge = new Edge(config, null, Date.now())
edge.handleRequest(1, 'GET', 'https', 'api.example', '/orders/1', [['authorization', 'Bearer x']])
edge.auditActions = false
const a: Action | null = edge.pollAction()
if (a !== null) {
  switch (a.type) {
    case 'forward': {
      const claims: TokenClaims = a.token
      const scopes: string[] = claims.scopes
      const header: string = a.headerValue
      void scopes; void header
      break
    }
    case 'reject': {
      const status: number = a.status
      const challenge: string | undefined = a.wwwAuthenticate
      void status; void challenge
      break
    }
    case 'introspect': {
      const pairs: Array<[string, string]> = a.headers
      edge.handleIntrospectionResponse(a.ticket, 200, pairs, Buffer.from('{}'))
      break
    }
    case 'audit':
      console.log(auditJson(a))
      break
    case 'fetchJwks':
    case 'sharedLookup':
    case 'sharedPublish':
      break
  }
}
edge.handleRevocation({ sub: 'alice' }, 'shared')

async function host(): Promise<void> {
  const pe = new PhantomEdge('phantom-edge.toml', { fetch: globalThis.fetch, logger: console })
  const d: Decision = await pe.authorize({ method: 'GET', url: 'https://api.example/orders/1', headers: { authorization: 'Bearer x' } })
  if (d.type === 'forward') {
    const f: DecidedForward = d
    const strip: readonly string[] = f.stripHeaders
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
