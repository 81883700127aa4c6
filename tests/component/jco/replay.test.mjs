// Replays every case in tests/vectors/cases through the phantom:edge component transpiled by
// jco (run transpile.mjs first; `npm test` does both). $PHANTOM_EDGE_VECTORS overrides the
// cases directory.
import { test } from 'node:test';
import { deepStrictEqual, equal, fail } from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { canon, credentials, method, num, scheme } from './canon.mjs';
import { edge as edgeIface } from './out/phantom_edge.js';

const { Edge } = edgeIface;
const here = dirname(fileURLToPath(import.meta.url));
const casesDir = process.env.PHANTOM_EDGE_VECTORS
  ? resolve(process.env.PHANTOM_EDGE_VECTORS)
  : resolve(here, '../../vectors/cases');
const files = readdirSync(casesDir).filter((f) => f.endsWith('.json')).sort();

const utf8 = (s) => new TextEncoder().encode(s);
const headers = (pairs) => pairs.map(([name, value]) => ({ name, value }));

function payloadOf(e) {
  if (e && Object.hasOwn(e, 'payload')) return e.payload;
  throw e;
}

function ticketResult(call) {
  try {
    call();
  } catch (e) {
    const p = payloadOf(e);
    if (p.tag === 'unknown-ticket' || p.tag === 'wrong-ticket-kind') return { error: p.tag.replaceAll('-', '_') };
    throw e;
  }
  return undefined;
}

function revocationStatus(e) {
  const p = payloadOf(e);
  if (p.tag !== 'revocation') throw e;
  const body = JSON.parse(p.val.body);
  if (!('error' in body)) fail(`revocation error body without "error": ${p.val.body}`);
  return p.val.status;
}

function revocationResult(call) {
  try {
    call();
  } catch (e) {
    return { error: { status: revocationStatus(e) } };
  }
  return { ok: true };
}

/** Feeds one input; returns [actions already drained by decide (or undefined), result]. */
function apply(edge, i, now, inp) {
  switch (inp.type) {
    case 'request': {
      const req = {
        id: BigInt(inp.id),
        method: method(inp.method),
        scheme: scheme(inp.scheme),
        authority: inp.authority,
        path: inp.path,
        ...credentials(inp.headers),
        clientCertThumbprint: inp.client_cert_thumbprint ?? undefined,
      };
      // decide (handle-request + drain-actions in one call) on even steps.
      if (i % 2 === 0) return [edge.decide(now, req), undefined];
      edge.handleRequest(now, req);
      return [undefined, undefined];
    }
    case 'introspection_response': {
      const resp = { status: inp.status, headers: headers(inp.headers), body: utf8(inp.body) };
      return [undefined, ticketResult(() => edge.handleIntrospectionResponse(now, BigInt(inp.ticket), resp))];
    }
    case 'introspection_failure':
      return [undefined, ticketResult(() => edge.handleIntrospectionFailure(now, BigInt(inp.ticket), inp.detail))];
    case 'jwks':
      edge.handleJwksResponse(now, utf8(inp.body));
      return [undefined, undefined];
    case 'jwks_failure':
      edge.handleJwksFailure(now, inp.detail);
      return [undefined, undefined];
    case 'shared_lookup': {
      const r = inp.result;
      let answer;
      if (r === 'not_found') answer = { tag: 'not-found' };
      else if (r === 'error') answer = { tag: 'error' };
      else if (r && typeof r.found === 'string') answer = { tag: 'found', val: r.found };
      else fail(`bad shared_lookup result ${JSON.stringify(r)}`);
      return [undefined, ticketResult(() => edge.handleSharedLookup(now, BigInt(inp.ticket), answer))];
    }
    case 'revocation':
      return [undefined, revocationResult(() => edge.handleRevocation(now, JSON.stringify(inp.selector), inp.origin))];
    case 'admin_revocation':
      try {
        edge.handleAdminRevocation(now, inp.content_type ?? undefined, inp.authorization ?? undefined, utf8(inp.body));
        return [undefined, { status: 204 }];
      } catch (e) {
        return [undefined, { status: revocationStatus(e) }];
      }
    case 'security_event':
      return [undefined, revocationResult(() => edge.handleSecurityEvent(now, inp.set))];
    case 'timeout':
      edge.handleTimeout(now);
      return [undefined, undefined];
    default:
      fail(`unknown input type ${inp.type}`);
  }
}

test('every vector case is present', () => {
  equal(files.length, 69);
});

for (const file of files) {
  test(file.replace(/\.json$/, ''), () => {
    const c = JSON.parse(readFileSync(join(casesDir, file), 'utf8'));
    const edge = Edge.create(JSON.stringify(c.config), 'json', [], Buffer.from(c.seed, 'hex'), BigInt(c.start));
    const policy = edge.forwardPolicy();
    try {
      deepStrictEqual(edge.drainActions().map((a) => canon(a, policy)), c.initial ?? [], 'initial actions differ');
      c.steps.forEach((step, i) => {
        const what = `step ${i} (${step.input.type})`;
        const now = BigInt(step.now);
        let [actions, result] = apply(edge, i, now, step.input);
        if (actions === undefined) {
          // poll-action and drain-actions must agree: poll-action on odd steps.
          if (i % 2) {
            actions = [];
            for (let a; (a = edge.pollAction()) !== undefined; ) actions.push(a);
          } else {
            actions = edge.drainActions();
          }
        } else {
          equal(edge.pollAction(), undefined, `${what}: decide left actions in the queue`);
        }
        deepStrictEqual(actions.map((a) => canon(a, policy)), step.expect, `${what}: actions differ`);
        deepStrictEqual(result, step.result, `${what}: result differs`);
        if ('timeout' in step) {
          const t = edge.pollTimeout();
          deepStrictEqual(t === undefined ? null : num(t), step.timeout, `${what}: poll-timeout differs`);
        }
      });
    } finally {
      edge[Symbol.dispose]();
    }
  });
}

// Beyond the vectors: the parts of the WIT they do not reach.
const hitCase = () => JSON.parse(readFileSync(join(casesDir, '039-cache-hit.json'), 'utf8'));

test('create: refused configuration and seed come back as edge-error payloads', () => {
  const seed = new Uint8Array(32);
  const err = (f) => {
    try {
      f();
    } catch (e) {
      return payloadOf(e);
    }
    fail('expected an error');
  };
  deepStrictEqual(err(() => Edge.create('{"routes": []}', 'json', [], seed, 0n)).tag, 'config');
  equal(err(() => Edge.create('{"routes": []}', 'json', [], seed, 0n)).val.field, 'authorization_server');
  equal(err(() => Edge.create('x = ', 'toml', [], seed, 0n)).tag, 'config');
  deepStrictEqual(err(() => Edge.create(JSON.stringify(hitCase().config), 'json', [], new Uint8Array(31), 0n)), {
    tag: 'invalid-argument',
    val: 'seed must be 32 bytes, got 31',
  });
});

test('create: *_env secrets are looked up in the env list, and only there', () => {
  const c = hitCase();
  const { client_secret: secret, ...as } = c.config.authorization_server;
  const config = JSON.stringify({ ...c.config, authorization_server: { ...as, client_secret_env: 'AS_SECRET' } });
  const seed = Buffer.from(c.seed, 'hex');
  const missing = (() => {
    try {
      Edge.create(config, 'json', [['OTHER', secret]], seed, BigInt(c.start));
    } catch (e) {
      return payloadOf(e);
    }
  })();
  equal(missing?.tag, 'config', 'a missing env secret must refuse the configuration');
  equal(missing.val.field, 'authorization_server.client_secret_env');
  // With the secret in env the miss is the vector's, byte for byte (Basic auth included).
  const edge = Edge.create(config, 'json', [['AS_SECRET', secret]], seed, BigInt(c.start));
  const policy = edge.forwardPolicy();
  try {
    deepStrictEqual(edge.drainActions().map((a) => canon(a, policy)), c.initial);
    edge.handleJwksResponse(BigInt(c.steps[0].now), utf8(c.steps[0].input.body));
    edge.drainActions();
    const r = c.steps[1].input;
    const got = edge.decide(BigInt(c.steps[1].now), {
      id: BigInt(r.id), method: method(r.method), scheme: scheme(r.scheme), authority: r.authority, path: r.path,
      ...credentials(r.headers), clientCertThumbprint: undefined,
    });
    deepStrictEqual(got.map((a) => canon(a, policy)), c.steps[1].expect);
  } finally {
    edge[Symbol.dispose]();
  }
});

test('set-audit-level leaves out the audit events below it, and can be undone', () => {
  const c = hitCase();
  const edge = Edge.create(JSON.stringify(c.config), 'json', [], Buffer.from(c.seed, 'hex'), BigInt(c.start));
  const policy = edge.forwardPolicy();
  const atLeastInfo = (expect) => expect.filter((a) => !(a.type === 'audit' && a.level === 'debug'));
  try {
    deepStrictEqual(edge.drainActions().map((a) => canon(a, policy)), c.initial ?? []);
    edge.setAuditLevel('info');
    let routine = 0;
    c.steps.forEach((step, i) => {
      const [decided] = apply(edge, 0, BigInt(step.now), step.input);
      const actions = (decided ?? edge.drainActions()).map((a) => canon(a, policy));
      deepStrictEqual(actions, atLeastInfo(step.expect), `step ${i} (${step.input.type})`);
      routine += step.expect.length - actions.length;
    });
    equal(routine > 0, true, 'the case has routine audits to leave out');
    edge.setAuditLevel('debug');
    const hit = c.steps.at(-1);
    const [again] = apply(edge, 0, BigInt(hit.now), hit.input);
    deepStrictEqual(again.map((a) => canon(a, policy)), hit.expect);
  } finally {
    edge[Symbol.dispose]();
  }
});

test('mute-audits and include-token-json leave out just what was asked, and can be undone', () => {
  const c = hitCase();
  const edge = Edge.create(JSON.stringify(c.config), 'json', [], Buffer.from(c.seed, 'hex'), BigInt(c.start));
  const policy = edge.forwardPolicy();
  const muted = ['cache_hit', 'cache_miss'];
  // What the vector expects, without the muted audit kinds and without the claims.
  const lean = (expect) =>
    expect
      .filter((a) => !(a.type === 'audit' && muted.includes(a.kind)))
      .map((a) => {
        if (a.type !== 'forward') return a;
        const { token, ...rest } = a;
        return rest;
      });
  try {
    deepStrictEqual(edge.drainActions().map((a) => canon(a, policy)), c.initial ?? []);
    let refused;
    try {
      edge.muteAudits(['cache_hit', 'no_such_kind']);
    } catch (e) {
      refused = payloadOf(e);
    }
    deepStrictEqual(refused, { tag: 'invalid-argument', val: 'unknown audit kind "no_such_kind"' });
    edge.muteAudits(muted);
    edge.includeTokenJson(false);
    let forwards = 0;
    c.steps.forEach((step, i) => {
      const now = BigInt(step.now);
      const [decided] = apply(edge, 0, now, step.input); // step index 0: requests go through decide
      const actions = (decided ?? edge.drainActions()).map((a) => canon(a, policy));
      deepStrictEqual(actions, lean(step.expect), `step ${i} (${step.input.type})`);
      forwards += actions.filter((a) => a.type === 'forward').length;
    });
    equal(forwards, 2, 'the miss and the hit are both forwarded');
    // Undone: the hit again, exactly as the vector has it (claims and cache_hit audit back).
    edge.muteAudits([]);
    edge.includeTokenJson(true);
    const hit = c.steps.at(-1);
    const [again] = apply(edge, 0, BigInt(hit.now), hit.input);
    deepStrictEqual(again.map((a) => canon(a, policy)), hit.expect);
  } finally {
    edge[Symbol.dispose]();
  }
});

test('request.dpop reaches the core: each DPoP header count is told apart', () => {
  // The vectors have no DPoP proof header; the audit detail shows what the core saw.
  const c = hitCase();
  const edge = Edge.create(JSON.stringify(c.config), 'json', [], Buffer.from(c.seed, 'hex'), BigInt(c.start));
  try {
    edge.drainActions();
    const seen = (dpop) => {
      const got = edge.decide(BigInt(c.start), {
        id: 1n, method: method('GET'), scheme: scheme('https'), authority: 'api.example', path: '/orders/1',
        authorization: ['DPoP opaque-token'], dpop, clientCertThumbprint: undefined,
      });
      deepStrictEqual(got.map((a) => a.tag), ['audit', 'reject']);
      equal(got[1].val.reason, 'invalid_dpop_proof');
      return got[0].val.detail;
    };
    equal(seen([]), 'missing DPoP proof');
    equal(seen(['x.y.z']), 'malformed proof or alg not allowed');
    equal(seen(['a.b.c', 'd.e.f']), 'more than one DPoP header');
  } finally {
    edge[Symbol.dispose]();
  }
});

test('admin-authorized: none without [admin], true only for its bearer secret', () => {
  const c = hitCase();
  const token = c.config.admin?.token;
  equal(typeof token, 'string', 'the case configures [admin]');
  const seed = Buffer.from(c.seed, 'hex');
  const edge = Edge.create(JSON.stringify(c.config), 'json', [], seed, BigInt(c.start));
  const { admin, ...withoutAdmin } = c.config;
  const bare = Edge.create(JSON.stringify(withoutAdmin), 'json', [], seed, BigInt(c.start));
  try {
    equal(edge.adminAuthorized(`Bearer ${token}`), true);
    equal(edge.adminAuthorized(`bearer  ${token} `), true, 'the scheme is case-insensitive');
    equal(edge.adminAuthorized(`Bearer ${token}x`), false);
    equal(edge.adminAuthorized('Bearer wrong-secret-0123456789'), false);
    equal(edge.adminAuthorized(`Basic ${token}`), false);
    equal(edge.adminAuthorized(undefined), false, 'a missing header is not authorized');
    equal(bare.adminAuthorized(`Bearer ${token}`), undefined, 'without [admin] there is nothing to check');
    equal(bare.adminAuthorized(undefined), undefined);
  } finally {
    edge[Symbol.dispose]();
    bare[Symbol.dispose]();
  }
});
