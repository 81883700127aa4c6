// Test-only OAuth 2.0 authorization server fixture for phantom-edge end-to-end tests.
//
// Built on panva's oidc-provider. Issues OPAQUE client-credentials access tokens for the
// "orders" resource server (Bearer, or DPoP-bound when the token request carries an RFC 9449
// proof), and exposes RFC 7662 introspection (plain JSON and RFC 9701 JWT responses),
// RFC 7009 revocation and a stable JWKS (fixed keys from keys.json).
//
// Environment:
//   AS_HOST                 listen address                     (default 127.0.0.1)
//   AS_PORT                 listen port, 0 = pick a free port  (default 3000)
//   AS_ISSUER               issuer identifier                  (default http://127.0.0.1:<actual port>)
//   AS_ACCESS_TOKEN_TTL     client-credentials token lifetime in seconds (default 600)
//   AS_GATEWAY_CLIENT_ID / AS_GATEWAY_CLIENT_SECRET   (default gateway / gateway-secret)
//   AS_APP_CLIENT_ID / AS_APP_CLIENT_SECRET           (default app / app-secret)
//
// Prints exactly one line `READY <issuer>` on stdout once it accepts connections.
// All diagnostics go to stderr.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

function envInt(name, fallback, { min = 0 } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const HOST = process.env.AS_HOST || '127.0.0.1';
const PORT = envInt('AS_PORT', 3000);
const ACCESS_TOKEN_TTL = envInt('AS_ACCESS_TOKEN_TTL', 600, { min: 1 });

const GATEWAY_CLIENT_ID = process.env.AS_GATEWAY_CLIENT_ID || 'gateway';
const GATEWAY_CLIENT_SECRET = process.env.AS_GATEWAY_CLIENT_SECRET || 'gateway-secret';
const APP_CLIENT_ID = process.env.AS_APP_CLIENT_ID || 'app';
const APP_CLIENT_SECRET = process.env.AS_APP_CLIENT_SECRET || 'app-secret';

// The one protected API known to this AS. Resource indicators (RFC 8707) must be absolute
// URIs, so the resource is identified by https://orders.example and the issued tokens carry
// aud "orders-api".
const ORDERS_RESOURCE = 'https://orders.example';
const RESOURCE_SERVERS = {
  [ORDERS_RESOURCE]: {
    audience: 'orders-api',
    scope: 'orders:read orders:write',
    accessTokenFormat: 'opaque',
  },
};

// TEST-ONLY fixed signing keys (ES256 first, RS256 second) so the JWKS is stable across restarts.
const { keys } = JSON.parse(readFileSync(new URL('./keys.json', import.meta.url), 'utf8'));

function configuration() {
  return {
    clients: [
      {
        // The phantom-token gateway: a pure introspection/revocation client.
        client_id: GATEWAY_CLIENT_ID,
        client_secret: GATEWAY_CLIENT_SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        introspection_signed_response_alg: 'ES256',
      },
      {
        // A confidential API client that obtains access tokens with client_credentials.
        client_id: APP_CLIENT_ID,
        client_secret: APP_CLIENT_SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'orders:read orders:write',
      },
    ],
    jwks: { keys },
    // Fixed cookie signing keys (test-only); the client_credentials/introspection flows use no cookies.
    cookies: { keys: ['phantom-edge-e2e-test-only-cookie-key'] },
    // Scopes a client may be registered for (client `scope` metadata must be a subset of these).
    scopes: ['orders:read', 'orders:write'],
    claims: {},
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // The gateway may introspect any token; every other client only its own tokens.
        allowedPolicy(ctx, client, token) {
          return client.clientId === GATEWAY_CLIENT_ID || client.clientId === token.clientId;
        },
      },
      jwtIntrospection: { enabled: true },
      // DPoP (RFC 9449) sender-constrained tokens: a token request carrying a `DPoP` proof gets a
      // token bound to the proof's key (token_type DPoP, introspection `cnf.jkt`); one without
      // gets a plain Bearer token, as before. No nonces (no `nonceSecret`, `requireNonce` false),
      // so a client's first proof is accepted and tests stay deterministic; proof jtis are
      // single-use (`allowReplay` false). Algorithms: oidc-provider's default (ES256, EdDSA).
      dPoP: {
        enabled: true,
        requireNonce: () => false,
        allowReplay: false,
      },
      revocation: {
        enabled: true,
        // The gateway may revoke any token; every other client only its own tokens.
        // (For foreign tokens the revocation endpoint still answers 200 and does nothing.)
        allowedPolicy(ctx, client, token) {
          return client.clientId === GATEWAY_CLIENT_ID || client.clientId === token.clientId;
        },
      },
      resourceIndicators: {
        enabled: true,
        // A client_credentials request without `resource` is treated as resource=https://orders.example.
        defaultResource(ctx, client, oneOf) {
          return oneOf || ORDERS_RESOURCE;
        },
        getResourceServerInfo(ctx, resourceIndicator, client) {
          const info = RESOURCE_SERVERS[resourceIndicator];
          if (!info) {
            throw new errors.InvalidTarget(`unknown resource indicator ${resourceIndicator}`);
          }
          // Only grant the scopes the client is registered for.
          const allowed = new Set((client.scope || '').split(' ').filter(Boolean));
          const scope = info.scope.split(' ').filter((s) => allowed.has(s)).join(' ');
          return { ...info, scope };
        },
      },
    },
    ttl: {
      ClientCredentials: ACCESS_TOKEN_TTL,
    },
  };
}

function log(...args) {
  console.error('[authorization-server]', ...args);
}

const server = createServer();
server.keepAliveTimeout = 5_000;

server.on('error', (err) => {
  log('listen error:', err.message);
  process.exit(1);
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const issuer = process.env.AS_ISSUER || `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, configuration());

  for (const event of ['server_error', 'grant.error', 'introspection.error', 'revocation.error', 'jwks.error']) {
    provider.on(event, (ctx, err) => {
      log(`${event}:`, err?.name, err?.message, err?.error_description ?? '');
    });
  }

  server.on('request', provider.callback());
  process.stdout.write(`READY ${issuer}\n`);
});

let shuttingDown = false;
function shutdown(signal) {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`${signal} received, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2_000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
