// Replays the shared cross-language vectors (tests/vectors/cases/*.json, format in
// tests/vectors/README.md) through the generated Swift bindings, exactly as
// core/tests/vectors.rs does through the Rust API and bindings/uniffi/tests/replay_vectors.py
// through the generated Python bindings of the same library.
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

/// Inputs → binding calls, actions → canonical JSON (see tests/vectors/README.md).
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

    static func ticketResult(_ call: () throws -> Void) throws -> JSON? {
        do {
            try call()
            return nil
        } catch PhantomEdgeError.UnknownTicket {
            return .object(["error": .string("unknown_ticket")])
        } catch PhantomEdgeError.WrongTicketKind {
            return .object(["error": .string("wrong_ticket_kind")])
        }
    }

    static func revocationResult(_ call: () throws -> Void) throws -> JSON {
        do {
            try call()
            return .object(["ok": .bool(true)])
        } catch let PhantomEdgeError.Revocation(status, _, _) {
            return .object(["error": .object(["status": num(status)])])
        }
    }

    /// Feeds one input at `now`, then drains the actions.
    static func apply(_ edge: PhantomEdge, _ now: UInt64, _ input: JSON) throws -> ([Action], JSON?) {
        var result: JSON?
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
            edge.handleRequest(nowMs: now, request: request)
        case "introspection_response":
            let headers = try pairs(input, "headers")
            guard let status = UInt16(exactly: try u(input, "status")) else {
                throw BadInput(description: "status out of range")
            }
            let ticket = try u(input, "ticket")
            let body = Data(try s(input, "body").utf8)
            result = try ticketResult {
                try edge.handleIntrospectionResponse(nowMs: now, ticket: ticket, status: status,
                                                     headers: headers, body: body)
            }
        case "introspection_failure":
            let ticket = try u(input, "ticket")
            let detail = try s(input, "detail")
            result = try ticketResult {
                try edge.handleIntrospectionFailure(nowMs: now, ticket: ticket, detail: detail)
            }
        case "jwks":
            edge.handleJwksResponse(nowMs: now, body: Data(try s(input, "body").utf8))
        case "jwks_failure":
            edge.handleJwksFailure(nowMs: now, detail: try s(input, "detail"))
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
            result = try ticketResult {
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
            result = try revocationResult {
                try edge.handleRevocation(nowMs: now, selectorJson: text, origin: origin)
            }
        case "admin_revocation":
            let contentType = try optS(input, "content_type")
            let authorization = try optS(input, "authorization")
            let body = Data(try s(input, "body").utf8)
            do {
                try edge.handleAdminRevocation(nowMs: now, contentType: contentType,
                                               authorization: authorization, body: body)
                result = .object(["status": .int(204)])
            } catch let PhantomEdgeError.Revocation(status, _, _) {
                result = .object(["status": num(status)])
            }
        case "security_event":
            let set = try s(input, "set")
            result = try revocationResult { try edge.handleSecurityEvent(nowMs: now, set: set) }
        case "timeout":
            edge.handleTimeout(nowMs: now)
        case let other:
            throw BadInput(description: "unknown input type \(other)")
        }
        var actions: [Action] = []
        while let action = edge.pollAction() {
            actions.append(action)
        }
        return (actions, result)
    }

    /// The canonical JSON of one action.
    static func canon(_ action: Action) throws -> JSON {
        switch action {
        case let .forward(f):
            return .object([
                "type": .string("forward"),
                "request_id": num(f.requestId),
                "header_name": .string(f.headerName),
                "header_value": .string(f.headerValue),
                "strip_headers": .array(f.stripHeaders.map { .string($0) }),
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
        case let .introspect(i):
            return .object([
                "type": .string("introspect"),
                "ticket": num(i.ticket),
                "method": .string(i.method),
                "url": .string(i.url),
                "headers": .array(i.headers.map { .array([.string($0.name), .string($0.value)]) }),
                "body": .string(i.body),
                "timeout_ms": num(i.timeoutMs),
                "fingerprint": .string(i.fingerprint),
            ])
        case let .fetchJwks(url):
            return .object(["type": .string("fetch_jwks"), "url": .string(url)])
        case let .sharedLookup(ticket, key):
            return .object(["type": .string("shared_lookup"), "ticket": num(ticket), "key": .string(key)])
        case let .sharedPublish(message):
            return .object(["type": .string("shared_publish"), "message": .string(message)])
        case let .audit(e):
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
        case let .unknown(description):
            throw Mismatch(description: "action without a canonical form: \(description)")
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

    /// Replays one case; throws at the first mismatch.
    static func replay(_ c: JSON) throws {
        guard let name = c["name"]?.string, let config = c["config"],
              let seedHex = c["seed"]?.string, let start = c["start"]?.uint64,
              let steps = c["steps"]?.array else {
            throw BadInput(description: "case lacks name/config/seed/start/steps")
        }
        let edge = try PhantomEdge.fromJsonWithEnv(text: config.text, env: [:],
                                                   seed: try seed(seedHex), nowMs: start)
        let initial = JSON.array(try edge.drainActions().map(canon))
        try check(name, "initial actions", c["initial"] ?? .array([]), initial)
        for (i, step) in steps.enumerated() {
            guard let now = step["now"]?.uint64, let input = step["input"] else {
                throw BadInput(description: "case \(name): step \(i) has no now/input")
            }
            let what = "step \(i) (\(input["type"]?.string ?? "?") at \(now))"
            let (actions, result) = try apply(edge, now, input)
            try check(name, "\(what): actions", step["expect"] ?? .null, .array(try actions.map(canon)))
            try check(name, "\(what): result", step["result"] ?? .null, result ?? .null)
            if let timeout = step["timeout"] {
                try check(name, "\(what): poll_timeout", timeout, edge.pollTimeout().map { num($0) } ?? .null)
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
        XCTAssertGreaterThanOrEqual(files.count, 40, "expected at least 40 vector cases in \(Self.casesDir.path)")
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

    func testFirstActionIsTheJwksFetch() throws {
        let edge = try PhantomEdge.fromTomlWithEnv(
            text: Self.keycloakTOML, env: ["PHANTOM_EDGE_TEST_SECRET": "s3cret"],
            seed: Data(count: 32), nowMs: 1_700_000_000_000)
        XCTAssertEqual(edge.pollAction(), .fetchJwks(url: "https://as.example/jwks"))
        XCTAssertNil(edge.pollAction())
        XCTAssertEqual(edge.fingerprint(token: "opaque").count, 32)
    }

    func testAdminAuthorizedIsNilWithoutAdminAndTrueOnlyForItsBearer() throws {
        let env = ["PHANTOM_EDGE_TEST_SECRET": "s3cret"]
        let secret = "admin-secret-0123456789"
        let bare = try PhantomEdge.fromTomlWithEnv(
            text: Self.keycloakTOML, env: env, seed: Data(count: 32), nowMs: 0)
        let admin = try PhantomEdge.fromTomlWithEnv(
            text: Self.keycloakTOML + "\n[admin]\ntoken = \"\(secret)\"\n", env: env,
            seed: Data(count: 32), nowMs: 0)
        let cases: [(String?, Bool)] = [
            ("Bearer \(secret)", true), ("bearer  \(secret) ", true), ("Bearer \(secret)x", false),
            ("Bearer wrong-0123456789", false), ("Basic \(secret)", false), (nil, false),
        ]
        for (authorization, want) in cases {
            XCTAssertEqual(admin.adminAuthorized(authorization: authorization), want, "\(String(describing: authorization))")
            XCTAssertNil(bare.adminAuthorized(authorization: authorization), "\(String(describing: authorization))")
        }
    }
}
