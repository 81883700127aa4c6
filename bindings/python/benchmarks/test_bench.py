"""Cache-hit and miss decisions through the binding, next to a peer written the way a Python team
would (PyJWT + cachetools.TTLCache + hashlib). Run:

    python -m pytest bindings/python/benchmarks --benchmark-only
"""

from __future__ import annotations

import hashlib
import itertools
import json
import pathlib
import time
import uuid

import jwt
import pytest
from cachetools import TTLCache
from jwt.algorithms import ECAlgorithm

from phantom_edge import Config, Edge, Forward, Step

REPO = pathlib.Path(__file__).resolve().parents[3]
KEYS = REPO / "tests/vectors/keys"
EDGE_KEY = (KEYS / "edge-ed25519.pem").read_text()
AS_KEY = (KEYS / "as-es256.pem").read_text()
ISS = "https://as.example"


def config(dialect: str) -> Config:
    return Config.from_dict({
        "authorization_server": {
            "issuer": ISS, "introspection_endpoint": f"{ISS}/introspect", "jwks_uri": f"{ISS}/jwks",
            "client_id": "gateway", "client_secret": "gateway-secret", "dialect": dialect,
            # The miss benchmark makes ~10k new introspections per second: above the default
            # limit (1000/s), which would answer most rounds 503 `rate_limited` instead.
            "max_introspections_per_second": 1_000_000,
        },
        "cache": {"ignore_no_store": True},
        "assertions": {"signing_key": EDGE_KEY, "kid": "edge-1"},
        "routes": [{"path_prefix": "/orders", "required_scopes": ["orders:read"], "audience": "orders-api"}],
    })


def claims(now: int) -> dict:
    return {"active": True, "client_id": "app", "sub": "alice", "scope": "orders:read",
            "aud": "orders-api", "iss": ISS, "exp": now + 600, "iat": now}


def es256_answer(now: int) -> str:
    return jwt.encode({"token_introspection": claims(now), "aud": "gateway", "iss": ISS, "iat": now},
                      AS_KEY, algorithm="ES256", headers={"typ": "token-introspection+jwt", "kid": "as-es256"})


def jwks() -> str:
    pub = jwt.api_jws.get_algorithm_by_name("ES256").prepare_key(AS_KEY).public_key()
    jwk = json.loads(ECAlgorithm.to_jwk(pub))
    jwk.update(kid="as-es256", alg="ES256", use="sig")
    return json.dumps({"keys": [jwk]})


def request(edge: Edge, rid: int, token: str) -> Step:
    return edge.handle_request(rid, "GET", "https", "api.example", "/orders/1",
                               [("authorization", f"Bearer {token}")])


# -- cache hit -------------------------------------------------------------------------------

def hit_edge() -> Edge:
    edge = Edge(config("rfc7662"))
    edge.initial_step()
    now = int(time.time())
    intro = request(edge, 0, "tok").fetches[0]
    edge.handle_fetch(intro.ticket, 200, [("content-type", "application/json")],
                      json.dumps(claims(now)))
    return edge


def test_hit_phantom_edge(benchmark):
    """A hit with the routine audit on: the step holds the `cache_hit` audit (read, as a host
    logging at DEBUG reads it) and the `Forward`."""
    edge = hit_edge()
    ids = itertools.count(1)

    def run():
        # What a host needs from a hit: the upstream header and the claims (as the peer returns).
        step = request(edge, next(ids), "tok")
        audits, (f,) = step.audits, step.decisions
        return f.header_name, f.header_value, f.token, audits

    name, value, token, audits = benchmark(run)
    assert name == "authorization" and value.startswith("Bearer ") and token["sub"] == "alice"
    assert [a.kind for a in audits] == ["cache_hit"]


def test_hit_phantom_edge_routine_audits_muted(benchmark):
    """The same hit as `AsyncEdge` / the ASGI middleware run it with the logger above DEBUG: the
    routine `cache_hit` audit is muted, so the step holds just the `Forward` (the header list is
    built in each round)."""
    edge = hit_edge()
    edge.mute_audits(["cache_hit"])
    ids = itertools.count(1)

    def run():
        (f,) = request(edge, next(ids), "tok").decisions
        return f.header_name, f.header_value, f.token

    name, value, token = benchmark(run)
    assert name == "authorization" and value.startswith("Bearer ") and token["sub"] == "alice"


def test_hit_phantom_edge_step(benchmark):
    """The hit path: one `handle_request` with the routine audit muted returns a `Step` holding
    the `Forward` (header + claims read), as `AsyncEdge.authorize` (and so the ASGI middleware)
    makes a hit. The header list is built once, as the peer gets its header string. (Before the
    `Step` driver this was `test_hit_phantom_edge_decide`, one `Edge.decide` call.)"""
    edge = hit_edge()
    edge.mute_audits(["cache_hit"])
    ids = itertools.count(1)
    headers = [("authorization", "Bearer tok")]

    def run():
        f = edge.handle_request(next(ids), "GET", "https", "api.example", "/orders/1", headers).decisions[0]
        return f.header_name, f.header_value, f.token

    name, value, token = benchmark(run)
    assert name == "authorization" and value.startswith("Bearer ") and token["sub"] == "alice"


def test_hit_phantom_edge_step_header_only(benchmark):
    """The hit path for a host that reads only the upstream header."""
    edge = hit_edge()
    edge.mute_audits(["cache_hit"])
    ids = itertools.count(1)
    headers = [("authorization", "Bearer tok")]

    def run():
        step = edge.handle_request(next(ids), "GET", "https", "api.example", "/orders/1", headers)
        return step.decisions[0].header_value

    assert benchmark(run).startswith("Bearer ")


def test_hit_phantom_edge_header_only(benchmark):
    """The audit-on hit for a host that reads only the upstream header (the claims dict is not
    built, the audit not read)."""
    edge = hit_edge()
    ids = itertools.count(1)

    def run():
        return request(edge, next(ids), "tok").decisions[0]

    f = benchmark(run)
    assert isinstance(f, Forward) and f.header_value.startswith("Bearer ")


class Peer:
    """What a Python team would write: sha256-keyed TTLCache of claims + a minted JWT per token."""

    def __init__(self) -> None:
        self.cache: TTLCache = TTLCache(maxsize=100_000, ttl=300)
        self.key = jwt.api_jws.get_algorithm_by_name("EdDSA").prepare_key(EDGE_KEY)
        self.as_key = jwt.api_jws.get_algorithm_by_name("ES256").prepare_key(AS_KEY).public_key()

    def mint(self, c: dict) -> str:
        now = int(time.time())
        return jwt.encode({"iss": "phantom-edge", "sub": c.get("sub"), "aud": "orders-api",
                           "scope": c["scope"], "iat": now, "exp": min(now + 60, c["exp"]),
                           "jti": uuid.uuid4().hex}, self.key, algorithm="EdDSA",
                          headers={"typ": "at+jwt", "kid": "edge-1"})

    def hit(self, header: str):
        if not header.startswith("Bearer "):
            return 401
        key = hashlib.sha256(header[7:].encode()).hexdigest()
        entry = self.cache.get(key)
        if entry is None:
            return None
        c, minted = entry
        if c["exp"] <= time.time() or "orders:read" not in c["scope"].split() or c["aud"] != "orders-api":
            return 401
        return ("authorization", f"Bearer {minted}", c)

    def miss(self, header: str, answer: str):
        payload = jwt.decode(answer, self.as_key, algorithms=["ES256"], audience="gateway", issuer=ISS,
                             options={"require": ["iat"]})
        c = payload["token_introspection"]
        if not c.get("active") or c["iss"] != ISS:
            return 401
        key = hashlib.sha256(header[7:].encode()).hexdigest()
        minted = self.mint(c)
        self.cache[key] = (c, minted)
        return self.hit(header)


def test_hit_peer_pyjwt_cachetools(benchmark):
    peer = Peer()
    now = int(time.time())
    peer.cache[hashlib.sha256(b"tok").hexdigest()] = (claims(now), peer.mint(claims(now)))
    assert benchmark(peer.hit, "Bearer tok")[0] == "authorization"


# -- miss: RFC 9701 ES256 answer verified, claims checked, JWT minted -------------------------

def test_miss_es256_phantom_edge(benchmark):
    edge = Edge(config("rfc9701"))
    (fetch_jwks,) = edge.initial_step().fetches
    edge.handle_fetch(fetch_jwks.ticket, 200, [("content-type", "application/json")], jwks())
    answer = es256_answer(int(time.time()))
    hdrs = [("content-type", "application/token-introspection+jwt")]
    ids = itertools.count(1)

    def run():
        rid = next(ids)
        intro = request(edge, rid, f"tok-{rid}").fetches[0]
        return edge.handle_fetch(intro.ticket, 200, hdrs, answer).decision(rid)

    f = benchmark(run)
    assert isinstance(f, Forward) and f.request_id > 0


def test_miss_es256_peer_pyjwt(benchmark):
    peer = Peer()
    answer = es256_answer(int(time.time()))
    ids = itertools.count(1)

    def run():
        return peer.miss(f"Bearer tok-{next(ids)}", answer)

    assert benchmark(run)[0] == "authorization"
