//! Rejections: the `Reject` action and its audit event, with the status, RFC 6750 challenge
//! (RFC 9449 for DPoP) and body for each [`Reason`].

use crate::action::{Action, AuditEvent, AuditKind, Reason, Reject, RequestId};
use crate::config::Config;
use crate::secret::Fingerprint;

use super::Edge;

impl Edge {
    /// Queues the rejection of request `id` and its `rejected` audit event. `scope`: the scopes
    /// an `insufficient_scope` challenge names; `detail`: why, for the audit event only.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reject(
        &mut self,
        id: RequestId,
        reason: Reason,
        fp: Option<Fingerprint>,
        dpop: bool,
        scope: Option<String>,
        detail: Option<&str>,
    ) {
        self.metrics.rejected += 1;
        let r = build_reject(&self.cfg, id, reason, fp, dpop, scope.as_deref());
        let mut ev = AuditEvent::new(AuditKind::Rejected);
        ev.request_id = Some(id);
        ev.fingerprint = fp;
        ev.reason = Some(reason);
        ev.detail = detail.map(str::to_owned);
        self.audit(ev);
        self.actions.push_back(Action::Reject(r));
    }
}

/// Status, challenge and body for a rejection (RFC 6750 §3, RFC 9449 §7).
pub(crate) fn build_reject(
    cfg: &Config,
    id: RequestId,
    reason: Reason,
    fp: Option<Fingerprint>,
    dpop: bool,
    scope: Option<&str>,
) -> Reject {
    let realm = &cfg.realm;
    let scheme = if dpop || reason == Reason::InvalidDpopProof {
        "DPoP"
    } else {
        "Bearer"
    };
    let algs = if scheme == "DPoP" {
        let names: Vec<&str> = cfg.dpop_algorithms.iter().map(|a| a.name()).collect();
        format!(", algs=\"{}\"", names.join(" "))
    } else {
        String::new()
    };
    let challenge = |error: &str, desc: &str| {
        format!("{scheme} realm=\"{realm}\", error=\"{error}\", error_description=\"{desc}\"{algs}")
    };
    let (status, www, error, desc): (u16, Option<String>, &str, &str) = match reason {
        Reason::MissingToken => (
            401,
            Some(format!("{scheme} realm=\"{realm}\"{algs}")),
            "unauthorized",
            "an access token is required",
        ),
        Reason::MalformedRequest => {
            let d = "the Authorization header is malformed";
            (
                400,
                Some(challenge("invalid_request", d)),
                "invalid_request",
                d,
            )
        }
        Reason::AmbiguousPath => {
            let d = "the request path is ambiguous";
            (
                400,
                Some(challenge("invalid_request", d)),
                "invalid_request",
                d,
            )
        }
        Reason::Inactive
        | Reason::Expired
        | Reason::Revoked
        | Reason::InvalidToken
        | Reason::WrongIssuer
        | Reason::WrongAudience
        | Reason::SenderMismatch => {
            // One description for all: no oracle telling revoked from expired from unknown.
            let d = "the access token is not valid";
            (401, Some(challenge("invalid_token", d)), "invalid_token", d)
        }
        Reason::InvalidDpopProof => {
            let d = "the DPoP proof is not valid";
            (
                401,
                Some(challenge("invalid_dpop_proof", d)),
                "invalid_dpop_proof",
                d,
            )
        }
        Reason::InsufficientScope => {
            let d = "the access token lacks a required scope";
            let s = scope.unwrap_or("");
            (
                403,
                Some(format!(
                    "{scheme} realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"{d}\", scope=\"{s}\"{algs}"
                )),
                "insufficient_scope",
                d,
            )
        }
        Reason::NoRoute => (404, None, "not_found", "no route for this path"),
        Reason::Unavailable | Reason::ClientAuthFailed | Reason::Timeout | Reason::Overloaded => (
            cfg.unavailable_status,
            None,
            "temporarily_unavailable",
            "the authorization service is unavailable",
        ),
        // Always 503: the one status whose Retry-After says "try again soon".
        Reason::RateLimited => (
            503,
            None,
            "temporarily_unavailable",
            "too many new tokens at once; retry later",
        ),
    };
    Reject {
        request_id: id,
        status,
        www_authenticate: www,
        body: serde_json::json!({ "error": error, "error_description": desc }).to_string(),
        retry_after: (reason == Reason::RateLimited).then_some(1),
        reason,
        fingerprint: fp,
    }
}
