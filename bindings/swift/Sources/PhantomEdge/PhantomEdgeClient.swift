// A small Swift-friendly layer over the generated bindings (Generated/phantom_edge_uniffi.swift).
// Hand-written; no policy lives here: every decision, the upstream headers of a forward and the
// answers of the operator routes are the Rust core's. This file only carries out each Step the
// core returns (fetches over URLSession, shared-store lookups, one timer re-armed to `wakeAt`)
// and hands each request's decision to the `authorize` call waiting for it.

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Errors of the Swift layer, one case per kind of problem; configuration errors name the field.
public enum PhantomEdgeClientError: Error, Equatable, Sendable {
    /// The configuration was refused: `field` is the dotted path of the offending key
    /// (`authorization_server.client_secret_env`), `message` says what is wrong.
    case invalidConfig(field: String, message: String)
    /// A revocation was refused: answer the admin request with `status` (400/401) and `body`.
    case revocationRefused(status: UInt16, body: String)
    /// An answer for a ticket the core never issued.
    case unknownTicket(UInt64)
    /// A shared-store answer for an introspection ticket, or the reverse.
    case wrongTicketKind(UInt64)
    /// Other API misuse (e.g. a seed that is not 32 bytes).
    case apiMisuse(String)

    /// Translates the generated `PhantomEdgeError` (and passes anything else through as
    /// `apiMisuse` with its description).
    public init(_ error: Error) {
        switch error {
        case let e as PhantomEdgeError:
            switch e {
            case let .Config(field, message): self = .invalidConfig(field: field, message: message)
            case let .Revocation(status, _, body): self = .revocationRefused(status: status, body: body)
            case let .UnknownTicket(ticket): self = .unknownTicket(ticket)
            case let .WrongTicketKind(ticket): self = .wrongTicketKind(ticket)
            case let .Api(message): self = .apiMisuse(message)
            }
        case let e as PhantomEdgeClientError:
            self = e
        default:
            self = .apiMisuse(String(describing: error))
        }
    }
}

/// A request the core let through, with everything needed to send it on.
public struct Forwarded: Equatable {
    /// The core's decision: the forwarded header's value, the token's fingerprint and claims.
    public let forward: Forward
    /// The header the edge sets (`headerValue` is its value; it is also in `headers`).
    public let headerName: String
    /// The upstream request's headers, from the core's forwarding policy: the inbound ones it
    /// keeps (bytes and order unchanged), then the ones it sets (the forwarded JWT's; for a
    /// `.proxy` hop also `host` and the `x-forwarded-*` headers). Send exactly these.
    public let headers: [Header]
    /// The path and query to send upstream (without the query token, when it came there).
    public let path: String

    public var requestId: UInt64 { forward.requestId }
    public var headerValue: String { forward.headerValue }
    public var fingerprint: String { forward.fingerprint }
    /// The token's claims as JSON (`sub`, `scope`, `aud`, `exp`, ...).
    public var tokenJson: String { forward.tokenJson }
    public var rewrittenPath: String? { forward.rewrittenPath }
}

/// The outcome of `PhantomEdgeClient.authorize`.
public enum AuthorizationDecision: Equatable {
    /// Forward upstream to `path` with exactly `headers`.
    case forward(Forwarded)
    /// Answer the client with `status`, `wwwAuthenticate` (and `retryAfter`) and `body`.
    case reject(Reject)
}

/// The names of the generated records before the Step driver, kept for source compatibility.
public typealias RejectAction = Reject
public typealias AuditAction = AuditEvent

/// Runs the core's host loop on URLSession and Swift concurrency.
///
/// ```swift
/// let client = try PhantomEdgeClient(configTOML: toml)
/// switch await client.authorize(method: "GET", scheme: "https", authority: "api.example",
///                               path: "/orders/7", headers: [("authorization", "Bearer abc")]) {
/// case .forward(let f): sendUpstream(path: f.path, headers: f.headers)
/// case .reject(let r):  respond(status: Int(r.status), challenge: r.wwwAuthenticate, body: r.body)
/// }
/// ```
public final class PhantomEdgeClient: @unchecked Sendable {
    /// The generated binding object, for everything this layer does not wrap.
    public let edge: PhantomEdge
    /// The forwarding policy (the header every forward sets, the inbound headers it strips).
    public let policy: ForwardPolicy

    private let session: URLSession
    /// Whether `session` was made here (and is invalidated with this client: it holds its delegate).
    private let ownsSession: Bool
    private let lock = NSLock()
    private var nextRequestId: UInt64 = 1
    private var waiters: [UInt64: Waiter] = [:]
    /// The one timer, armed for the last step's `wakeAt`.
    private var timer: (deadline: UInt64, task: Task<Void, Never>)?

    /// An `authorize` call waiting for its decision, with what its forward needs.
    private struct Waiter {
        let continuation: CheckedContinuation<AuthorizationDecision, Never>
        let inbound: [Header]
        let path: String
        let hop: Hop
    }

    /// Called with every audit event (token-free).
    public var onAudit: (@Sendable (AuditEvent) -> Void)?
    /// Called with each revocation to publish to the other instances (JSON selector text).
    public var onSharedPublish: (@Sendable (String) -> Void)?
    /// Split-token mode: look a key up in the shared store; `nil` = not found, throw = store error.
    /// Without it every lookup is answered as a store error (fail closed).
    public var sharedLookup: (@Sendable (String) async throws -> String?)?

    /// Builds the edge from TOML; `*_env` secrets come from the process environment. `seed`
    /// defaults to 32 fresh random bytes. `session` defaults to `PhantomEdgeClient.makeSession()`,
    /// which refuses redirects; a session passed in must refuse them too (see `RefuseRedirects`).
    public convenience init(configTOML: String, seed: Data? = nil, session: URLSession? = nil) throws {
        let edge: PhantomEdge
        do {
            edge = try PhantomEdge.fromToml(text: configTOML, seed: seed ?? Self.randomSeed(),
                                            nowMs: Self.nowMs())
        } catch {
            throw PhantomEdgeClientError(error)
        }
        self.init(edge: edge, session: session)
    }

    /// Builds the edge from JSON (same structure as the TOML).
    public convenience init(configJSON: String, seed: Data? = nil, session: URLSession? = nil) throws {
        let edge: PhantomEdge
        do {
            edge = try PhantomEdge.fromJson(text: configJSON, seed: seed ?? Self.randomSeed(),
                                            nowMs: Self.nowMs())
        } catch {
            throw PhantomEdgeClientError(error)
        }
        self.init(edge: edge, session: session)
    }

    /// Wraps a new edge and carries out its initial step (the JWKS fetch). The edge must not
    /// have been driven by anyone else: this client owns its steps.
    public init(edge: PhantomEdge, session: URLSession? = nil) {
        self.edge = edge
        policy = edge.forwardPolicy()
        self.session = session ?? Self.makeSession()
        ownsSession = session == nil
        drive { $0.initialStep() }
    }

    /// A session for the authorization server: ephemeral (no cookies or credentials kept) and
    /// refusing redirects (the requests carry client credentials; the other hosts refuse them
    /// too). `URLSession.shared` follows redirects: do not pass it.
    public static func makeSession() -> URLSession {
        URLSession(configuration: .ephemeral, delegate: RefuseRedirects(), delegateQueue: nil)
    }

    deinit {
        timer?.task.cancel()
        if ownsSession {
            session.finishTasksAndInvalidate()
        }
    }

    /// The host's clock: Unix milliseconds.
    public static func nowMs() -> UInt64 {
        UInt64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// 32 random bytes from the system generator.
    public static func randomSeed() -> Data {
        var rng = SystemRandomNumberGenerator()
        return Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) })
    }

    /// Authorizes one client request: carries out the I/O the core asks for (introspection over
    /// URLSession), waits for the decision and returns it. Concurrent calls for the same token
    /// share one introspection. `hop` says where a forwarded request goes: `.inProcess` (the
    /// default: this process serves it) or `.proxy(peer:proto:upstreamAuthority:)` (another
    /// server); the forward's `headers` follow from it.
    public func authorize(
        method: String,
        scheme: String,
        authority: String,
        path: String,
        headers: [(String, String)],
        clientCertThumbprint: String? = nil,
        hop: Hop = .inProcess
    ) async -> AuthorizationDecision {
        let inbound = headers.map { Header(name: $0.0, value: $0.1) }
        return await withCheckedContinuation { continuation in
            drive { edge in
                let id = nextRequestId
                nextRequestId += 1
                waiters[id] = Waiter(continuation: continuation, inbound: inbound, path: path, hop: hop)
                return edge.handleRequest(nowMs: Self.nowMs(), request: Request(
                    id: id, method: method, scheme: scheme, authority: authority, path: path,
                    headers: inbound, clientCertThumbprint: clientCertThumbprint))
            }
        }
    }

    /// A revocation (JSON selector text, e.g. `{"sub": "alice"}`) from this instance's API.
    public func revoke(selectorJSON: String) throws {
        try feed { try $0.handleRevocation(nowMs: Self.nowMs(), selectorJson: selectorJSON, origin: .local) }
    }

    /// A revocation published by another instance.
    public func receiveSharedRevocation(message: String) throws {
        try feed { try $0.handleRevocation(nowMs: Self.nowMs(), selectorJson: message, origin: .shared) }
    }

    /// An RFC 8417 Security Event Token (compact JWS), verified against `revocation.set_key`.
    public func receiveSecurityEvent(_ set: String) throws {
        try feed { try $0.handleSecurityEvent(nowMs: Self.nowMs(), set: set) }
    }

    /// An operator route: map your path to a `route` and write the answer out as it is (status,
    /// headers, body). Read at most `maxAdminBody() + 1` bytes of the request body and pass
    /// them; the core answers 413, 405, 401 (with its realm), 403, 204 or 200. `listener`:
    /// `.app` for routes on the app's own (possibly public) listener, where the metrics need
    /// the `[admin]` bearer; `.operator` for a listener only operators reach.
    public func admin(route: AdminRoute, listener: Listener = .app, method: String,
                      authorization: String?, contentType: String?, body: Data) -> AdminAnswer {
        // Replaced by the core's answer: `drive` runs the closure before it returns.
        var answer = AdminAnswer(status: 500, headers: [], body: "")
        drive { edge in
            let outcome = edge.handleAdmin(nowMs: Self.nowMs(), request: AdminRequest(
                route: route, listener: listener, method: method, authorization: authorization,
                contentType: contentType, body: body))
            answer = outcome.answer
            return outcome.step
        }
        return answer
    }

    /// The revocation route, answered by `admin(route: .revocations, ...)`: its status and body.
    @available(*, deprecated, message: "use admin(route: .revocations, ...) and write out its headers too")
    public func adminRevocation(contentType: String?, authorization: String?, body: Data) -> (status: Int, body: String) {
        let answer = admin(route: .revocations, listener: .operator, method: "POST",
                           authorization: authorization, contentType: contentType, body: body)
        return (Int(answer.status), answer.body)
    }

    /// The metrics in the Prometheus text format.
    public func prometheus() -> String { edge.prometheus() }

    // MARK: - The host loop

    /// NSLock.withLock needs macOS 13 / iOS 16; this package supports macOS 12 / iOS 15.
    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Feeds one input to the edge and carries out the step it produced (`nil`: the input was
    /// refused, nothing to do). The input and the timer's re-arming run under the lock, so the
    /// timer follows the steps in the order the core produced them.
    private func drive(_ input: (PhantomEdge) -> Step?) {
        let produced: Step? = locked { () -> Step? in
            guard let step = input(edge) else { return nil }
            rearm(step.wakeAt)
            return step
        }
        guard let step = produced else { return }
        step.decisions.forEach(decide)
        for fetch in step.fetches { Task { await self.fetch(fetch) } }
        for lookup in step.lookups { Task { await self.lookup(lookup) } }
        step.publishes.forEach { onSharedPublish?($0) }
        step.audits.forEach { onAudit?($0) }
    }

    /// `drive` for an input the core can refuse: the refusal is thrown.
    private func feed(_ input: (PhantomEdge) throws -> Step) throws {
        var refusal: Error?
        drive { edge in
            do { return try input(edge) } catch { refusal = error; return nil }
        }
        if let refusal { throw PhantomEdgeClientError(refusal) }
    }

    /// Hands a decision to the `authorize` call waiting for it, a forward with the headers the
    /// core's forwarding policy gives.
    private func decide(_ decision: Decision) {
        switch decision {
        case let .forward(forward):
            guard let waiter = locked({ waiters.removeValue(forKey: forward.requestId) }) else { return }
            let plan = edge.upstreamHeaders(inbound: waiter.inbound, headerValue: forward.headerValue,
                                            hop: waiter.hop)
            let dropped = Set(plan.drop.map(Int.init))
            let kept = waiter.inbound.indices.filter { !dropped.contains($0) }.map { waiter.inbound[$0] }
            waiter.continuation.resume(returning: .forward(Forwarded(
                forward: forward, headerName: policy.headerName, headers: kept + plan.set,
                path: forward.rewrittenPath ?? waiter.path)))
        case let .reject(reject):
            let waiter = locked { waiters.removeValue(forKey: reject.requestId) }
            waiter?.continuation.resume(returning: .reject(reject))
        }
    }

    /// Sends a fetch (introspection or JWKS) as given and feeds back whatever came: any status,
    /// or the failure. The core decides what it means.
    private func fetch(_ fetch: Fetch) async {
        let result: FetchResult
        do {
            guard let url = URL(string: fetch.url) else { throw URLError(.badURL) }
            var request = URLRequest(url: url)
            request.httpMethod = fetch.method
            fetch.headers.forEach { request.setValue($0.value, forHTTPHeaderField: $0.name) }
            request.httpBody = fetch.body.isEmpty ? nil : Data(fetch.body.utf8)
            request.timeoutInterval = Double(fetch.timeoutMs) / 1000
            let (body, http) = try await send(request, limit: Int(clamping: fetch.maxResponseBytes))
            let headers = http.allHeaderFields.compactMap { key, value -> Header? in
                (key as? String).map { Header(name: $0.lowercased(), value: "\(value)") }
            }.sorted { $0.name < $1.name }
            result = .response(status: UInt16(clamping: http.statusCode), headers: headers, body: body)
        } catch {
            result = .failure(detail: error.localizedDescription)
        }
        drive { try? $0.handleFetch(nowMs: Self.nowMs(), ticket: fetch.ticket, result: result) }
    }

    /// Asks the shared store (split-token mode) and feeds the answer back; no store, or one
    /// that throws, is a store error (the core fails closed).
    private func lookup(_ lookup: SharedLookup) async {
        var result = LookupResult.error
        if let sharedLookup {
            do {
                let value = try await sharedLookup(lookup.key)
                result = value.map { LookupResult.found(value: $0) } ?? .notFound
            } catch {}
        }
        drive { try? $0.handleSharedLookup(nowMs: Self.nowMs(), ticket: lookup.ticket, result: result) }
    }

    /// Re-arms the one timer for `wakeAt` (`nil`: nothing pending). Called under the lock.
    private func rearm(_ wakeAt: UInt64?) {
        guard timer?.deadline != wakeAt else { return }
        timer?.task.cancel()
        timer = nil
        guard let deadline = wakeAt else { return }
        let task = Task { [weak self] in
            let now = PhantomEdgeClient.nowMs()
            let wait = deadline > now ? min(deadline - now, 3_600_000) : 0 // ms, at most an hour
            try? await Task.sleep(nanoseconds: wait * 1_000_000)
            guard !Task.isCancelled, let self else { return }
            self.drive { edge in
                if self.timer?.deadline == deadline { self.timer = nil }
                return edge.handleTimeout(nowMs: PhantomEdgeClient.nowMs())
            }
        }
        timer = (deadline: deadline, task: task)
    }

    /// One request to the authorization server: a redirect is not followed (its 3xx is the
    /// answer, which the core refuses), and an answer over `limit` bytes is an error; on Apple
    /// platforms it is refused without being read to the end.
    private func send(_ request: URLRequest, limit: Int) async throws -> (Data, HTTPURLResponse) {
        #if canImport(FoundationNetworking)
        // swift-corelibs-foundation has no `bytes(for:)`: the answer is read, then measured.
        let (data, response) = try await session.data(for: request)
        guard data.count <= limit else {
            throw URLError(.dataLengthExceedsMaximum)
        }
        #else
        let (bytes, response) = try await session.bytes(for: request)
        if response.expectedContentLength > Int64(limit) {
            bytes.task.cancel()
            throw URLError(.dataLengthExceedsMaximum)
        }
        var data = Data()
        for try await byte in bytes {
            guard data.count < limit else {
                bytes.task.cancel()
                throw URLError(.dataLengthExceedsMaximum)
            }
            data.append(byte)
        }
        #endif
        guard let http = response as? HTTPURLResponse else {
            throw URLError(.badServerResponse)
        }
        return (data, http)
    }
}

/// A session delegate that refuses every redirect: the task completes with the 3xx answer itself.
/// `PhantomEdgeClient.makeSession()` uses it; give it to a session of your own the same way.
public final class RefuseRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    public func urlSession(
        _ session: URLSession,
        task: URLSessionTask,
        willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest,
        completionHandler: @escaping (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}
