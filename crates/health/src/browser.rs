//! What `serve` does so a browser cannot be turned against it.
//!
//! * [`HostPolicy`]: the `Host` header must name this server: an IP
//!   address, `localhost` (or a name under `.localhost`), the host name of
//!   the listen address, or one of `allowed_hosts`. A page on another site
//!   whose name is re-pointed at 127.0.0.1 (DNS rebinding) sends its own
//!   name and is refused, so it cannot read a dashboard left open on
//!   loopback.
//! * [`add_security_headers`]: a Content-Security-Policy that lets the page
//!   load nothing at all except its own inline style (allowed by hash), no
//!   framing (`frame-ancestors 'none'`, `X-Frame-Options: DENY`), no
//!   content sniffing, no referrer.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use std::net::IpAddr;
use std::sync::OnceLock;

/// The host names a request's `Host` header may carry.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    names: Vec<String>,
}

/// The host part of a `Host` header or a listen address (`name:port`,
/// `[v6]:port`, `name`), lower case, without a trailing dot.
pub fn host_part(authority: &str) -> String {
    let authority = authority.trim();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(authority, |(host, _)| host),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

impl HostPolicy {
    /// Names from `allowed_hosts` and the host of the listen address (when
    /// it is a name, not an address).
    pub fn new(listen: &str, allowed_hosts: &[String]) -> HostPolicy {
        let names = allowed_hosts
            .iter()
            .map(|h| host_part(h))
            .chain(std::iter::once(host_part(listen)))
            .filter(|h| !h.is_empty() && h.parse::<IpAddr>().is_err())
            .collect();
        HostPolicy { names }
    }

    /// Whether a request with this `Host` header may be answered. No header
    /// at all is allowed: browsers always send one.
    pub fn allows(&self, host_header: Option<&str>) -> bool {
        let Some(header) = host_header else {
            return true;
        };
        let host = host_part(header);
        host.parse::<IpAddr>().is_ok()
            || host == "localhost"
            || host.ends_with(".localhost")
            || self.names.contains(&host)
    }
}

/// The dashboard's Content-Security-Policy: nothing may be loaded, framed,
/// posted or used as a base; only the page's own `<style>` applies.
pub fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(crate::dashboard::STYLE.as_bytes()));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    })
}

/// Adds the browser-hygiene headers to a response.
pub fn add_security_headers(headers: &mut HeaderMap) {
    let fixed: [(&str, &'static str); 5] = [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers.insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(content_security_policy()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parts() {
        assert_eq!(host_part("Example.COM:8732"), "example.com");
        assert_eq!(host_part("[::1]:8732"), "::1");
        assert_eq!(host_part("localhost."), "localhost");
        assert_eq!(host_part("0.0.0.0:8732"), "0.0.0.0");
    }

    #[test]
    fn addresses_localhost_and_configured_names_only() {
        let policy = HostPolicy::new(
            "monitor.internal:8732",
            &["pgharbor.monitoring.svc".to_owned()],
        );
        for ok in [
            "127.0.0.1:8732",
            "[::1]:8732",
            "10.1.2.3",
            "localhost:8732",
            "LOCALHOST",
            "app.localhost:8732",
            "monitor.internal:8732",
            "pgharbor.monitoring.svc:8732",
            "pgharbor.monitoring.svc.",
        ] {
            assert!(policy.allows(Some(ok)), "{ok}");
        }
        for rebound in [
            "evil.example:8732",
            "localhost.evil.example",
            "monitor.internal.evil.example",
            "",
        ] {
            assert!(!policy.allows(Some(rebound)), "{rebound}");
        }
        assert!(policy.allows(None));
        let by_address = HostPolicy::new("0.0.0.0:8732", &[]);
        assert!(!by_address.allows(Some("evil.example")));
    }

    #[test]
    fn the_policy_allows_exactly_the_dashboard_style() {
        let csp = content_security_policy();
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        let mut headers = HeaderMap::new();
        add_security_headers(&mut headers);
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["content-security-policy"], csp);
    }
}
