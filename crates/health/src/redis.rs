//! The Redis client: URLs, RESP2 over TCP or TLS, `AUTH`, `PING`, `INFO`.
//! It lives in pgharbor-rdb (snapshots use it too) and is re-exported here;
//! this module adapts its errors to [`HealthError`].

use crate::error::Result;
use std::time::Duration;

pub use pgharbor_rdb::client::{Info, RedisConn, RedisTls, RedisUrl, Reply, DEFAULT_REDIS_PORT};

/// Connects, authenticates when the URL carries a password and selects the database.
/// Returns the connection, and the error line of a refused `AUTH`/`SELECT`.
pub(crate) async fn open(url: &RedisUrl, timeout: Duration) -> Result<(RedisConn, Option<String>)> {
    Ok(pgharbor_rdb::client::open(url, timeout).await?)
}
