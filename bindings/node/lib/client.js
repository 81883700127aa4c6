'use strict'
// The async host of the core: the Step driver. It feeds the core its inputs, carries out each
// Step (answers the decisions, performs the fetches and lookups with the built-in fetch and the
// shared store, publishes, logs the audits, re-arms its one timer to `wakeAt`) and routes the
// decisions to the waiting requests by request id. No policy here: every decision, the
// forwarding headers and the operator routes' answers come from the core.
const { Edge } = require('./edge.js')
const { EdgeError } = require('./errors.js')

/**
 * The lowest audit level `logger` writes ('debug', 'info' or 'warn'), or null when it writes none
 * of them. Loggers without `isLevelEnabled` (console, ...): every level unless `level` is 'silent'.
 */
function auditLevel(logger) {
  if (logger == null) return null
  if (typeof logger.isLevelEnabled === 'function') {
    return ['debug', 'info', 'warn'].find((l) => logger.isLevelEnabled(l)) ?? null
  }
  return logger.level === 'silent' ? null : 'debug'
}

/** One line of JSON for an audit event, in the core's field names (token-free). */
function auditJson(a) {
  const o = { kind: a.kind, level: a.level }
  if (a.requestId != null) o.request_id = a.requestId
  if (a.ticket != null) o.ticket = a.ticket
  if (a.fingerprint != null) o.fingerprint = a.fingerprint
  if (a.reason != null) o.reason = a.reason
  if (a.detail != null) o.detail = a.detail
  return JSON.stringify(o)
}

/**
 * The request's headers as `[name, value]` pairs in order, from: an array of pairs, a flat
 * `rawHeaders` array, a `Headers` object, or a plain object (`IncomingHttpHeaders`: values may
 * be arrays).
 */
function headerPairs(headers) {
  const out = []
  if (headers == null) return out
  if (Array.isArray(headers)) {
    if (headers.length > 0 && typeof headers[0] === 'string') {
      for (let i = 0; i + 1 < headers.length; i += 2) out.push([headers[i], headers[i + 1]])
    } else {
      for (const [n, v] of headers) out.push([String(n), String(v)])
    }
    return out
  }
  if (typeof headers.entries === 'function' && typeof headers.get === 'function') {
    // WHATWG Headers joins repeated values with ", ": the core then sees one malformed value.
    for (const [n, v] of headers.entries()) out.push([n, v])
    return out
  }
  for (const n of Object.keys(headers)) {
    const v = headers[n]
    if (Array.isArray(v)) for (const x of v) out.push([n, String(x)])
    else if (v != null) out.push([n, String(v)])
  }
  return out
}

/**
 * The only request headers the core reads, every value in order: `[authorization, dpop]`
 * (`null` when absent, an array when repeated), from any form `headerPairs` takes.
 */
function credentials(headers) {
  let authorization = null
  let dpop = null
  const add = (list, v) => (list === null ? v : Array.isArray(list) ? [...list, v] : [list, v])
  const one = (n, v) => {
    if (n.length === 13 && n.toLowerCase() === 'authorization') authorization = add(authorization, String(v))
    else if (n.length === 4 && n.toLowerCase() === 'dpop') dpop = add(dpop, String(v))
  }
  if (Array.isArray(headers) && (headers.length === 0 || typeof headers[0] === 'string')) {
    for (let i = 0; i + 1 < headers.length; i += 2) one(headers[i], headers[i + 1]) // rawHeaders
  } else if (Array.isArray(headers)) {
    for (const [n, v] of headers) one(String(n), v)
  } else {
    for (const [n, v] of headerPairs(headers)) one(n, v)
  }
  return [authorization, dpop]
}

function responseHeaders(resp) {
  const out = []
  resp.headers.forEach((v, n) => out.push([n, v]))
  return out
}

function errorName(e) {
  if (e && e.name === 'TimeoutError') return 'timeout'
  if (e && e.cause && e.cause.code) return String(e.cause.code)
  return (e && (e.code || e.name)) ? String(e.code || e.name) : 'error'
}

/**
 * An async host around the core's `Edge`.
 *
 * `await authorize({ method, url, headers })` resolves to the core's decision: a `Forward`
 * (`type: 'forward'`, `headerName`, `headerValue`, `stripHeaders`, `token` claims) or a `Reject`
 * (`type: 'reject'`, `status`, `wwwAuthenticate`, `body`, `reason`). Concurrent calls for one
 * token share one introspection: the core coalesces them, and each call waits on its request id.
 */
class PhantomEdge {
  /**
   * @param config a Config, an object, TOML text or a TOML/JSON path
   * @param options `fetch` (default globalThis.fetch), `seed`, `logger` (`{debug, info}`, e.g.
   *   pino or console; audit events only, never tokens), `sharedLookup(key) => Promise<string|null>`
   *   (split mode), `onPublish(message)` (revocations to other instances)
   */
  constructor(config, options = {}) {
    this.edge = new Edge(config, options.seed)
    this.config = this.edge.config
    this._fetch = options.fetch || globalThis.fetch
    if (typeof this._fetch !== 'function') throw new TypeError('phantom-edge needs fetch (Node >= 18)')
    this._logger = options.logger || null
    this._sharedLookup = options.sharedLookup || null
    this._onPublish = options.onPublish || null
    this._nextId = 0
    this._waiters = new Map()
    this._timer = null
    this._timerAt = null
    this._closing = false
    this._closed = false
    this._inflight = new Set()
    // Audit events below the logger's level are not even built (none without a logger); the
    // core's decisions are the same. The level is read once, here.
    const level = auditLevel(this._logger)
    this.edge.auditActions = level !== null
    if (level !== null) this.edge.setAuditLevel(level)
    this._run(this.edge.initialStep())
  }

  /**
   * Decide on one request. `url`: absolute (`https://api.example/orders/7?x=1`) or a path with
   * `authority`/`scheme` given separately. `headers`: object, `Headers`, pairs or rawHeaders.
   */
  authorize(request) {
    const { method = 'GET', headers, clientCertThumbprint = null } = request
    let { url, scheme, authority } = request
    let path = url
    const abs = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/is.exec(url)
    if (abs !== null) {
      // Split as written, not with new URL(): that would resolve dot segments and
      // percent-encodings before the core sees the path (which refuses ambiguous ones).
      scheme = scheme || abs[1].toLowerCase()
      authority = authority || abs[2]
      const target = abs[3].split('#')[0] // a fragment is never sent upstream
      path = target === '' || target[0] !== '/' ? `/${target}` : target
    }
    return this.authorizeParts(method, scheme || 'http', authority || 'localhost', path || '/',
      headers, clientCertThumbprint)
  }

  /**
   * Like `authorize`, with the URL split. `headers`: any form `authorize` takes (only
   * `authorization` and `dpop` are read).
   */
  authorizeParts(method, scheme, authority, path, headers, clientCertThumbprint = null) {
    if (this._closing) return Promise.reject(new Error('phantom-edge: closed'))
    const id = ++this._nextId
    const [authorization, dpop] = credentials(headers)
    const step = this.edge.handleRequest(id, method, scheme, authority, path, authorization, dpop,
      clientCertThumbprint, Date.now())
    const decided = this._run(step, id)
    if (decided !== null) return Promise.resolve(decided)
    // A waiting request keeps the process alive until the core decides (the timer is ref'd).
    if (this._timer !== null && typeof this._timer.ref === 'function') this._timer.ref()
    return new Promise((resolve) => this._waiters.set(id, resolve))
  }

  /**
   * An operator route, answered whole by the core (`request`: `route` 'revocations' | 'metrics'
   * | 'jwks', `method`, `authorization`, `contentType`, `body` as read, at most 64 KiB + 1 bytes;
   * `listener` defaults to 'app'): `{ status, headers, body }` to write out as it is.
   */
  admin(request) {
    const { answer, step } = this.edge.handleAdmin({ listener: 'app', ...request }, Date.now())
    this._run(step)
    return answer
  }

  /** The revocation route: `{ status: 204, body: '' }` or `{ status: 400|401|413, body: json }`. */
  revoke(contentType, authorization, body) {
    const a = this.admin({ route: 'revocations', method: 'POST', contentType, authorization, body })
    return Promise.resolve({ status: a.status, body: a.body })
  }

  /** Prometheus text exposition. */
  metrics() {
    return this.edge.prometheus()
  }

  /**
   * The upstream headers of a forwarded request in process (a middleware): `pairs` without what
   * the core drops (the strip list, every spelling of the forwarded header), in order, with what
   * it sets appended.
   */
  upstreamPairs(decision, pairs) {
    const { drop, set } = this.edge.upstreamHeaders(pairs, decision.headerValue, 'in_process')
    const out = []
    for (let i = 0, j = 0; i < pairs.length; i++) {
      if (j < drop.length && drop[j] === i) j++
      else out.push(pairs[i])
    }
    return out.concat(set)
  }

  /** The keyed fingerprint this edge computes for a token (for logs; never log the token). */
  fingerprint(token) {
    return this.edge.fingerprint(token)
  }

  /**
   * Refuses new requests, waits for the I/O in flight (at most the configured timeout + 1 s, so
   * every waiting request still gets the core's decision), then stops the timer.
   */
  async close() {
    if (this._closing) return
    this._closing = true
    // Bounded: a fetch that ignores its AbortSignal must not hang close() forever.
    const deadline = Date.now() + this.config.timeoutMs + 1000
    while (this._inflight.size > 0 && Date.now() < deadline) {
      let t
      const limit = new Promise((resolve) => { t = setTimeout(resolve, Math.max(1, deadline - Date.now())) })
      await Promise.race([Promise.allSettled([...this._inflight]), limit])
      clearTimeout(t)
    }
    this._closed = true
    if (this._timer !== null) clearTimeout(this._timer)
    this._timer = null
  }

  // -- the run loop: carry out one Step -----------------------------------------------------

  /** Carries out `step`; returns the decision of request `id` (the caller's) if it holds it. */
  _run(step, id = -1) {
    let mine = null
    for (const d of step.decisions) {
      const rid = d.requestId ?? id // a hit's shared Forward has none: it is the caller's
      if (rid === id) mine = d
      else this._waiters.get(rid)?.(d)
      this._waiters.delete(rid)
    }
    for (const f of step.fetches) this._track(this._fetchOne(f))
    for (const l of step.lookups) this._track(this._lookup(l))
    for (const m of step.publishes) {
      // Sync or async (a Redis publish): a failure is logged, never an unhandled rejection.
      if (this._onPublish !== null) {
        this._track(Promise.resolve(m).then(this._onPublish)
          .catch((e) => this._log('warn', `phantom_edge publish failed: ${errorName(e)}`)))
      }
    }
    for (const a of step.audits) this._log(a.level, `phantom_edge audit ${auditJson(a)}`)
    this._arm(step.wakeAt)
    return mine
  }

  /** Re-arms the one timer for `at` (Unix ms; null: nothing pending). */
  _arm(at) {
    if (at === this._timerAt || this._closed) return
    if (this._timer !== null) clearTimeout(this._timer)
    this._timerAt = at
    this._timer = at === null ? null : setTimeout(() => this._onTimer(), Math.max(0, at - Date.now()))
    // Idle housekeeping (cache sweeps) must not keep the process alive; waiting requests do.
    if (this._timer !== null && this._waiters.size === 0) this._timer.unref?.()
  }

  _onTimer() {
    this._timer = null
    this._timerAt = null
    this._feed(() => this.edge.handleTimeout(Date.now()))
  }

  /** Feeds one answer to the core and carries out its step. */
  _feed(call) {
    if (this._closed) return
    let step
    try {
      step = call()
    } catch (e) {
      // The ticket already ended in the core (a late answer), or a refused input: the ticket
      // then times out in the core (503).
      if (e instanceof EdgeError) this._log('debug', `phantom_edge late answer: ${e.kind}`)
      else this._log('warn', `phantom_edge answer refused: ${errorName(e)}`)
      return
    }
    this._run(step)
  }

  async _fetchOne(f) {
    let result
    try {
      const resp = await this._fetch(f.url, {
        method: f.method,
        headers: f.headers,
        body: f.body === '' ? undefined : f.body,
        signal: AbortSignal.timeout(Math.max(1, f.timeoutMs)),
        redirect: 'manual',
      })
      result = { status: resp.status, headers: responseHeaders(resp), body: await readCapped(resp, f.maxResponseBytes) }
    } catch (e) {
      result = errorName(e) // transport failure, timeout or an oversized answer: the core fails closed
    }
    this._feed(() => this.edge.handleFetch(f.ticket, result, Date.now()))
  }

  async _lookup(l) {
    let value = null
    let error = this._sharedLookup === null
    try {
      if (!error) value = await this._sharedLookup(l.key)
      // A store client may answer with bytes (ioredis getBuffer); anything else is a store error.
      if (value instanceof Uint8Array) value = UTF8.decode(value) // not UTF-8: throws, an error
      if (value != null && typeof value !== 'string') error = true
    } catch {
      error = true
    }
    this._feed(() => this.edge.handleSharedLookup(l.ticket, error ? null : value ?? null, error, Date.now()))
  }

  _log(level, line) {
    const l = this._logger
    if (l === null) return
    const fn = typeof l[level] === 'function' ? l[level] : l.info
    if (typeof fn === 'function') fn.call(l, line)
  }

  _track(p) {
    this._inflight.add(p)
    p.catch((e) => this._log('warn', `phantom_edge host task failed: ${errorName(e)}`))
      .finally(() => this._inflight.delete(p))
  }
}

/** Strict UTF-8 (invalid bytes throw instead of becoming U+FFFD). */
const UTF8 = new TextDecoder('utf-8', { fatal: true })

/** The response body, refused (thrown) once it passes `max` bytes instead of buffering it all. */
async function readCapped(resp, max) {
  const declared = Number(resp.headers.get('content-length'))
  if (declared > max) {
    await resp.body?.cancel().catch(() => {})
    throw Object.assign(new Error('answer too large'), { code: 'too_large' })
  }
  if (resp.body == null) return Buffer.alloc(0)
  const chunks = []
  let size = 0
  for await (const chunk of resp.body) {
    size += chunk.length
    if (size > max) throw Object.assign(new Error('answer too large'), { code: 'too_large' })
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}

/**
 * Rewrites every header view of a Node `IncomingMessage` after a `Forward`, as the core's
 * forwarding policy says (`upstreamHeaders`, in process): `rawHeaders`, `headers` (and `headers`
 * when a framework keeps its own object) and `headersDistinct` (Node caches that one on first
 * read, so a reader before the middleware would otherwise keep seeing the client's original
 * Authorization header).
 */
function rewriteRequestHeaders(edge, decision, req, headers = req.headers) {
  const raw = Array.isArray(req.rawHeaders) ? req.rawHeaders : null
  const pairs = headerPairs(raw ?? headers)
  const { drop, set } = edge.edge.upstreamHeaders(pairs, decision.headerValue, 'in_process')
  const views = new Set([headers, req.headers])
  for (const i of drop) {
    for (const h of views) {
      delete h[pairs[i][0]]
      delete h[pairs[i][0].toLowerCase()]
    }
  }
  for (const h of views) for (const [n, v] of set) h[n] = v
  if (raw === null) return
  const out = []
  const distinct = Object.create(null)
  const keep = (n, v) => {
    out.push(n, v)
    ;(distinct[n.toLowerCase()] ??= []).push(v)
  }
  for (let i = 0, j = 0; i < pairs.length; i++) {
    if (j < drop.length && drop[j] === i) j++
    else keep(pairs[i][0], pairs[i][1])
  }
  for (const [n, v] of set) keep(n, v)
  req.rawHeaders = out
  Object.defineProperty(req, 'headersDistinct', { value: distinct, configurable: true, writable: true, enumerable: false })
}

/**
 * base64url(SHA-256(DER)) of the TLS client certificate the request's connection presented, or
 * null. The TLS handshake proved the client holds its key; whether a CA vouches for it does not
 * matter to certificate-bound tokens (RFC 8705 §2.2 allows self-signed ones): the core compares
 * this thumbprint with the token's `cnf.x5t#S256`. The same rule as the ASGI middleware.
 */
function certThumbprint(req) {
  const sock = req.socket
  if (!sock || typeof sock.getPeerCertificate !== 'function') return null
  const cert = sock.getPeerCertificate()
  if (!cert || !cert.raw) return null
  return require('node:crypto').createHash('sha256').update(cert.raw).digest('base64url')
}

module.exports = { PhantomEdge, certThumbprint, credentials, headerPairs, rewriteRequestHeaders, auditJson }
