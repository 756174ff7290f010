//! How long a command that failed waits for the server to come back (a
//! restart, a failover) before it gives up removing what it created:
//! [`reconnect_wait`], and the pause between two attempts.

use std::time::Duration;

/// The environment variable giving how long, in seconds, a failed run waits
/// for the target to come back to remove what it created.
pub const RECONNECT_ENV: &str = "PGHARBOR_RECONNECT_SECONDS";

/// The wait when [`RECONNECT_ENV`] is not set: long enough for a server
/// restart or a managed service's failover.
const RECONNECT_DEFAULT: Duration = Duration::from_secs(30);

/// Pause between two connection attempts.
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// How long a failed run waits for the target to come back:
/// `$PGHARBOR_RECONNECT_SECONDS`, else 30 s.
pub fn reconnect_wait() -> Duration {
    std::env::var(RECONNECT_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(RECONNECT_DEFAULT, Duration::from_secs)
}
