'use strict'
// The async host of the core: performs the I/O the core asks for with the built-in fetch, drives
// its timers and routes its decisions to the waiting requests by request id. No policy here:
// every decision comes from the core.
const { Edge } = require('./edge.js')
const { EdgeError, RevocationError } = require('./errors.js')

/** The only request headers the core reads. */
const CORE_HEADERS = new Set(['authorization', 'dpop'])

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

const isDpop = ([name]) => name.length === 4 && name.toLowerCase() === 'dpop'

/**
 * The headers the core reads (`authorization`, `dpop`, every occurrence) as `[name, value]` pairs,
 * from: an array of pairs, a flat `rawHeaders` array, a `Headers` object, or a plain object
 * (`IncomingHttpHeaders`: values may be arrays).
 */
function coreHeaders(headers) {
  const out = []
  if (headers == null) return out
  if (Array.isArray(headers)) {
    if (headers.length > 0 && typeof headers[0] === 'string') {
      for (let i = 0; i + 1 < headers.length; i += 2) {
        const n = headers[i].toLowerCase()
        if (CORE_HEADERS.has(n)) out.push([n, headers[i + 1]])
      }
    } else {
      for (const [n, v] of headers) {
        const l = String(n).toLowerCase()
        if (CORE_HEADERS.has(l)) out.push([l, String(v)])
      }
    }
    return out
  }
  if (typeof headers.entries === 'function' && typeof headers.get === 'function') {
    // WHATWG Headers joins repeated values with ", ": the core then sees one malformed value.
    for (const n of CORE_HEADERS) {
      const v = headers.get(n)
      if (v != null) out.push([n, v])
    }
    return out
  }
  for (const k of Object.keys(headers)) {
    const n = k.toLowerCase()
    if (!CORE_HEADERS.has(n)) continue
    const v = headers[k]
    if (Array.isArray(v)) for (const x of v) out.push([n, String(x)])
    else if (v != null) out.push([n, String(v)])
  }
  return out
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
    this._current = -1
    this._decided = null
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
    this._pump()
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
      coreHeaders(headers), clientCertThumbprint)
  }

  /**
   * Like `authorize`, with the URL split and the headers already as `[name, value]` pairs (only
   * `authorization` and `dpop` are read).
   */
  authorizeParts(method, scheme, authority, path, headerPairs, clientCertThumbprint = null) {
    if (this._closing) return Promise.reject(new Error('phantom-edge: closed'))
    const id = ++this._nextId
    // Fast path: decided at once with nothing else to do (a hit without audit logging, or a
    // rejection that needs no I/O). Nothing new to time: no ticket was created.
    const fast = this.edge.decide(id, method, scheme, authority, path, headerPairs, clientCertThumbprint, Date.now())
    if (fast !== null) {
      // A decision at once adds no ticket; only a DPoP proof (its replay entry) can start the
      // sweep deadline then (core: Edge::take_decision), so only then is an idle timer armed.
      // (An armed one may fire after the new sweep time: the sweep runs late, which only
      // delays freeing entries.)
      if (this._timer === null && headerPairs.some(isDpop)) this._armTimer()
      return Promise.resolve(fast)
    }
    this._current = id
    this._decided = null
    try {
      this._pump()
    } finally {
      this._current = -1
    }
    const decided = this._decided
    if (decided !== null) {
      this._decided = null
      return Promise.resolve(decided)
    }
    // A waiting request keeps the process alive until the core decides (the timer is ref'd).
    if (this._timer !== null && typeof this._timer.ref === 'function') this._timer.ref()
    return new Promise((resolve) => this._waiters.set(id, resolve))
  }

  /** The revocation route: `{ status: 204, body: '' }` or `{ status: 400|401, body: json }`. */
  revoke(contentType, authorization, body) {
    let result
    try {
      this.edge.handleAdminRevocation(contentType ?? null, authorization ?? null, body, Date.now())
      result = { status: 204, body: '' }
    } catch (e) {
      if (!(e instanceof RevocationError)) throw e
      result = { status: e.status, body: e.body }
    }
    this._pump()
    return Promise.resolve(result)
  }

  /** Prometheus text exposition. */
  metrics() {
    return this.edge.prometheus()
  }

  /**
   * Whether `authorization` carries the `[admin]` bearer token (`null`: none is configured), for
   * operator-only routes such as metrics. The core checks it.
   */
  adminAuthorized(authorization) {
    return this.edge.adminAuthorized(authorization ?? null)
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

  // -- the run loop -------------------------------------------------------------------------

  _pump() {
    const edge = this.edge
    for (let a; (a = edge.pollAction()) !== null;) {
      switch (a.type) {
        case 'forward':
        case 'reject': {
          const id = a.requestId
          if (id === this._current) {
            this._decided = a
          } else {
            const resolve = this._waiters.get(id)
            if (resolve !== undefined) {
              this._waiters.delete(id)
              resolve(a)
            }
          }
          break
        }
        case 'audit':
          if (this._logger !== null) this._audit(a)
          break
        case 'introspect':
          this._track(this._introspect(a))
          break
        case 'fetchJwks':
          this._track(this._fetchJwks(a))
          break
        case 'sharedLookup':
          this._track(this._lookup(a))
          break
        case 'sharedPublish':
          if (this._onPublish !== null) {
            // Sync or async (a Redis publish): a failure is logged, never an unhandled rejection.
            const message = a.message
            this._track(Promise.resolve()
              .then(() => this._onPublish(message))
              .catch((e) => this._log('warn', `phantom_edge publish failed: ${errorName(e)}`)))
          }
          break
      }
    }
    this._armTimer()
  }

  _audit(a) {
    this._log(a.level, `phantom_edge audit ${auditJson(a)}`)
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

  _armTimer() {
    if (this._closed) return
    const at = this.edge.pollTimeout()
    if (at === this._timerAt && this._timer !== null) return
    if (this._timer !== null) clearTimeout(this._timer)
    this._timer = null
    this._timerAt = at
    if (at === null) return
    const delay = Math.max(0, at - Date.now())
    this._timer = setTimeout(() => this._onTimer(), delay)
    // Idle housekeeping (cache sweeps) must not keep the process alive; waiting requests do.
    if (this._waiters.size === 0 && typeof this._timer.unref === 'function') this._timer.unref()
  }

  _onTimer() {
    this._timer = null
    this._timerAt = null
    if (this._closed) return
    this.edge.handleTimeout(Date.now())
    this._pump()
  }

  _feed(call) {
    if (this._closed) return
    try {
      call()
    } catch (e) {
      if (e instanceof EdgeError) {
        // The ticket already timed out in the core: a late answer.
        this._log('debug', `phantom_edge late answer: ${e.kind}`)
      } else {
        // Refused input (a wrong type): the ticket then times out in the core (503).
        this._log('warn', `phantom_edge answer refused: ${errorName(e)}`)
      }
    }
    this._pump()
  }

  async _introspect(a) {
    let resp
    let body
    try {
      resp = await this._fetch(a.url, {
        method: a.method,
        headers: a.headers,
        body: a.body,
        signal: AbortSignal.timeout(Math.max(1, a.timeoutMs)),
        redirect: 'manual',
      })
      body = await readCapped(resp, MAX_ANSWER_BYTES)
    } catch (e) {
      // Transport failure, timeout or an oversized answer: the core fails closed (503/502).
      this._feed(() => this.edge.handleIntrospectionFailure(a.ticket, errorName(e), Date.now()))
      return
    }
    const headers = responseHeaders(resp)
    this._feed(() => this.edge.handleIntrospectionResponse(a.ticket, resp.status, headers, body, Date.now()))
  }

  async _fetchJwks(a) {
    let resp
    let body
    try {
      resp = await this._fetch(a.url, {
        method: 'GET',
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(Math.max(1, this.config.timeoutMs)),
        redirect: 'manual',
      })
      body = await readCapped(resp, MAX_ANSWER_BYTES)
    } catch (e) {
      this._feed(() => this.edge.handleJwksFailure(errorName(e), Date.now()))
      return
    }
    if (resp.status === 200) this._feed(() => this.edge.handleJwks(body, Date.now()))
    else this._feed(() => this.edge.handleJwksFailure(`status ${resp.status}`, Date.now()))
  }

  async _lookup(a) {
    if (this._sharedLookup === null) {
      this._feed(() => this.edge.handleSharedLookup(a.ticket, null, true, Date.now()))
      return
    }
    let value
    try {
      value = await this._sharedLookup(a.key)
    } catch {
      this._feed(() => this.edge.handleSharedLookup(a.ticket, null, true, Date.now()))
      return
    }
    // A store client may answer with bytes (ioredis getBuffer); anything else is a store error.
    if (value instanceof Uint8Array) { // a Buffer too
      try {
        value = UTF8.decode(value)
      } catch {
        value = 0 // not UTF-8: refused below, as the Python host does
      }
    }
    if (value != null && typeof value !== 'string') {
      this._feed(() => this.edge.handleSharedLookup(a.ticket, null, true, Date.now()))
      return
    }
    this._feed(() => this.edge.handleSharedLookup(a.ticket, value ?? null, false, Date.now()))
  }
}

/** Strict UTF-8 (invalid bytes throw instead of becoming U+FFFD). */
const UTF8 = new TextDecoder('utf-8', { fatal: true })

/** Largest introspection or JWKS answer read (the core refuses larger ones anyway). */
const MAX_ANSWER_BYTES = 1024 * 1024

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
 * A header name as WSGI/CGI servers (Django, ...) read it: lowercase, `_` as `-` (`x_user_id` is
 * X-User-Id there). Mirrors the core's `header_name_as_read`, which phantom-gateway calls.
 */
const asRead = (name) => name.toLowerCase().replace(/_/g, '-')

/** The names (as read) a `Forward` removes from the inbound headers: stripped, and the one it sets. */
function removedNames(decision) {
  const names = new Set(decision.stripHeaders.map(asRead))
  names.add(asRead(decision.headerName))
  return names
}

/**
 * `headers` (a plain object, e.g. `req.headers`) rewritten for the upstream after a `Forward`:
 * the stripped headers removed, the upstream header set (names compared as read: `x_user_id`
 * goes with `x-user-id`). Mutates and returns `headers`.
 */
function applyForward(decision, headers) {
  const removed = removedNames(decision)
  for (const name of Object.keys(headers)) if (removed.has(asRead(name))) delete headers[name]
  headers[decision.headerName] = decision.headerValue
  return headers
}

/**
 * Rewrites every header view of a Node `IncomingMessage` after a `Forward`: `headers`,
 * `rawHeaders` and `headersDistinct` (Node caches that one on first read, so a reader before the
 * middleware would otherwise keep seeing the client's original Authorization header).
 */
function rewriteRequestHeaders(decision, req, headers = req.headers) {
  applyForward(decision, headers)
  if (req.headers !== headers) applyForward(decision, req.headers)
  if (!Array.isArray(req.rawHeaders)) return
  const raw = applyForwardRaw(decision, req.rawHeaders)
  req.rawHeaders = raw
  const distinct = Object.create(null)
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    ;(distinct[name] ??= []).push(raw[i + 1])
  }
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

/** The same for a flat `rawHeaders` array. Returns a new array. */
function applyForwardRaw(decision, rawHeaders) {
  const removed = removedNames(decision)
  const out = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (!removed.has(asRead(rawHeaders[i]))) out.push(rawHeaders[i], rawHeaders[i + 1])
  }
  out.push(decision.headerName, decision.headerValue)
  return out
}

module.exports = { PhantomEdge, certThumbprint, coreHeaders, applyForward, applyForwardRaw, rewriteRequestHeaders, auditJson }
