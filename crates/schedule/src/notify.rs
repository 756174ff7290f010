//! [`Webhook`]: a JSON `POST` after a run — always after a failure, after a
//! success when asked.
//!
//! Each delivery has a timeout and is tried up to three times with a
//! growing pause; connection failures, timeouts, `408`, `429` and `5xx`
//! are retried, other answers are not. A webhook that cannot be reached is
//! reported to the caller (the runner logs it and goes on).
//!
//! Webhook URLs often carry a secret in the user info, the path (Slack,
//! Discord) or the query (`?token=`), so a webhook is only ever shown as
//! `scheme://host:port/…`, and transport errors are shown without the URL.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use serde::Serialize;

use crate::error::{Result, ScheduleError, ScheduleErrorKind};

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The run failed.
    Failure,
    /// The run succeeded.
    Success,
}

/// The JSON body of a webhook call.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// `failure` or `success`.
    pub event: Event,
    /// The job's name.
    pub job: String,
    /// When the run started (RFC 3339, UTC).
    pub started: Timestamp,
    /// When the run finished (RFC 3339, UTC).
    pub finished: Timestamp,
    /// How long the run took.
    pub duration_seconds: f64,
    /// One line saying what happened.
    pub summary: String,
    /// The job's own structured report.
    pub details: serde_json::Value,
    /// The host (or Kubernetes pod) the runner is on.
    pub host: String,
}

/// A webhook to notify after runs.
#[derive(Clone)]
pub struct Webhook {
    url: Url,
    masked: String,
    client: reqwest::Client,
    on_success: bool,
    tries: u32,
    backoff: Duration,
}

/// Each try's limit, connecting included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Tries per notification.
const TRIES: u32 = 3;
/// The pause after the first failed try; it doubles after each.
const BACKOFF: Duration = Duration::from_secs(2);

impl Webhook {
    /// A webhook `POST`ing to `url` (`http` or `https`), after failures and,
    /// when `on_success`, after successes too.
    pub fn new(url: &str, on_success: bool) -> Result<Webhook> {
        let parsed = Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                ScheduleError::invalid(format!(
                    "webhook `{}`: expected an http:// or https:// URL",
                    mask_unparsed(url)
                ))
            })?;
        let masked = mask(&parsed);
        Ok(Webhook {
            client: client(TIMEOUT).map_err(|e| e.context(format!("webhook {masked}")))?,
            url: parsed,
            masked,
            on_success,
            tries: TRIES,
            backoff: BACKOFF,
        })
    }

    /// The same webhook with another timeout per try, number of tries and
    /// first pause between tries (defaults: 10 s, 3, 2 s).
    pub fn with_retries(
        mut self,
        timeout: Duration,
        tries: u32,
        backoff: Duration,
    ) -> Result<Self> {
        self.client = client(timeout)?;
        self.tries = tries.max(1);
        self.backoff = backoff;
        Ok(self)
    }

    /// Whether successes are notified too.
    pub fn on_success(&self) -> bool {
        self.on_success
    }

    /// Whether a run ending in `event` is notified.
    pub fn wants(&self, event: Event) -> bool {
        event == Event::Failure || self.on_success
    }

    /// Delivers `notification`, trying again as described in the module
    /// documentation; the error names the webhook masked and the last cause.
    pub async fn send(&self, notification: &Notification) -> Result<()> {
        let body = serde_json::to_vec(notification)
            .map_err(|e| ScheduleError::invalid(format!("cannot encode the notification: {e}")))?;
        let mut pause = self.backoff;
        let mut last = String::new();
        for attempt in 1..=self.tries {
            match self.try_once(body.clone()).await {
                Ok(()) => return Ok(()),
                Err((cause, retry)) => {
                    tracing::warn!(
                        "webhook {}: try {attempt} of {} failed: {cause}",
                        self.masked,
                        self.tries
                    );
                    last = cause;
                    if !retry {
                        break;
                    }
                }
            }
            if attempt < self.tries {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
        }
        Err(ScheduleError::new(
            ScheduleErrorKind::Notify,
            format!("webhook {}: not delivered: {last}", self.masked),
        ))
    }

    /// One `POST`; on failure the cause and whether another try may help.
    async fn try_once(&self, body: Vec<u8>) -> std::result::Result<(), (String, bool)> {
        let sent = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                let s = r.status();
                let retry = s.is_server_error()
                    || s == StatusCode::REQUEST_TIMEOUT
                    || s == StatusCode::TOO_MANY_REQUESTS;
                Err((format!("the server answered {s}"), retry))
            }
            Err(e) => Err((e.without_url().to_string(), true)),
        }
    }
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked)
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Webhook({}, on_success: {})",
            self.masked, self.on_success
        )
    }
}

fn client(timeout: Duration) -> Result<reqwest::Client> {
    // reqwest is built without a crypto provider; the workspace's is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ScheduleError::invalid(format!("cannot build the HTTP client: {e}")))
}

/// `scheme://host:port`, with `/…` when a path or query followed.
fn mask(url: &Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    if url.path() != "/" || url.query().is_some() {
        out.push_str("/…");
    }
    out
}

/// A URL that did not parse: only its scheme is shown.
fn mask_unparsed(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, _)) => format!("{scheme}://…"),
        None => "…".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_secret_place() {
        let w = Webhook::new(
            "https://user:pw@hooks.example.com:8443/T0/B0/XyZ?token=t",
            false,
        )
        .unwrap();
        assert_eq!(w.to_string(), "https://hooks.example.com:8443/…");
        assert!(!format!("{w:?}").contains("pw"));
        let e = Webhook::new("ftp://user:pw@example.com/x", false).unwrap_err();
        assert_eq!(e.kind(), ScheduleErrorKind::InvalidInput);
        assert!(!e.to_string().contains("pw"), "{e}");
        assert!(!Webhook::new("no url at all secret", false)
            .unwrap_err()
            .to_string()
            .contains("secret"));
    }

    #[test]
    fn failures_always_successes_when_asked() {
        let w = Webhook::new("http://127.0.0.1:9/", false).unwrap();
        assert!(w.wants(Event::Failure) && !w.wants(Event::Success));
        assert!(Webhook::new("http://127.0.0.1:9/", true)
            .unwrap()
            .wants(Event::Success));
    }
}
