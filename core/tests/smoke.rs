mod support;
use support::*;

#[test]
fn rfc9701_round_trip() {
    let mut h = Harness::new(base_config("rfc9701"));
    let acts = h.request(1, "/orders/1", "tok-a");
    let t = ticket(&acts);
    let body = h
        .fake
        .rfc9701(&h.fake.es, FakeAs::claims(h.now, "orders:read"), h.now);
    let acts = h.respond(t, 200, "application/token-introspection+jwt", &body);
    let f = forward(&acts);
    let jwt = f.header_value.strip_prefix("Bearer ").unwrap();
    assert_eq!(jwt_claims(jwt)["aud"], "orders-api");
}
