// Replays every case in tests/vectors/cases through the phantom:edge component transpiled by
// jco (run transpile.mjs first; `npm test` does both). $PHANTOM_EDGE_VECTORS overrides the
// cases directory.
import { test } from 'node:test';
import { deepStrictEqual, equal, fail } from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { canonStep, credentials, method, num, scheme, split } from './canon.mjs';
import { edge as edgeIface } from './out/phantom_edge.js';

const { Edge } = edgeIface;
const here = dirname(fileURLToPath(import.meta.url));
const casesDir = process.env.PHANTOM_EDGE_VECTORS
  ? resolve(process.env.PHANTOM_EDGE_VECTORS)
  : resolve(here, '../../vectors/cases');
const files = readdirSync(casesDir).filter((f) => f.endsWith('.json')).sort();

const utf8 = (s) => new TextEncoder().encode(s);
const headers = (pairs) => pairs.map(([name, value]) => ({ name, value }));
const pairsOf = (hs) => hs.map((h) => [h.name, h.value]);

function payloadOf(e) {
  if (e && Object.hasOwn(e, 'payload')) return e.payload;
  throw e;
}

/** [step, result] of a `result<step, edge-error>` call answering a ticket. */
function ticketResult(call) {
  try {
    return [call(), undefined];
  } catch (e) {
    const p = payloadOf(e);
    if (p.tag === 'unknown-ticket' || p.tag === 'wrong-ticket-kind') return [undefined, { error: p.tag.replaceAll('-', '_') }];
    throw e;
  }
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
    return [call(), { ok: true }];
  } catch (e) {
    return [undefined, { error: { status: revocationStatus(e) } }];
  }
}

const request = (r) => ({
  id: BigInt(r.id),
  method: method(r.method),
  scheme: scheme(r.scheme),
  authority: r.authority,
  path: r.path,
  ...credentials(r.headers),
  clientCertThumbprint: r.client_cert_thumbprint ?? undefined,
});

const hop = (h) =>
  h === 'in_process'
    ? { tag: 'in-process' }
    : {
        tag: 'proxy',
        val: { peer: h.proxy.peer ?? undefined, proto: h.proxy.proto, upstreamAuthority: h.proxy.upstream_authority ?? undefined },
      };

/** Feeds one input; returns [the step it returned (undefined: none), result]. */
function apply(edge, now, inp) {
  switch (inp.type) {
    case 'request':
      return [edge.handleRequest(now, request(inp)), undefined];
    case 'fetch_response': {
      const resp = { status: inp.status, headers: headers(inp.headers), body: utf8(inp.body) };
      return ticketResult(() => edge.handleFetch(now, BigInt(inp.ticket), { tag: 'response', val: resp }));
    }
    case 'fetch_failure':
      return ticketResult(() => edge.handleFetch(now, BigInt(inp.ticket), { tag: 'failure', val: inp.detail }));
    case 'shared_lookup': {
      const r = inp.result;
      let answer;
      if (r === 'not_found') answer = { tag: 'not-found' };
      else if (r === 'error') answer = { tag: 'error' };
      else if (r && typeof r.found === 'string') answer = { tag: 'found', val: r.found };
      else fail(`bad shared_lookup result ${JSON.stringify(r)}`);
      return ticketResult(() => edge.handleSharedLookup(now, BigInt(inp.ticket), answer));
    }
    case 'revocation':
      return revocationResult(() => edge.handleRevocation(now, JSON.stringify(inp.selector), inp.origin));
    case 'admin': {
      const [answer, step] = edge.handleAdmin(now, {
        route: inp.route,
        listener: inp.listener,
        method: inp.method,
        authorization: inp.authorization ?? undefined,
        contentType: inp.content_type ?? undefined,
        body: utf8(inp.body),
      });
      return [step, { status: answer.status, headers: pairsOf(answer.headers), body: answer.body }];
    }
    case 'upstream_headers': {
      const plan = edge.upstreamHeaders(headers(inp.inbound), inp.header_value, hop(inp.hop));
      return [undefined, { drop: Array.from(plan.drop), set: pairsOf(plan.set) }];
    }
    case 'security_event':
      return revocationResult(() => edge.handleSecurityEvent(now, inp.set));
    case 'timeout':
      return [edge.handleTimeout(now), undefined];
    default:
      fail(`unknown input type ${inp.type}`);
  }
}

/** Each of the step's lists equals the expected actions of its types, in order. */
function checkStep(what, expected, step, policy) {
  const want = split(expected);
  const got = canonStep(step, policy);
  for (const k of Object.keys(want)) deepStrictEqual(got[k], want[k], `${what}: ${k} differ`);
}

const wakeAt = (step) => (step.wakeAt === undefined ? null : num(step.wakeAt));

test('every vector case is present', () => {
  equal(files.length, 74);
});

for (const file of files) {
  test(file.replace(/\.json$/, ''), () => {
    const c = JSON.parse(readFileSync(join(casesDir, file), 'utf8'));
    const edge = Edge.create(JSON.stringify(c.config), 'json', [], Buffer.from(c.seed, 'hex'), BigInt(c.start));
    const policy = edge.forwardPolicy();
    try {
      const first = edge.initialStep();
      checkStep('initial', c.initial ?? [], first, policy);
      let wake = wakeAt(first);
      c.steps.forEach((step, i) => {
        const what = `step ${i} (${step.input.type})`;
        const [got, result] = apply(edge, BigInt(step.now), step.input);
        checkStep(what, step.expect, got, policy);
        deepStrictEqual(result, step.result, `${what}: result differs`);
        if (got !== undefined) wake = wakeAt(got);
        // An input that returned no step changed nothing: the last step's wake-at stands.
        if ('timeout' in step) deepStrictEqual(wake, step.timeout, `${what}: wake-at differs`);
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
    checkStep('initial', c.initial, edge.initialStep(), policy);
    apply(edge, BigInt(c.steps[0].now), c.steps[0].input);
    const [got] = apply(edge, BigInt(c.steps[1].now), c.steps[1].input);
    checkStep('first request', c.steps[1].expect, got, policy);
  } finally {
    edge[Symbol.dispose]();
  }
});

/** Replays the case's steps through `edge`, comparing each step with `expect(step.expect)`. */
function replayWith(edge, c, policy, expect) {
  let kept = 0;
  c.steps.forEach((step, i) => {
    const [got] = apply(edge, BigInt(step.now), step.input);
    const want = expect(step.expect);
    checkStep(`step ${i} (${step.input.type})`, want, got, policy);
    kept += want.length;
  });
  return kept;
}

test('set-audit-level leaves out the audit events below it, and can be undone', () => {
  const c = hitCase();
  const edge = Edge.create(JSON.stringify(c.config), 'json', [], Buffer.from(c.seed, 'hex'), BigInt(c.start));
  const policy = edge.forwardPolicy();
  const atLeastInfo = (expect) => expect.filter((a) => !(a.type === 'audit' && a.level === 'debug'));
  try {
    checkStep('initial', c.initial ?? [], edge.initialStep(), policy);
    edge.setAuditLevel('info');
    const all = c.steps.reduce((n, s) => n + s.expect.length, 0);
    const kept = replayWith(edge, c, policy, atLeastInfo);
    equal(all - kept > 0, true, 'the case has routine audits to leave out');
    edge.setAuditLevel('debug');
    const hit = c.steps.at(-1);
    const [again] = apply(edge, BigInt(hit.now), hit.input);
    checkStep('the hit again', hit.expect, again, policy);
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
    checkStep('initial', c.initial ?? [], edge.initialStep(), policy);
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
    replayWith(edge, c, policy, (expect) => {
      forwards += expect.filter((a) => a.type === 'forward').length;
      return lean(expect);
    });
    equal(forwards, 2, 'the miss and the hit are both forwarded');
    // Undone: the hit again, exactly as the vector has it (claims and cache_hit audit back).
    edge.muteAudits([]);
    edge.includeTokenJson(true);
    const hit = c.steps.at(-1);
    const [again] = apply(edge, BigInt(hit.now), hit.input);
    checkStep('the hit again', hit.expect, again, policy);
  } finally {
    edge[Symbol.dispose]();
  }
});

test('request.dpop reaches the core: each DPoP header count is told apart', () => {
  // The vectors have no DPoP proof header; the audit detail shows what the core saw.
  const c = hitCase();
  const edge = Edge.create(JSON.stringify(c.config), 'json', [], Buffer.from(c.seed, 'hex'), BigInt(c.start));
  try {
    edge.initialStep();
    const seen = (dpop) => {
      const got = edge.handleRequest(BigInt(c.start), {
        id: 1n, method: method('GET'), scheme: scheme('https'), authority: 'api.example', path: '/orders/1',
        authorization: ['DPoP opaque-token'], dpop, clientCertThumbprint: undefined,
      });
      deepStrictEqual(got.decisions.map((d) => d.tag), ['reject']);
      equal(got.decisions[0].val.reason, 'invalid_dpop_proof');
      equal(got.audits.length, 1);
      return got.audits[0].detail;
    };
    equal(seen([]), 'missing DPoP proof');
    equal(seen(['x.y.z']), 'malformed proof or alg not allowed');
    equal(seen(['a.b.c', 'd.e.f']), 'more than one DPoP header');
  } finally {
    edge[Symbol.dispose]();
  }
});

test('handle-admin: the metrics route on the app listener needs the [admin] bearer, with one realm', () => {
  const c = hitCase();
  const token = c.config.admin?.token;
  equal(typeof token, 'string', 'the case configures [admin]');
  const seed = Buffer.from(c.seed, 'hex');
  const edge = Edge.create(JSON.stringify(c.config), 'json', [], seed, BigInt(c.start));
  const { admin, ...withoutAdmin } = c.config;
  const bare = Edge.create(JSON.stringify(withoutAdmin), 'json', [], seed, BigInt(c.start));
  const metrics = (e, authorization) =>
    e.handleAdmin(BigInt(c.start), {
      route: 'metrics', listener: 'app', method: 'GET', authorization, contentType: undefined, body: new Uint8Array(),
    })[0];
  try {
    for (const [authorization, want] of [
      [`Bearer ${token}`, 200],
      [`bearer  ${token} `, 200], // the scheme is case-insensitive
      [`Bearer ${token}x`, 401],
      ['Bearer wrong-secret-0123456789', 401],
      [`Basic ${token}`, 401],
      [undefined, 401], // a missing header is not authorized
    ]) {
      const answer = metrics(edge, authorization);
      equal(answer.status, want, `metrics with ${authorization}`);
      const h = Object.fromEntries(pairsOf(answer.headers));
      if (want === 401) equal(h['www-authenticate'], 'Bearer realm="phantom-edge-admin"');
      else equal(answer.body.includes('phantom_edge_'), true);
      // Without [admin] there is nothing to check against: nobody reads the metrics there.
      equal(metrics(bare, authorization).status, 403);
    }
  } finally {
    edge[Symbol.dispose]();
    bare[Symbol.dispose]();
  }
});

test('hop-by-hop-headers: the fixed list and the names a Connection header lists, as read', () => {
  const got = edgeIface.hopByHopHeaders(
    headers([
      ['Connection', 'close, X-Trace'],
      ['content-type', 'a'],
      ['x_trace', '1'],
      ['TE', 'trailers'],
      ['x-kept', '2'],
      ['Transfer-Encoding', 'chunked'],
    ]),
  );
  deepStrictEqual(Array.from(got), [0, 2, 3, 5]);
});
