//! Redis snapshots for pgharbor: fetch, check, restore — and the small
//! Redis client they share with the health probes.
//!
//! * [`fetch`](fetch::fetch): an RDB snapshot over the network the way
//!   `redis-cli --rdb` gets one — TCP or TLS, `AUTH` with an ACL user or a
//!   password, the replication handshake, both payload framings (`$<len>`
//!   and diskless `$EOF:<mark>`) — streamed to any `AsyncWrite` with its
//!   SHA-256 and size computed on the way.
//! * [`check`](reader::check) and [`RdbReader`]: a streaming structural
//!   parse of RDB versions 1 to 12 (Redis 2.x to 7.4): every opcode, every
//!   value type skipped exactly, the CRC64 verified; an [`RdbSummary`] with
//!   the keys per database, and each key with its raw serialized value.
//! * [`restore`](restore::restore): into a running Redis key by key with
//!   `RESTORE … ABSTTL`, pipelined, TTLs preserved, refusing a non-empty
//!   target unless asked to flush it.
//! * [`client`]: URLs (`redis://`, `rediss://`), RESP2 over TCP or TLS,
//!   `AUTH`, `INFO`, pipelining.
//!
//! Errors are one [`RdbError`] with an [`RdbErrorKind`]; they name the
//! file or the server (its password masked), the key for a value, and the
//! byte offset for a damaged file.

pub mod client;
mod crc64;
mod error;
pub mod fetch;
mod lzf;
pub mod reader;
pub mod restore;
mod tls;

pub use client::{Info, RedisConn, RedisTls, RedisUrl, Reply};
pub use crc64::crc64;
pub use error::{keeps_cause_apart, RdbError, RdbErrorKind, Result};
pub use fetch::{fetch, fetch_to_file, FetchOptions, FetchReport, Framing};
pub use reader::{
    check, check_file, open_file, Checksum, DbSummary, KeyEntry, RdbReader, RdbSummary,
};
pub use restore::{restore, restore_file, RestoreOptions, RestoreReport};
