//! The request event, and reading credentials from it (RFC 6750 §2.1, RFC 9449 §7.1).

/// A request as the host sees it. Header names may be in any case; repeated headers are listed
/// as often as they occur.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// Chosen by the host; every decision quotes it.
    pub id: crate::RequestId,
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// `https` or `http`, as the client used it.
    pub scheme: &'a str,
    /// `host[:port]` as the client addressed it.
    pub authority: &'a str,
    /// Path, optionally followed by `?query`.
    pub path: &'a str,
    /// Request headers. Only `authorization` and `dpop` are read.
    pub headers: &'a [(&'a str, &'a str)],
    /// `base64url(SHA-256(DER client certificate))` when the host terminated mutual TLS.
    pub client_cert_thumbprint: Option<&'a str>,
}

/// Header values are left out (`Authorization` and `DPoP` carry credentials): only the names
/// are printed.
impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("method", &self.method)
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field("header_names", &names)
            .field("client_cert_thumbprint", &self.client_cert_thumbprint)
            .finish()
    }
}

/// Largest token we look at (RFC 8725 §3.1 spirit: cap before work).
pub const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credentials<'a> {
    /// No Authorization header, or a scheme other than Bearer/DPoP.
    None,
    /// Repeated header, bad syntax, oversize.
    Malformed(&'static str),
    Bearer(&'a str),
    Dpop(&'a str),
}

/// The token68 characters before any trailing `=` (RFC 9110 §11.2): `ALPHA / DIGIT / "-" / "." /
/// "_" / "~" / "+" / "/"`, as a table (one load per byte on the hot path, also in wasm).
const TOKEN68: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    t
};

pub(crate) fn is_token68(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| TOKEN68[usize::from(b)])
}

pub(crate) fn credentials<'a>(headers: &[(&str, &'a str)]) -> Credentials<'a> {
    let mut found: Option<&'a str> = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("authorization") {
            if found.is_some() {
                return Credentials::Malformed("more than one Authorization header");
            }
            found = Some(value);
        }
    }
    let Some(value) = found else {
        return Credentials::None;
    };
    let ws = |c: char| c == ' ' || c == '\t';
    let value = value.trim_matches(ws);
    // Byte search: an ASCII delimiter, so both slices stay on char boundaries.
    let (scheme, rest) = match value.bytes().position(|b| b == b' ' || b == b'\t') {
        Some(i) => (&value[..i], value[i + 1..].trim_start_matches(ws)),
        None => (value, ""),
    };
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Credentials::None;
    }
    if rest.is_empty() {
        return Credentials::Malformed("empty token");
    }
    if rest.len() > MAX_TOKEN_LEN {
        return Credentials::Malformed("token too long");
    }
    if !is_token68(rest) {
        return Credentials::Malformed("token is not token68 syntax");
    }
    if dpop {
        Credentials::Dpop(rest)
    } else {
        Credentials::Bearer(rest)
    }
}

/// An `access_token` query parameter (RFC 6750 §2.3), looked at only when
/// `request.allow_query_token` is set.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum QueryToken {
    Absent,
    /// The decoded token and the path with the rest of the query, to forward instead.
    One {
        token: String,
        rewritten: String,
    },
    Malformed(&'static str),
}

/// Whether some server reads a query parameter of this (decoded) name as `access_token`: ASCII
/// case-insensitively (ASP.NET), `.`, space and `[` as `_` (PHP), with a `[...]` suffix (PHP,
/// Rack and qs arrays and objects: `access_token[]`, `access_token[0]`, `access_token[x]`).
fn read_as_access_token(name: &str) -> bool {
    let name = match name.find('[') {
        Some(i) if i > 0 && name.ends_with(']') => &name[..i],
        _ => name,
    };
    name.len() == "access_token".len()
        && name
            .bytes()
            .map(|b| match b {
                b'.' | b' ' | b'[' => b'_',
                b => b.to_ascii_lowercase(),
            })
            .eq("access_token".bytes())
}

/// The name of a query parameter (`name=value`) as servers read it: percent- and
/// `+`-decoded (`access%5Ftoken` is `access_token`).
fn param_name(param: &str) -> std::borrow::Cow<'_, str> {
    let name = param.split('=').next().unwrap_or("");
    form_urlencoded::parse(name.as_bytes())
        .next()
        .map_or(std::borrow::Cow::Borrowed(""), |(n, _)| n)
}

/// `target` without the query parameters some server reads as `access_token` (any spelling
/// [`query_token`] takes or refuses, also inside a `;`-separated parameter), for hosts to log or
/// keep instead of the target as received; `None` when there is none. Each `&`-separated
/// parameter holding such a name is dropped whole.
pub fn redact_query_tokens(target: &str) -> Option<String> {
    let (base, query) = target.split_once('?')?;
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let credential = |seg: &str| seg.split(';').any(|p| read_as_access_token(&param_name(p)));
    if !query.split('&').any(credential) {
        return None;
    }
    let rest: Vec<&str> = query
        .split('&')
        .filter(|seg| !seg.is_empty() && !credential(seg))
        .collect();
    let mut out = base.to_owned();
    if !rest.is_empty() {
        out.push('?');
        out.push_str(&rest.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}

pub(crate) fn query_token(path: &str) -> QueryToken {
    let Some((base, query)) = path.split_once('?') else {
        return QueryToken::Absent;
    };
    let query = query.split('#').next().unwrap_or("");
    let mut token = None;
    let mut rest = Vec::new();
    for seg in query.split('&') {
        // `;` is a separator to some servers: a token there would pass this edge untouched and
        // reach the app.
        if seg.contains(';') && seg.split(';').any(|p| read_as_access_token(&param_name(p))) {
            return QueryToken::Malformed("access_token in a ';'-separated parameter");
        }
        let name = param_name(seg);
        if name != "access_token" && read_as_access_token(&name) {
            return QueryToken::Malformed("access_token spelt another way");
        }
        if name != "access_token" {
            if !seg.is_empty() {
                rest.push(seg);
            }
            continue;
        }
        if token.is_some() {
            return QueryToken::Malformed("more than one access_token parameter");
        }
        let value = form_urlencoded::parse(seg.as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if value.is_empty() {
            return QueryToken::Malformed("empty token");
        }
        if value.len() > MAX_TOKEN_LEN {
            return QueryToken::Malformed("token too long");
        }
        if !is_token68(&value) {
            return QueryToken::Malformed("token is not token68 syntax");
        }
        token = Some(value);
    }
    match token {
        None => QueryToken::Absent,
        Some(token) => {
            let rewritten = if rest.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", rest.join("&"))
            };
            QueryToken::One { token, rewritten }
        }
    }
}

/// Reads the path part of a request target before routing. `Err(why)`: refused, for characters
/// no request target may carry and for encodings that servers and proxies upstream decode in
/// ways that differ (`%2F`, `%5C`, `%25`, encoded controls, overlong UTF-8), for dot segments and
/// `//`. Otherwise the path as lenient upstreams read it ([`canonical_path`]), when that differs
/// from the path as sent (`Ok(None)`: it does not), for the caller to route both ways. One pass
/// over the bytes for the common path; the lenient reading is built only when needed.
pub(crate) fn check_path(target: &str) -> Result<Option<String>, &'static str> {
    let b = target.as_bytes();
    if b.first() != Some(&b'/') {
        // `admin/x` or `` would be routed as neither `/admin` nor `/`, yet an upstream may
        // read it as `/admin/x`: only origin-form targets are decided on.
        return Err("the path does not start with /");
    }
    if b.contains(&b'#') {
        return Err("fragment (#) in the request target");
    }
    let end = b.iter().position(|&c| c == b'?').unwrap_or(b.len());
    let path = &b[..end];
    let mut lenient = false; // a `%`, `;` or trailing-dot segment: the lenient reading differs
    let mut seg_start = 0;
    let mut i = 0;
    while i <= path.len() {
        let c = path.get(i).copied().unwrap_or(b'/');
        match c {
            b'/' => {
                let seg = &path[seg_start..i];
                match seg {
                    b"." | b".." => return Err("dot segment (. or ..) in the path"),
                    [] if i > 0 && i < path.len() => {
                        return Err("empty segment (//) in the path");
                    }
                    [.., b'.'] => lenient = true,
                    _ => {}
                }
                seg_start = i + 1;
            }
            b'\\' => return Err("backslash in the path"),
            0x00..=0x20 | 0x7f => return Err("space or control character in the path"),
            // `;`, and non-ASCII text: some letters case-fold to ASCII ones (`ı`, `ſ`, `K`).
            b';' | 0x80..=0xff => lenient = true,
            b'%' => {
                lenient = true;
                if let (Some(h), Some(l)) = (
                    path.get(i + 1).copied().and_then(hex),
                    path.get(i + 2).copied().and_then(hex),
                ) {
                    match h << 4 | l {
                        b'/' | b'\\' => return Err("encoded slash or backslash in the path"),
                        b'%' => return Err("encoded percent sign in the path"),
                        0x00..=0x20 | 0x7f => {
                            return Err("encoded space or control character in the path");
                        }
                        0xc0 | 0xc1 => return Err("overlong UTF-8 in the path"),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    if !lenient {
        return Ok(None);
    }
    let canon = canonical_path(&target[..end]);
    if canon.contains("//") {
        return Err("empty segment (//) in the path");
    }
    if canon.split('/').any(|seg| seg == "." || seg == "..") {
        return Err("dot segment (. or ..) in the path");
    }
    Ok(Some(canon))
}

/// The path part of a request target (before `?`).
pub(crate) fn raw_path(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or("")
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The path as lenient upstreams read it: `%XX` decoded, each segment cut at `;` (matrix or
/// session parameters, `..;`) and stripped of trailing dots (`admin.`), except `.` and `..`
/// themselves, and non-ASCII letters in lower case ([`fold_non_ascii`]; those that case-fold to
/// an ASCII letter as that letter). Only for comparing readings: never forwarded. (ASCII case is
/// compared separately, by routing case-insensitively.)
pub(crate) fn canonical_path(path: &str) -> String {
    let path = raw_path(path);
    let mut bytes = Vec::with_capacity(path.len());
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                bytes.push(h << 4 | l);
                i += 3;
            }
            (c, _, _) => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    let mut decoded = String::from_utf8_lossy(&bytes);
    if !decoded.is_ascii() {
        decoded = decoded
            .chars()
            .map(fold_non_ascii)
            .collect::<String>()
            .into();
    }
    let segments: Vec<&str> = decoded
        .split('/')
        .map(|seg| {
            let seg = seg.split(';').next().unwrap_or("");
            if seg == "." || seg == ".." {
                seg
            } else {
                seg.trim_end_matches('.')
            }
        })
        .collect();
    segments.join("/")
}

/// A non-ASCII character as case-insensitive servers compare it: its ASCII twin ([`ascii_twin`]),
/// else its lowercase when that is one character (`É` → `é`: `/CAFÉ` is `/café` to .NET's
/// `OrdinalIgnoreCase`), else itself. ASCII is left to the router's ASCII case folding.
fn fold_non_ascii(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    ascii_twin(c).unwrap_or_else(|| {
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) => l,
            _ => c,
        }
    })
}

/// The ASCII letter (lowercase) a non-ASCII letter ([`fold_non_ascii`] passes only those)
/// becomes under a case mapping, where that mapping is one letter (combining marks aside): `ı`
/// (→ `I`), `ſ` (→ `S`), `K` Kelvin (→ `k`), `İ` (→ `i̇`). .NET's `OrdinalIgnoreCase`
/// (ASP.NET routing), Java's `equalsIgnoreCase` and `toUpperCase` read `/admın` as `/ADMIN`. Not
/// `ß` or `ﬁ`, which map to two letters.
fn ascii_twin(c: char) -> Option<char> {
    let one = |mapped: &mut dyn Iterator<Item = char>| {
        let mut letters = mapped.filter(|m| !('\u{300}'..='\u{36f}').contains(m));
        match (letters.next(), letters.next()) {
            (Some(a), None) if a.is_ascii_alphabetic() => Some(a.to_ascii_lowercase()),
            _ => None,
        }
    };
    one(&mut c.to_uppercase()).or_else(|| one(&mut c.to_lowercase()))
}

/// `scheme://authority/path` normalised for DPoP `htu` comparison: scheme and host lowercased,
/// default port removed, query and fragment dropped, empty path as `/`.
pub(crate) fn normalize_htu(scheme: &str, authority: &str, path: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    let mut authority = authority.to_ascii_lowercase();
    let default = if scheme == "https" {
        ":443"
    } else if scheme == "http" {
        ":80"
    } else {
        ""
    };
    if !default.is_empty() && authority.ends_with(default) {
        authority.truncate(authority.len() - default.len());
    }
    format!("{scheme}://{authority}{}", htu_path(path))
}

/// The path of an `htu`: query and fragment dropped, empty as `/`.
pub(crate) fn htu_path(path: &str) -> &str {
    let path = path.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() { "/" } else { path }
}

/// Splits an absolute URL for [`normalize_htu`].
pub(crate) fn normalize_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(normalize_htu(scheme, authority, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token68_alphabet() {
        let allowed: String = (0u8..=255)
            .filter(|&b| TOKEN68[usize::from(b)])
            .map(char::from)
            .collect();
        assert_eq!(
            allowed,
            "+-./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
        );
        assert!(is_token68("abc=="));
        assert!(!is_token68("a=b"));
        assert!(!is_token68("=="));
        assert!(!is_token68("a b"));
        assert!(!is_token68("\u{e9}"));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(credentials(&[]), Credentials::None);
        assert_eq!(
            credentials(&[("Authorization", "Bearer abc")]),
            Credentials::Bearer("abc")
        );
        assert_eq!(
            credentials(&[("authorization", "bearer  abc=")]),
            Credentials::Bearer("abc=")
        );
        assert_eq!(
            credentials(&[("AUTHORIZATION", "DPoP abc")]),
            Credentials::Dpop("abc")
        );
        assert_eq!(
            credentials(&[("authorization", "Basic dXNlcg==")]),
            Credentials::None
        );
        assert!(matches!(
            credentials(&[("authorization", "Bearer")]),
            Credentials::Malformed(_)
        ));
        assert!(matches!(
            credentials(&[("authorization", "Bearer a b")]),
            Credentials::Malformed(_)
        ));
        assert!(matches!(
            credentials(&[("authorization", "Bearer a\"b")]),
            Credentials::Malformed(_)
        ));
        assert!(matches!(
            credentials(&[("authorization", "Bearer ===")]),
            Credentials::Malformed(_)
        ));
        assert!(matches!(
            credentials(&[("authorization", "Bearer a"), ("Authorization", "Bearer b")]),
            Credentials::Malformed(_)
        ));
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert!(matches!(
            credentials(&[("authorization", &long)]),
            Credentials::Malformed(_)
        ));
    }

    #[test]
    fn query_tokens() {
        assert_eq!(query_token("/a"), QueryToken::Absent);
        assert_eq!(query_token("/a?x=1"), QueryToken::Absent);
        assert_eq!(
            query_token("/a?x=1&access_token=ab%2Bc&y=2"),
            QueryToken::One {
                token: "ab+c".into(),
                rewritten: "/a?x=1&y=2".into()
            }
        );
        assert_eq!(
            query_token("/a?access_token=t"),
            QueryToken::One {
                token: "t".into(),
                rewritten: "/a".into()
            }
        );
        assert!(matches!(
            query_token("/a?access_token=a&access_token=b"),
            QueryToken::Malformed(_)
        ));
        assert!(matches!(
            query_token("/a?access_token="),
            QueryToken::Malformed(_)
        ));
        assert!(matches!(
            query_token("/a?access_token=a%20b"),
            QueryToken::Malformed(_)
        ));
        // Spellings servers read as access_token.
        assert_eq!(
            query_token("/a?x=1&access%5Ftoken=t"),
            QueryToken::One {
                token: "t".into(),
                rewritten: "/a?x=1".into()
            }
        );
        assert!(matches!(
            query_token("/a?x=1;access_token=t"),
            QueryToken::Malformed(_)
        ));
        assert!(matches!(
            query_token("/a?access_token=a&access%5ftoken=b"),
            QueryToken::Malformed(_)
        ));
        assert_eq!(query_token("/a?x=a;b&y=c"), QueryToken::Absent);
        for other in [
            "ACCESS_TOKEN",
            "Access_Token",
            "access_token[]",
            "access_token[0]",
            "access_token[x]",
            "access.token",
            "access+token",
            "access[token",
        ] {
            assert!(
                matches!(
                    query_token(&format!("/a?{other}=t")),
                    QueryToken::Malformed(_)
                ),
                "{other}"
            );
        }
        assert_eq!(query_token("/a?access_tokens=t"), QueryToken::Absent);
        assert_eq!(query_token("/a?access[token]=t"), QueryToken::Absent);
    }

    #[test]
    fn htu_normalisation() {
        assert_eq!(
            normalize_htu("HTTPS", "API.example:443", "/a?b#c"),
            "https://api.example/a"
        );
        assert_eq!(normalize_htu("http", "h:8080", ""), "http://h:8080/");
        assert_eq!(
            normalize_url("https://Server.Example.com/token?x").unwrap(),
            "https://server.example.com/token"
        );
        assert_eq!(normalize_url("https://u@h/x"), None);
    }

    #[test]
    fn ambiguous_paths_are_named() {
        let a = |p| check_path(p).err();
        for ok in [
            "/orders/1",
            "/orders/1?x=../y",
            "/orders/1?next=//x",
            "/",
            "/a.b/c..d/...x",
            "/files/v1.2",
            "/%41dmin",
            "/a%2",
            "/a%",
            "/a%zz",
            "/orders/ABC-123",
            "/caf\u{e9}",
            "/\u{e9}\u{e9}/\u{e9}.x/\u{1F600}",
            "/caf%C3%A9",
        ] {
            assert_eq!(a(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("/orders/../admin", "dot"),
            ("/orders/..", "dot"),
            ("/orders/.", "dot"),
            ("/orders/%2e%2E/admin", "dot"),
            ("/orders/.%2e/admin", "dot"),
            ("/orders/..;/admin", "dot"),
            ("/orders/.%2e;x/admin", "dot"),
            ("/orders/..%3b/admin", "dot"),
            ("/orders%2fadmin", "slash"),
            ("/orders%2F..%2Fadmin", "slash"),
            ("/orders%5cadmin", "slash"),
            ("/orders\\admin", "backslash"),
            ("//admin", "//"),
            ("/orders//1", "//"),
            ("/orders/;x/1", "//"),
            ("/orders/%00", "control"),
            ("/orders/%0a", "control"),
            ("/orders/%7F", "control"),
            ("/orders/%20", "space"),
            ("/orders/a b", "space"),
            ("/orders/\t", "control"),
            ("/orders/\u{7f}", "control"),
            ("/orders/%252e%252e/admin", "percent"),
            ("/orders/%C0%AE%C0%AE/admin", "overlong"),
            ("/orders#/../admin", "fragment"),
            ("admin/x", "does not start with /"),
            ("", "does not start with /"),
            ("?x=1", "does not start with /"),
        ] {
            let got = a(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(got.contains(why), "{bad:?}: {got}");
        }
    }

    #[test]
    fn every_spelling_of_a_query_token_is_redacted() {
        for (target, redacted) in [
            ("/o?access_token=T", Some("/o")),
            ("/o?a=1&access_token=T&b=2", Some("/o?a=1&b=2")),
            ("/o?access%5Ftoken=T", Some("/o")),
            ("/o?ACCESS_TOKEN=T&x", Some("/o?x")),
            ("/o?access.token=T", Some("/o")),
            ("/o?access_token[]=T", Some("/o")),
            ("/o?access_token[0]=T&access_token[x]=U", Some("/o")),
            ("/o?access_token%5B0%5D=T", Some("/o")),
            ("/o?x=1;access_token=T&y=2", Some("/o?y=2")),
            ("/o?access_token=T&access_token=U#f", Some("/o#f")),
            ("/o?a=access_token", None),
            ("/o?access_tokens=T", None),
            ("/o", None),
        ] {
            assert_eq!(redact_query_tokens(target).as_deref(), redacted, "{target}");
        }
    }

    #[test]
    fn letters_that_case_fold_to_ascii_are_read_as_ascii() {
        for (path, read) in [
            ("/adm\u{131}n", "/admin"),       // dotless i: upper case I
            ("/adm%C4%B1n", "/admin"),        // the same, encoded
            ("/\u{17f}ecret", "/secret"),     // long s: upper case S
            ("/\u{212a}eys", "/keys"),        // Kelvin sign: lower case k
            ("/\u{130}nfo", "/info"),         // I with dot: lower case i + combining dot
            ("/stra\u{df}e", "/stra\u{df}e"), // sharp s: SS, two letters
            ("/\u{fb01}le", "/\u{fb01}le"),   // fi ligature: FI, two letters
            ("/caf\u{e9}", "/caf\u{e9}"),     // é: É
            ("/CAF\u{c9}", "/CAF\u{e9}"),     // É: é (ASCII case is the router's)
            ("/caf%C3%89", "/caf\u{e9}"),     // the same, encoded
        ] {
            assert_eq!(canonical_path(path), read, "{path}");
        }
        assert_eq!(check_path("/adm\u{131}n"), Ok(Some("/admin".into())));
        assert_eq!(check_path("/caf\u{e9}"), Ok(Some("/caf\u{e9}".into())));
    }

    #[test]
    fn canonical_paths() {
        use super::canonical_path as c;
        assert_eq!(c("/orders/1?x=1"), "/orders/1");
        assert_eq!(check_path("/orders/1?x=%2F"), Ok(None));
        assert_eq!(
            check_path("/orders/%77rite"),
            Ok(Some("/orders/write".to_string()))
        );
        assert_eq!(c("/orders/%77rite"), "/orders/write");
        assert_eq!(c("/orders/write;jsessionid=1/x"), "/orders/write/x");
        assert_eq!(c("/orders/write./x"), "/orders/write/x");
        assert_eq!(c("/orders/..;/admin"), "/orders/../admin");
        assert_eq!(c("/caf%C3%A9"), "/caf\u{e9}");
    }
}
