//! `phantom-gateway split`: a JWT on standard input, the split-token parts as JSON out.

use std::io::Write;
use std::process::{Command, Stdio};

fn split(stdin: &str, args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_phantom-gateway"))
        .arg("split")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("phantom-gateway runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const JWT: &str = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDMwMH0.c2lnbmF0dXJl";

#[test]
fn split_prints_the_sealed_parts() {
    let (code, out, err) = split(&format!("{JWT}\n"), &[]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The same parts as the core's helper (which the edge opens: core tests and vectors).
    let s = phantom_edge_core::split_jwt(JWT, "phantom-edge:split:").unwrap();
    assert_eq!(v["client_token"], s.client_token);
    assert_eq!(v["store_key"], s.store_key);
    assert_eq!(v["store_value"], s.store_value);
    assert_eq!(v["expires_at"], 1_700_000_300);
    assert!(!out.contains("eyJ"), "no claims in clear");
    let (code, out, _) = split(JWT, &["--key-prefix", "app:"]);
    assert_eq!(code, 0);
    assert!(out.contains("\"store_key\":\"app:"));
}

#[test]
fn split_refuses_what_is_not_a_jws() {
    let (code, out, err) = split("not-a-jwt", &[]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("not a compact JWS"), "{err}");
}
