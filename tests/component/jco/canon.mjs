// The canonical JSON of the component's steps and results (tests/vectors/README.md), built
// from the values jco's bindings return: records with camelCase fields, variants as
// {tag, val}, options as undefined, u64 as BigInt.
import { deepStrictEqual } from 'node:assert/strict';

/** u64 → Number, refusing values JSON could not carry exactly. */
export function num(x) {
  if (typeof x !== 'bigint') throw new TypeError(`expected a BigInt (u64), got ${typeof x} ${x}`);
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`u64 ${x} exceeds 2^53`);
  return Number(x);
}

const optNum = (x) => (x === undefined ? undefined : num(x));
const orNull = (x) => (x === undefined ? null : x);

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

/** The WIT `method` variant: the common methods by (case-sensitive) name, else `other`. */
export const method = (m) => (METHODS.includes(m) ? { tag: m.toLowerCase() } : { tag: 'other', val: m });
/**
 * The request's credential fields from its [name, value] header pairs: every Authorization and
 * DPoP value, in order (names are case-insensitive); the core reads no other header.
 */
export const credentials = (pairs) => ({
  authorization: pairs.filter(([n]) => n.toLowerCase() === 'authorization').map(([, v]) => v),
  dpop: pairs.filter(([n]) => n.toLowerCase() === 'dpop').map(([, v]) => v),
});

/** The WIT `scheme` variant. */
export const scheme = (s) => (s === 'http' || s === 'https' ? { tag: s } : { tag: 'other', val: s });

/**
 * One decision as the vectors have it. A forward's header name and strip list come from the
 * edge's `forward-policy` (the vectors carry them per forward, as the core has them).
 */
export function canonDecision(d, policy) {
  const v = d.val;
  switch (d.tag) {
    case 'forward': {
      const out = {
        type: 'forward',
        request_id: num(v.requestId),
        header_name: policy.headerName,
        header_value: v.headerValue,
        strip_headers: [...policy.stripHeaders],
        fingerprint: v.fingerprint,
      };
      // None only after include-token-json(false).
      if (v.tokenJson !== undefined) out.token = JSON.parse(v.tokenJson);
      // Vectors carry `rewritten_path` only for query-token cases; anywhere else it must be
      // none, so a stray rewrite shows up as a difference.
      if (v.rewrittenPath !== undefined) out.rewritten_path = v.rewrittenPath;
      return out;
    }
    case 'reject':
      return {
        type: 'reject',
        request_id: num(v.requestId),
        status: v.status,
        www_authenticate: orNull(v.wwwAuthenticate),
        retry_after: orNull(v.retryAfter),
        body: v.body,
        reason: v.reason,
        fingerprint: orNull(v.fingerprint),
      };
    default:
      throw new Error(`unknown decision ${JSON.stringify(d, (_, x) => (typeof x === 'bigint' ? `${x}n` : x))}`);
  }
}

/** One `fetch` (an introspection or a JWKS fetch). */
export const canonFetch = (v) => ({
  type: 'fetch',
  ticket: num(v.ticket),
  kind: v.kind,
  method: v.method,
  url: v.url,
  headers: v.headers.map((h) => [h.name, h.value]),
  body: v.body,
  timeout_ms: num(v.timeoutMs),
  max_response_bytes: num(v.maxResponseBytes),
  fingerprint: orNull(v.fingerprint),
});

/** One audit event; its `json` member must say the same as the structured fields. */
export function canonAudit(v) {
  const out = { type: 'audit', kind: v.kind, level: v.level };
  const fields = {
    request_id: optNum(v.requestId),
    ticket: optNum(v.ticket),
    fingerprint: v.fingerprint,
    reason: v.reason,
    detail: v.detail,
  };
  for (const [k, x] of Object.entries(fields)) if (x !== undefined) out[k] = x;
  deepStrictEqual({ type: 'audit', ...JSON.parse(v.json) }, out, `audit json ${v.json} disagrees with its fields`);
  return out;
}

/** The step's lists and the action types each holds (tests/vectors/README.md). */
export const LISTS = {
  decisions: ['forward', 'reject'],
  fetches: ['fetch'],
  lookups: ['shared_lookup'],
  publishes: ['shared_publish'],
  audits: ['audit'],
};

/** A `step` as the canonical actions of each of its lists; no step (undefined): all empty. */
export function canonStep(step, policy) {
  if (step === undefined) return Object.fromEntries(Object.keys(LISTS).map((k) => [k, []]));
  return {
    decisions: step.decisions.map((d) => canonDecision(d, policy)),
    fetches: step.fetches.map(canonFetch),
    lookups: step.lookups.map((l) => ({ type: 'shared_lookup', ticket: num(l.ticket), key: l.key })),
    publishes: step.publishes.map((message) => ({ type: 'shared_publish', message })),
    audits: step.audits.map(canonAudit),
  };
}

/** The expected actions of a step, by the step list each belongs to (same order). */
export function split(expected) {
  const known = Object.values(LISTS).flat();
  for (const a of expected) {
    if (!known.includes(a.type)) throw new Error(`expected action of unknown type ${a.type}`);
  }
  return Object.fromEntries(Object.entries(LISTS).map(([k, types]) => [k, expected.filter((a) => types.includes(a.type))]));
}
