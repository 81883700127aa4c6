// Per-call cost of a cache-hit `handle-request` through the component transpiled by jco (run
// transpile.mjs first). Takes tests/vectors/cases/039-cache-hit.json: JWKS, one miss (a fetch)
// and its RFC 9701 answer, then times N identical `handle-request` calls for the same token,
// each a cache hit whose step holds [forward] and [audit cache_hit]. Also times two cheap
// crossings for scale: `fingerprint`, and `handle-timeout` with nothing due (-> an empty step).
// Prints the median of R rounds in µs per call.
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
const response = (i) => ({
  tag: 'response',
  val: { status: i.status, headers: i.headers.map(([name, value]) => ({ name, value })), body: utf8(i.body) },
});

const edge = edgeIface.Edge.create(JSON.stringify(c.config), 'json', [], Buffer.from(c.seed, 'hex'), BigInt(c.start));
const jwks = edge.initialStep().fetches[0];
edge.handleFetch(BigInt(s[0].now), jwks.ticket, response(s[0].input));
const miss = edge.handleRequest(BigInt(s[1].now), req(s[1].input));
deepStrictEqual([miss.decisions.length, miss.fetches.length], [0, 1]);
const ir = s[2].input;
const answered = edge.handleFetch(BigInt(s[2].now), BigInt(ir.ticket), response(ir));
deepStrictEqual(answered.decisions.map((d) => d.tag), ['forward']);
const now = BigInt(s[3].now);
const hitReq = req(s[3].input);
const first = edge.handleRequest(now, hitReq);
deepStrictEqual(first.decisions.map((d) => d.tag), ['forward']);
strictEqual(first.audits[0].kind, 'cache_hit');

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

for (let i = 0; i < 5000; i++) edge.handleRequest(now, hitReq); // warm up (JIT)
const hit = perCallUs(() => edge.handleRequest(now, hitReq));
deepStrictEqual(edge.handleRequest(now, hitReq).audits.map((a) => a.kind), ['cache_hit'], 'no longer a cache hit');
const trivial = perCallUs(() => edge.fingerprint('tok'));
const empty = perCallUs(() => edge.handleTimeout(now));
const jco = JSON.parse(readFileSync(resolve(here, 'node_modules/@bytecodealliance/jco/package.json'), 'utf8')).version;
console.log(
  `jco ${jco} on node ${process.version}: handle-request cache hit ${hit.toFixed(2)} µs/call; ` +
    `fingerprint (-> string) ${trivial.toFixed(2)} µs/call; ` +
    `handle-timeout with nothing due (-> step) ${empty.toFixed(2)} µs/call ` +
    `(median of ${rounds} rounds x ${n})`,
);
edge[Symbol.dispose]();
