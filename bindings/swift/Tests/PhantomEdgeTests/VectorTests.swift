// Replays the shared cross-language vectors (tests/vectors/cases/*.json, format in
// tests/vectors/README.md) through the generated Swift bindings, one Step per input, as
// bindings/uniffi/tests/vectors.rs does from Rust and bindings/uniffi/tests/replay_vectors.py
// through the generated Python bindings of the same library: each of a Step's lists equals the
// expected actions of its types, and its wakeAt the step's `timeout`.
//
// Run: cargo build -p phantom-edge-uniffi && cd bindings/swift &&
//      PHANTOM_EDGE_LIB_DIR=$PWD/../../target/debug swift test

import Foundation
import XCTest
@testable import PhantomEdge

/// A JSON value with exact equality (integers kept apart from reals and booleans).
indirect enum JSON: Equatable, Codable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSON].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSON].self))
        }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case let .bool(b): try c.encode(b)
        case let .int(i): try c.encode(i)
        case let .double(d): try c.encode(d)
        case let .string(s): try c.encode(s)
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }

    static func parse(_ data: Data) throws -> JSON {
        try JSONDecoder().decode(JSON.self, from: data)
    }

    var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(self) else { return "?" }
        return String(decoding: data, as: UTF8.self)
    }

    var description: String { text }

    subscript(key: String) -> JSON? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    var string: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    var uint64: UInt64? {
        if case let .int(i) = self, i >= 0 { return UInt64(i) }
        return nil
    }

    var array: [JSON]? {
        if case let .array(a) = self { return a }
        return nil
    }
}

private func num(_ v: UInt64) -> JSON { .int(Int64(clamping: v)) }
private func num(_ v: UInt16) -> JSON { .int(Int64(v)) }
private func opt(_ v: String?) -> JSON { v.map { .string($0) } ?? .null }
private func opt(_ v: UInt32?) -> JSON { v.map { .int(Int64($0)) } ?? .null }

struct BadInput: Error, CustomStringConvertible {
    let description: String
}

struct Mismatch: Error, CustomStringConvertible {
    let description: String
}

/// Inputs → binding calls, Steps → canonical JSON (see tests/vectors/README.md).
enum Driver {
    static func s(_ v: JSON, _ k: String) throws -> String {
        guard let x = v[k]?.string else { throw BadInput(description: "input member \(k) must be a string") }
        return x
    }

    static func optS(_ v: JSON, _ k: String) throws -> String? {
        switch v[k] {
        case .none, .some(.null): return nil
        case let .some(.string(x)): return x
        default: throw BadInput(description: "input member \(k) must be a string or null")
        }
    }

    static func u(_ v: JSON, _ k: String) throws -> UInt64 {
        guard let x = v[k]?.uint64 else {
            throw BadInput(description: "input member \(k) must be a non-negative integer")
        }
        return x
    }

    static func pairs(_ v: JSON, _ k: String) throws -> [Header] {
        guard let arr = v[k]?.array else {
            throw BadInput(description: "input member \(k) must be an array of [name, value]")
        }
        return try arr.map { p in
            guard let pair = p.array, pair.count == 2,
                  let name = pair[0].string, let value = pair[1].string else {
                throw BadInput(description: "\(k): each entry must be [name, value]")
            }
            return Header(name: name, value: value)
        }
    }

    static func headerPairs(_ headers: [Header]) -> JSON {
        .array(headers.map { .array([.string($0.name), .string($0.value)]) })
    }

    /// The step a call returned (`nil`: it threw, or returns none) and the vector's `result`.
    typealias Outcome = (step: Step?, result: JSON?)

    static func ticketResult(_ call: () throws -> Step) throws -> Outcome {
        do {
            let step = try call()
            return (step, nil)
        } catch PhantomEdgeError.UnknownTicket {
            return (nil, .object(["error": .string("unknown_ticket")]))
        } catch PhantomEdgeError.WrongTicketKind {
            return (nil, .object(["error": .string("wrong_ticket_kind")]))
        }
    }

    static func revocationResult(_ call: () throws -> Step) throws -> Outcome {
        do {
            let step = try call()
            return (step, .object(["ok": .bool(true)]))
        } catch let PhantomEdgeError.Revocation(status, _, _) {
            return (nil, .object(["error": .object(["status": num(status)])]))
        }
    }

    /// Feeds one input at `now`; returns its step and result.
    static func apply(_ edge: PhantomEdge, _ now: UInt64, _ input: JSON) throws -> Outcome {
        switch try s(input, "type") {
        case "request":
            let request = Request(
                id: try u(input, "id"),
                method: try s(input, "method"),
                scheme: try s(input, "scheme"),
                authority: try s(input, "authority"),
                path: try s(input, "path"),
                headers: try pairs(input, "headers"),
                clientCertThumbprint: try optS(input, "client_cert_thumbprint")
            )
            return (edge.handleRequest(nowMs: now, request: request), nil)
        case "fetch_response":
            guard let status = UInt16(exactly: try u(input, "status")) else {
                throw BadInput(description: "status out of range")
            }
            let answer = FetchResult.response(status: status, headers: try pairs(input, "headers"),
                                              body: Data(try s(input, "body").utf8))
            let ticket = try u(input, "ticket")
            return try ticketResult { try edge.handleFetch(nowMs: now, ticket: ticket, result: answer) }
        case "fetch_failure":
            let failure = FetchResult.failure(detail: try s(input, "detail"))
            let ticket = try u(input, "ticket")
            return try ticketResult { try edge.handleFetch(nowMs: now, ticket: ticket, result: failure) }
        case "shared_lookup":
            let lookup: LookupResult
            switch input["result"] {
            case .some(.string("not_found")): lookup = .notFound
            case .some(.string("error")): lookup = .error
            case let .some(.object(o)):
                guard let value = o["found"]?.string else {
                    throw BadInput(description: "shared_lookup result: {\"found\": string}")
                }
                lookup = .found(value: value)
            default:
                throw BadInput(description: "shared_lookup result must be found/not_found/error")
            }
            let ticket = try u(input, "ticket")
            return try ticketResult {
                try edge.handleSharedLookup(nowMs: now, ticket: ticket, result: lookup)
            }
        case "revocation":
            guard let selector = input["selector"] else {
                throw BadInput(description: "revocation needs a selector object")
            }
            let origin: Origin
            switch try s(input, "origin") {
            case "local": origin = .local
            case "shared": origin = .shared
            case let o: throw BadInput(description: "unknown origin \(o)")
            }
            let text = selector.text
            return try revocationResult {
                try edge.handleRevocation(nowMs: now, selectorJson: text, origin: origin)
            }
        case "admin":
            let route: AdminRoute
            switch try s(input, "route") {
            case "revocations": route = .revocations
            case "metrics": route = .metrics
            case "jwks": route = .jwks
            case let r: throw BadInput(description: "unknown route \(r)")
            }
            let listener: Listener
            switch try s(input, "listener") {
            case "operator": listener = .operator
            case "app": listener = .app
            case let l: throw BadInput(description: "unknown listener \(l)")
            }
            let outcome = edge.handleAdmin(nowMs: now, request: AdminRequest(
                route: route, listener: listener, method: try s(input, "method"),
                authorization: try optS(input, "authorization"),
                contentType: try optS(input, "content_type"),
                body: Data(try s(input, "body").utf8)))
            let a = outcome.answer
            return (outcome.step, .object([
                "status": num(a.status), "headers": headerPairs(a.headers), "body": .string(a.body),
            ]))
        case "upstream_headers":
            let hop: Hop
            switch input["hop"] {
            case .some(.string("in_process")): hop = .inProcess
            case let .some(.object(o)):
                guard let p = o["proxy"] else { throw BadInput(description: "hop: {\"proxy\": {...}}") }
                hop = .proxy(peer: try optS(p, "peer"), proto: try s(p, "proto"),
                             upstreamAuthority: try optS(p, "upstream_authority"))
            default:
                throw BadInput(description: "hop: \"in_process\" or {\"proxy\": {...}}")
            }
            let plan = edge.upstreamHeaders(inbound: try pairs(input, "inbound"),
                                            headerValue: try s(input, "header_value"), hop: hop)
            return (nil, .object([
                "drop": .array(plan.drop.map { .int(Int64($0)) }), "set": headerPairs(plan.set),
            ]))
        case "security_event":
            let set = try s(input, "set")
            return try revocationResult { try edge.handleSecurityEvent(nowMs: now, set: set) }
        case "timeout":
            return (edge.handleTimeout(nowMs: now), nil)
        case let other:
            throw BadInput(description: "unknown input type \(other)")
        }
    }

    /// The canonical JSON of a decision (the forward's header name and strip list are the
    /// edge's forwarding policy).
    static func canon(_ decision: Decision, _ policy: ForwardPolicy) throws -> JSON {
        switch decision {
        case let .forward(f):
            return .object([
                "type": .string("forward"),
                "request_id": num(f.requestId),
                "header_name": .string(policy.headerName),
                "header_value": .string(f.headerValue),
                "strip_headers": .array(policy.stripHeaders.map { .string($0) }),
                "fingerprint": .string(f.fingerprint),
                "token": try JSON.parse(Data(f.tokenJson.utf8)),
            ])
        case let .reject(r):
            return .object([
                "type": .string("reject"),
                "request_id": num(r.requestId),
                "status": num(r.status),
                "www_authenticate": opt(r.wwwAuthenticate),
                "retry_after": opt(r.retryAfter),
                "body": .string(r.body),
                "reason": .string(r.reason),
                "fingerprint": opt(r.fingerprint),
            ])
        }
    }

    static func canon(_ f: Fetch) -> JSON {
        .object([
            "type": .string("fetch"),
            "ticket": num(f.ticket),
            "kind": .string(f.kind == .introspection ? "introspection" : "jwks"),
            "method": .string(f.method),
            "url": .string(f.url),
            "headers": headerPairs(f.headers),
            "body": .string(f.body),
            "timeout_ms": num(f.timeoutMs),
            "max_response_bytes": num(f.maxResponseBytes),
            "fingerprint": opt(f.fingerprint),
        ])
    }

    static func canon(_ e: AuditEvent) throws -> JSON {
        let level: String
        switch e.level {
        case .debug: level = "debug"
        case .info: level = "info"
        case .warn: level = "warn"
        }
        var o: [String: JSON] = ["type": .string("audit"), "kind": .string(e.kind), "level": .string(level)]
        if let v = e.requestId { o["request_id"] = num(v) }
        if let v = e.ticket { o["ticket"] = num(v) }
        if let v = e.fingerprint { o["fingerprint"] = .string(v) }
        if let v = e.reason { o["reason"] = .string(v) }
        if let v = e.detail { o["detail"] = .string(v) }
        // The one-line JSON must say the same as the fields.
        if case var .object(whole) = try JSON.parse(Data(e.json.utf8)) {
            whole["type"] = .string("audit")
            if whole != o {
                throw Mismatch(description: "audit json \(e.json) disagrees with its fields")
            }
        }
        return .object(o)
    }

    /// A Step's lists, by name, with the action types each holds (tests/vectors/README.md).
    static let lists: [(name: String, types: Set<String>)] = [
        ("decisions", ["forward", "reject"]), ("fetches", ["fetch"]),
        ("lookups", ["shared_lookup"]), ("publishes", ["shared_publish"]), ("audits", ["audit"]),
    ]

    static func canon(_ step: Step, _ policy: ForwardPolicy) throws -> [String: [JSON]] {
        let decisions = try step.decisions.map { try canon($0, policy) }
        let audits = try step.audits.map { try canon($0) }
        let lookups: [JSON] = step.lookups.map {
            .object(["type": .string("shared_lookup"), "ticket": num($0.ticket), "key": .string($0.key)])
        }
        let publishes: [JSON] = step.publishes.map {
            .object(["type": .string("shared_publish"), "message": .string($0)])
        }
        return ["decisions": decisions, "fetches": step.fetches.map { canon($0) }, "lookups": lookups,
                "publishes": publishes, "audits": audits]
    }

    /// Each of the step's lists equals the expected actions of its types, in order.
    static func checkStep(_ name: String, _ what: String, _ expected: JSON, _ step: Step,
                          _ policy: ForwardPolicy) throws {
        guard let expected = expected.array else {
            throw BadInput(description: "case \(name), \(what): expect must be an array")
        }
        let actual = try canon(step, policy)
        for list in lists {
            let want = expected.filter { list.types.contains($0["type"]?.string ?? "") }
            try check(name, "\(what): \(list.name)", .array(want), .array(actual[list.name] ?? []))
        }
        let known = lists.reduce(into: Set<String>()) { $0.formUnion($1.types) }
        if let unknown = expected.first(where: { !known.contains($0["type"]?.string ?? "") }) {
            throw Mismatch(description: "case \(name), \(what): unknown action \(unknown.text)")
        }
    }

    static func firstDifference(_ path: String, _ a: JSON, _ b: JSON) -> String? {
        switch (a, b) {
        case let (.object(x), .object(y)):
            for k in Set(x.keys).union(y.keys).sorted() {
                let p = "\(path)/\(k)"
                guard let i = x[k], let j = y[k] else {
                    return "\(p): expected \(x[k]?.text ?? "nothing"), got \(y[k]?.text ?? "nothing")"
                }
                if let d = firstDifference(p, i, j) { return d }
            }
            return nil
        case let (.array(x), .array(y)):
            for (i, (l, r)) in zip(x, y).enumerated() {
                if let d = firstDifference("\(path)/\(i)", l, r) { return d }
            }
            return x.count == y.count ? nil : "\(path): expected \(x.count) elements, got \(y.count)"
        default:
            return a == b ? nil : "\(path): expected \(a.text), got \(b.text)"
        }
    }

    static func check(_ name: String, _ what: String, _ expected: JSON, _ actual: JSON) throws {
        if let d = firstDifference("", expected, actual) {
            throw Mismatch(description: "case \(name), \(what): mismatch at \(d)\n--- expected\n\(expected.text)\n--- actual\n\(actual.text)")
        }
    }

    static func seed(_ hex: String) throws -> Data {
        let chars = Array(hex.utf8)
        guard chars.count == 64 else {
            throw BadInput(description: "seed must be 64 hex digits, got \(chars.count)")
        }
        var out = Data()
        for i in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16) else {
                throw BadInput(description: "seed: not hex")
            }
            out.append(byte)
        }
        return out
    }

    /// Replays one case through a Step per input; throws at the first mismatch. A call that
    /// returned no step (it threw, or `upstreamHeaders`) queued nothing the vector expects now,
    /// and the timer stays where the last step put it.
    static func replay(_ c: JSON) throws {
        guard let name = c["name"]?.string, let config = c["config"],
              let seedHex = c["seed"]?.string, let start = c["start"]?.uint64,
              let steps = c["steps"]?.array else {
            throw BadInput(description: "case lacks name/config/seed/start/steps")
        }
        let edge = try PhantomEdge.fromJsonWithEnv(text: config.text, env: [:],
                                                   seed: try seed(seedHex), nowMs: start)
        let policy = edge.forwardPolicy()
        let initial = edge.initialStep()
        try checkStep(name, "initial step", c["initial"] ?? .array([]), initial, policy)
        var wakeAt = initial.wakeAt
        for (i, step) in steps.enumerated() {
            guard let now = step["now"]?.uint64, let input = step["input"] else {
                throw BadInput(description: "case \(name): step \(i) has no now/input")
            }
            let what = "step \(i) (\(input["type"]?.string ?? "?") at \(now))"
            let (returned, result) = try apply(edge, now, input)
            let produced = returned ?? Step(decisions: [], fetches: [], lookups: [], publishes: [],
                                            audits: [], wakeAt: wakeAt)
            try checkStep(name, what, step["expect"] ?? .null, produced, policy)
            wakeAt = produced.wakeAt
            try check(name, "\(what): result", step["result"] ?? .null, result ?? .null)
            if let timeout = step["timeout"] {
                try check(name, "\(what): wake_at", timeout, wakeAt.map { num($0) } ?? .null)
            }
        }
    }
}

final class VectorTests: XCTestCase {
    static var casesDir: URL {
        // Tests/PhantomEdgeTests/VectorTests.swift → repository root → tests/vectors/cases
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("tests/vectors/cases")
    }

    func testVectorsReplay() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.casesDir.path)
            .filter { $0.hasSuffix(".json") }
            .sorted()
        XCTAssertEqual(files.count, 74, "expected 74 vector cases in \(Self.casesDir.path)")
        var failures: [String] = []
        for file in files {
            do {
                let data = try Data(contentsOf: Self.casesDir.appendingPathComponent(file))
                try Driver.replay(try JSON.parse(data))
            } catch {
                failures.append("[\(file)] \(error)")
            }
        }
        XCTAssert(failures.isEmpty, "\(failures.count) of \(files.count) vector cases failed:\n\n"
                  + failures.joined(separator: "\n\n"))
    }

    static let keycloakTOML = """
    [authorization_server]
    issuer = "https://as.example"
    introspection_endpoint = "https://as.example/introspect"
    client_id = "gateway"
    client_secret_env = "PHANTOM_EDGE_TEST_SECRET"
    dialect = "keycloak"
    jwks_uri = "https://as.example/jwks"

    [[routes]]
    path_prefix = "/orders"
    """

    func testConfigErrorNamesTheField() {
        XCTAssertThrowsError(try PhantomEdge.fromTomlWithEnv(
            text: Self.keycloakTOML, env: [:], seed: Data(count: 32), nowMs: 0)) { error in
            guard case let PhantomEdgeClientError.invalidConfig(field, _) = PhantomEdgeClientError(error) else {
                return XCTFail("expected invalidConfig, got \(error)")
            }
            XCTAssertEqual(field, "authorization_server.client_secret_env")
        }
    }

    func testShortSeedIsRefused() {
        XCTAssertThrowsError(try PhantomEdge.fromTomlWithEnv(
            text: Self.keycloakTOML, env: ["PHANTOM_EDGE_TEST_SECRET": "s3cret"],
            seed: Data(count: 3), nowMs: 0)) { error in
            guard case PhantomEdgeClientError.apiMisuse = PhantomEdgeClientError(error) else {
                return XCTFail("expected apiMisuse, got \(error)")
            }
        }
    }

    func testInitialStepIsTheJwksFetch() throws {
        let edge = try PhantomEdge.fromTomlWithEnv(
            text: Self.keycloakTOML, env: ["PHANTOM_EDGE_TEST_SECRET": "s3cret"],
            seed: Data(count: 32), nowMs: 1_700_000_000_000)
        let first = edge.initialStep()
        XCTAssertEqual(first.fetches.map(\.kind), [.jwks])
        XCTAssertEqual(first.fetches.first?.url, "https://as.example/jwks")
        XCTAssertNotNil(first.wakeAt, "the JWKS fetch has a deadline")
        XCTAssertTrue(edge.initialStep().fetches.isEmpty)
        XCTAssertEqual(edge.fingerprint(token: "opaque").count, 32)
        XCTAssertThrowsError(try edge.handleFetch(nowMs: 1_700_000_000_000, ticket: 42,
                                                  result: .failure(detail: "x"))) { error in
            XCTAssertEqual(PhantomEdgeClientError(error), .unknownTicket(42))
        }
    }

    /// The metrics route on the app's listener: 403 without `[admin]`, 401 (with the realm) for
    /// a missing or wrong bearer, 200 only for the `[admin]` bearer secret.
    func testAppMetricsNeedAdminAndOnlyItsBearer() throws {
        let env = ["PHANTOM_EDGE_TEST_SECRET": "s3cret"]
        let secret = "admin-secret-0123456789"
        let bare = try PhantomEdge.fromTomlWithEnv(
            text: Self.keycloakTOML, env: env, seed: Data(count: 32), nowMs: 0)
        let admin = try PhantomEdge.fromTomlWithEnv(
            text: Self.keycloakTOML + "\n[admin]\ntoken = \"\(secret)\"\n", env: env,
            seed: Data(count: 32), nowMs: 0)
        func metrics(_ edge: PhantomEdge, _ authorization: String?) -> AdminAnswer {
            edge.handleAdmin(nowMs: 0, request: AdminRequest(
                route: .metrics, listener: .app, method: "GET", authorization: authorization,
                contentType: nil, body: Data())).answer
        }
        let cases: [(String?, UInt16)] = [
            ("Bearer \(secret)", 200), ("bearer  \(secret) ", 200), ("Bearer \(secret)x", 401),
            ("Bearer wrong-0123456789", 401), ("Basic \(secret)", 401), (nil, 401),
        ]
        for (authorization, want) in cases {
            let answer = metrics(admin, authorization)
            XCTAssertEqual(answer.status, want, "\(String(describing: authorization))")
            if want == 401 {
                XCTAssert(answer.headers.contains(Header(name: "www-authenticate",
                                                         value: "Bearer realm=\"phantom-edge-admin\"")))
            }
            XCTAssertEqual(metrics(bare, authorization).status, 403, "\(String(describing: authorization))")
        }
    }

    func testMuteAudits() throws {
        let edge = try PhantomEdge.fromTomlWithEnv(
            text: Self.keycloakTOML, env: ["PHANTOM_EDGE_TEST_SECRET": "s3cret"],
            seed: Data(count: 32), nowMs: 0)
        XCTAssertThrowsError(try edge.muteAudits(kinds: ["cache_miss", "no_such_kind"]))
        try edge.muteAudits(kinds: ["cache_miss"])
        let request = Request(id: 1, method: "GET", scheme: "https", authority: "api.example",
                              path: "/orders/1", headers: [Header(name: "authorization", value: "Bearer t")],
                              clientCertThumbprint: nil)
        let step = edge.handleRequest(nowMs: 0, request: request)
        XCTAssertEqual(step.fetches.count, 1)
        XCTAssertFalse(step.audits.contains { $0.kind == "cache_miss" })
    }
}
