// The canonical JSON of the component's actions and results (tests/vectors/README.md), built
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
 * One action as the vectors have it. A forward's header name and strip list come from the edge's
 * `forward-policy` (the vectors carry them per forward, as the core has them).
 */
export function canon(a, policy) {
  const v = a.val;
  switch (a.tag) {
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
    case 'introspect':
      return {
        type: 'introspect',
        ticket: num(v.ticket),
        method: v.method,
        url: v.url,
        headers: v.headers.map((h) => [h.name, h.value]),
        body: v.body,
        timeout_ms: num(v.timeoutMs),
        fingerprint: v.fingerprint,
      };
    case 'fetch-jwks':
      return { type: 'fetch_jwks', url: v };
    case 'shared-lookup':
      return { type: 'shared_lookup', ticket: num(v.ticket), key: v.key };
    case 'shared-publish':
      return { type: 'shared_publish', message: v };
    case 'audit': {
      const out = { type: 'audit', kind: v.kind, level: v.level };
      const fields = {
        request_id: optNum(v.requestId),
        ticket: optNum(v.ticket),
        fingerprint: v.fingerprint,
        reason: v.reason,
        detail: v.detail,
      };
      for (const [k, x] of Object.entries(fields)) if (x !== undefined) out[k] = x;
      // The `json` member must say the same as the structured fields.
      deepStrictEqual({ type: 'audit', ...JSON.parse(v.json) }, out, `audit json ${v.json} disagrees with its fields`);
      return out;
    }
    default:
      throw new Error(`unknown action ${JSON.stringify(a, (_, x) => (typeof x === 'bigint' ? `${x}n` : x))}`);
  }
}
