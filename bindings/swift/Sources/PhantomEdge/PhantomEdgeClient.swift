// A small Swift-friendly layer over the generated bindings (Generated/phantom_edge_uniffi.swift).
// Hand-written; no policy lives here: every decision is the Rust core's. This file only performs
// the I/O the core asks for (introspection and JWKS over URLSession, timers) and routes each
// request's Forward / Reject back to the `authorize` call that is waiting for it.

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

/// The outcome of `PhantomEdgeClient.authorize`.
public enum AuthorizationDecision: Equatable {
    /// Forward upstream: set `header_name: header_value`, remove `strip_headers`, and when
    /// `rewritten_path` is set (a query token), forward that path and query instead.
    case forward(ForwardAction)
    /// Answer the client with `status`, `www_authenticate` and `body`.
    case reject(RejectAction)
}

/// Runs the core's host loop on URLSession and Swift concurrency.
///
/// ```swift
/// let client = try PhantomEdgeClient(configTOML: toml)
/// switch await client.authorize(method: "GET", scheme: "https", authority: "api.example",
///                               path: "/orders/7", headers: [("authorization", "Bearer abc")]) {
/// case .forward(let f): upstream.setValue(f.headerValue, forHTTPHeaderField: f.headerName)
/// case .reject(let r):  respond(status: Int(r.status), challenge: r.wwwAuthenticate, body: r.body)
/// }
/// ```
public final class PhantomEdgeClient: @unchecked Sendable {
    /// The generated binding object, for everything this layer does not wrap.
    public let edge: PhantomEdge

    private let session: URLSession
    /// Whether `session` was made here (and is invalidated with this client: it holds its delegate).
    private let ownsSession: Bool
    private let lock = NSLock()
    private var nextRequestId: UInt64 = 1
    private var waiters: [UInt64: CheckedContinuation<AuthorizationDecision, Never>] = [:]
    private var timerDeadline: UInt64?
    private var timerTask: Task<Void, Never>?

    /// Called with every audit event (token-free).
    public var onAudit: (@Sendable (AuditAction) -> Void)?
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

    /// Wraps an existing edge. Carries out the actions it has queued (the initial JWKS fetch).
    public init(edge: PhantomEdge, session: URLSession? = nil) {
        self.edge = edge
        self.session = session ?? Self.makeSession()
        ownsSession = session == nil
        pump()
    }

    /// Largest introspection or JWKS answer read, as in the Python and Node hosts (the core
    /// refuses larger ones anyway).
    public static let maxAnswerBytes = 1024 * 1024

    /// A session for the authorization server: ephemeral (no cookies or credentials kept) and
    /// refusing redirects (the requests carry client credentials; the other hosts refuse them
    /// too). `URLSession.shared` follows redirects: do not pass it.
    public static func makeSession() -> URLSession {
        URLSession(configuration: .ephemeral, delegate: RefuseRedirects(), delegateQueue: nil)
    }

    deinit {
        timerTask?.cancel()
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

    /// Authorizes one client request: introspects the token if the core asks to (over
    /// URLSession), waits for the answer, and returns the core's decision. Concurrent calls for
    /// the same token share one introspection.
    public func authorize(
        method: String,
        scheme: String,
        authority: String,
        path: String,
        headers: [(String, String)],
        clientCertThumbprint: String? = nil
    ) async -> AuthorizationDecision {
        let id: UInt64 = locked {
            defer { nextRequestId += 1 }
            return nextRequestId
        }
        let request = Request(
            id: id, method: method, scheme: scheme, authority: authority, path: path,
            headers: headers.map { Header(name: $0.0, value: $0.1) },
            clientCertThumbprint: clientCertThumbprint
        )
        return await withCheckedContinuation { continuation in
            locked { waiters[id] = continuation }
            edge.handleRequest(nowMs: Self.nowMs(), request: request)
            pump()
        }
    }

    /// A revocation (JSON selector text, e.g. `{"sub": "alice"}`) from this instance's API.
    public func revoke(selectorJSON: String) throws {
        do {
            try edge.handleRevocation(nowMs: Self.nowMs(), selectorJson: selectorJSON, origin: .local)
        } catch {
            throw PhantomEdgeClientError(error)
        }
        pump()
    }

    /// A revocation published by another instance.
    public func receiveSharedRevocation(message: String) throws {
        do {
            try edge.handleRevocation(nowMs: Self.nowMs(), selectorJson: message, origin: .shared)
        } catch {
            throw PhantomEdgeClientError(error)
        }
        pump()
    }

    /// The admin revocation route: returns the HTTP status and body to answer with.
    public func adminRevocation(contentType: String?, authorization: String?, body: Data) -> (status: Int, body: String) {
        defer { pump() }
        do {
            try edge.handleAdminRevocation(nowMs: Self.nowMs(), contentType: contentType,
                                           authorization: authorization, body: body)
            return (204, "")
        } catch PhantomEdgeError.Revocation(let status, _, let body) {
            return (Int(status), body)
        } catch {
            return (500, "")
        }
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

    /// Carries out every queued action, then re-arms the timer.
    private func pump() {
        while let action = edge.pollAction() {
            switch action {
            case let .forward(forward):
                resume(forward.requestId, with: .forward(forward))
            case let .reject(reject):
                resume(reject.requestId, with: .reject(reject))
            case let .introspect(introspect):
                Task { await self.introspect(introspect) }
            case let .fetchJwks(url):
                Task { await self.fetchJwks(url: url) }
            case let .sharedLookup(ticket, key):
                Task { await self.lookup(ticket: ticket, key: key) }
            case let .sharedPublish(message):
                onSharedPublish?(message)
            case let .audit(audit):
                onAudit?(audit)
            case .unknown:
                break
            }
        }
        armTimer()
    }

    private func resume(_ id: UInt64, with decision: AuthorizationDecision) {
        let waiter = locked { waiters.removeValue(forKey: id) }
        waiter?.resume(returning: decision)
    }

    private func introspect(_ i: IntrospectAction) async {
        do {
            guard let url = URL(string: i.url) else {
                throw URLError(.badURL)
            }
            var request = URLRequest(url: url)
            request.httpMethod = i.method
            for header in i.headers {
                request.setValue(header.value, forHTTPHeaderField: header.name)
            }
            request.httpBody = Data(i.body.utf8)
            request.timeoutInterval = Double(i.timeoutMs) / 1000
            let (data, http) = try await send(request)
            let headers: [Header] = http.allHeaderFields.compactMap { key, value in
                guard let name = key as? String else { return nil }
                return Header(name: name.lowercased(), value: "\(value)")
            }.sorted { $0.name < $1.name }
            try? edge.handleIntrospectionResponse(
                nowMs: Self.nowMs(), ticket: i.ticket,
                status: UInt16(clamping: http.statusCode), headers: headers, body: data
            )
        } catch {
            try? edge.handleIntrospectionFailure(nowMs: Self.nowMs(), ticket: i.ticket,
                                                 detail: error.localizedDescription)
        }
        pump()
    }

    private func fetchJwks(url: String) async {
        do {
            guard let u = URL(string: url) else { throw URLError(.badURL) }
            var request = URLRequest(url: u)
            request.setValue("application/json", forHTTPHeaderField: "Accept")
            let (data, http) = try await send(request)
            if http.statusCode == 200 {
                edge.handleJwksResponse(nowMs: Self.nowMs(), body: data)
            } else {
                edge.handleJwksFailure(nowMs: Self.nowMs(), detail: "status \(http.statusCode)")
            }
        } catch {
            edge.handleJwksFailure(nowMs: Self.nowMs(), detail: error.localizedDescription)
        }
        pump()
    }

    /// One request to the authorization server: a redirect is not followed (its 3xx is the
    /// answer, which the core refuses), and an answer over `maxAnswerBytes` is an error; on Apple
    /// platforms it is refused without being read to the end.
    private func send(_ request: URLRequest) async throws -> (Data, HTTPURLResponse) {
        #if canImport(FoundationNetworking)
        // swift-corelibs-foundation has no `bytes(for:)`: the answer is read, then measured.
        let (data, response) = try await session.data(for: request)
        guard data.count <= Self.maxAnswerBytes else {
            throw URLError(.dataLengthExceedsMaximum)
        }
        #else
        let (bytes, response) = try await session.bytes(for: request)
        if response.expectedContentLength > Int64(Self.maxAnswerBytes) {
            bytes.task.cancel()
            throw URLError(.dataLengthExceedsMaximum)
        }
        var data = Data()
        for try await byte in bytes {
            guard data.count < Self.maxAnswerBytes else {
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

    private func lookup(ticket: UInt64, key: String) async {
        let result: LookupResult
        if let sharedLookup {
            do {
                if let value = try await sharedLookup(key) {
                    result = .found(value: value)
                } else {
                    result = .notFound
                }
            } catch {
                result = .error
            }
        } else {
            result = .error
        }
        try? edge.handleSharedLookup(nowMs: Self.nowMs(), ticket: ticket, result: result)
        pump()
    }

    /// Keeps one timer armed for the core's earliest deadline.
    private func armTimer() {
        guard let deadline = edge.pollTimeout() else { return }
        let arm: Bool = locked {
            if let current = timerDeadline, current <= deadline { return false }
            timerDeadline = deadline
            timerTask?.cancel()
            return true
        }
        guard arm else { return }
        let task = Task { [weak self] in
            let now = PhantomEdgeClient.nowMs()
            if deadline > now {
                try? await Task.sleep(nanoseconds: (deadline - now) * 1_000_000)
            }
            guard !Task.isCancelled, let self else { return }
            self.locked { self.timerDeadline = nil }
            self.edge.handleTimeout(nowMs: PhantomEdgeClient.nowMs())
            self.pump()
        }
        locked { timerTask = task }
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
