//! Stable-toolchain run of every fuzz target: the seed corpus in `corpus/<target>/`, then
//! seed mutations and raw pseudo-random inputs from a fixed-seed xorshift (deterministic).

use std::path::Path;

const TARGETS: [(&str, fn(&[u8])); 4] = [
    (
        "authorization_header",
        phantom_edge_fuzz::authorization_header,
    ),
    (
        "introspection_response",
        phantom_edge_fuzz::introspection_response,
    ),
    ("config", phantom_edge_fuzz::config),
    ("revocation_body", phantom_edge_fuzz::revocation_body),
];

/// Pseudo-random inputs per target (in addition to the corpus).
const ITERATIONS: usize = 10_000;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn mutate(rng: &mut XorShift, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                let b = b"{}[]\".=:,\0 \n\ttrue-1e999"[rng.below(23)];
                v.insert(i, b);
            }
            4 if !v.is_empty() => {
                // splice: a chunk of another seed
                let o = &seeds[rng.below(seeds.len())];
                let i = rng.below(v.len());
                let j = rng.below(o.len() + 1);
                v.splice(i..i, o[..j].iter().copied().take(64));
            }
            _ if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            _ => {}
        }
    }
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(target: &str, f: fn(&[u8]), input: &[u8]) {
    if std::panic::catch_unwind(|| f(input)).is_err() {
        panic!("{target} failed on input (hex): {}", hex(input));
    }
}

fn smoke(target: &str, f: fn(&[u8])) {
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "empty corpus for {target}");
    for s in &seeds {
        run(target, f, s);
    }
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ target.len() as u64);
    for i in 0..ITERATIONS {
        let input = if i % 4 == 0 {
            let n = rng.below(96);
            (0..n).map(|_| rng.next() as u8).collect()
        } else {
            mutate(&mut rng, &seeds)
        };
        run(target, f, &input);
    }
}

#[test]
fn authorization_header() {
    smoke(TARGETS[0].0, TARGETS[0].1);
}
#[test]
fn introspection_response() {
    smoke(TARGETS[1].0, TARGETS[1].1);
}
#[test]
fn config() {
    smoke(TARGETS[2].0, TARGETS[2].1);
}
#[test]
fn revocation_body() {
    smoke(TARGETS[3].0, TARGETS[3].1);
}

/// Positive controls: bodies signed with the AS keys DO forward, so "no Forward" in the target
/// is a real check, not an artefact of a broken key set.
#[test]
fn valid_signatures_forward() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for d in ["rfc9701", "curity", "keycloak"] {
        let body = std::fs::read(dir.join(format!("valid_{d}"))).unwrap();
        assert!(
            phantom_edge_fuzz::introspection_outcome(d, &body),
            "{d}: valid answer not forwarded"
        );
    }
    let active = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/introspection_response/rfc7662_active"),
    )
    .unwrap();
    assert!(phantom_edge_fuzz::introspection_outcome("rfc7662", &active));
}
