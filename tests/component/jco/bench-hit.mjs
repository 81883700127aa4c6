// Per-call cost of a cache-hit `decide` through the component transpiled by jco (run
// transpile.mjs first). Takes tests/vectors/cases/039-cache-hit.json: JWKS, one miss
// (introspect) and its RFC 9701 answer, then times N identical `decide` calls for the same
// token, each a cache hit answered with [audit cache_hit, forward]. Also times two cheap
// crossings for scale: `poll-timeout`, and `poll-action` on an empty queue. Prints the median of
// R rounds in µs per call.
//   node bench-hit.mjs [N] [R]
import { strictEqual, deepStrictEqual } from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { edge as edgeIface } from './out/phantom_edge.js';
import { credentials, method, scheme } from './canon.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const n = Number(process.argv[2] ?? 50000);
const rounds = Number(process.argv[3] ?? 7);
const c = JSON.parse(readFileSync(resolve(here, '../../vectors/cases/039-cache-hit.json'), 'utf8'));
const s = c.steps;
const utf8 = (x) => new TextEncoder().encode(x);
const req = (r) => ({
  id: BigInt(r.id), method: method(r.method), scheme: scheme(r.scheme), authority: r.authority, path: r.path,
  ...credentials(r.headers), clientCertThumbprint: undefined,
});

const edge = edgeIface.Edge.create(JSON.stringify(c.config), 'json', [], Buffer.from(c.seed, 'hex'), BigInt(c.start));
edge.drainActions();
edge.handleJwksResponse(BigInt(s[0].now), utf8(s[0].input.body));
edge.drainActions();
deepStrictEqual(edge.decide(BigInt(s[1].now), req(s[1].input)).map((a) => a.tag), ['audit', 'introspect']);
const ir = s[2].input;
edge.handleIntrospectionResponse(BigInt(s[2].now), BigInt(ir.ticket), {
  status: ir.status, headers: ir.headers.map(([name, value]) => ({ name, value })), body: utf8(ir.body),
});
deepStrictEqual(edge.drainActions().map((a) => a.tag), ['audit', 'audit', 'forward']);
const now = BigInt(s[3].now);
const hitReq = req(s[3].input);
const first = edge.decide(now, hitReq);
deepStrictEqual(first.map((a) => a.tag), ['audit', 'forward']);
strictEqual(first[0].val.kind, 'cache_hit');

function perCallUs(fn) {
  const samples = [];
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    samples.push(Number(process.hrtime.bigint() - t) / n / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

for (let i = 0; i < 5000; i++) edge.decide(now, hitReq); // warm up (JIT)
const hit = perCallUs(() => edge.decide(now, hitReq));
deepStrictEqual(edge.decide(now, hitReq).map((a) => a.tag), ['audit', 'forward'], 'no longer a cache hit');
const trivial = perCallUs(() => edge.pollTimeout());
const empty = perCallUs(() => edge.pollAction());
const jco = JSON.parse(readFileSync(resolve(here, 'node_modules/@bytecodealliance/jco/package.json'), 'utf8')).version;
console.log(
  `jco ${jco} on node ${process.version}: decide cache hit ${hit.toFixed(2)} µs/call; ` +
    `poll-timeout (-> option<u64>) ${trivial.toFixed(2)} µs/call; ` +
    `poll-action on an empty queue (-> option<action>) ${empty.toFixed(2)} µs/call ` +
    `(median of ${rounds} rounds x ${n})`,
);
edge[Symbol.dispose]();
