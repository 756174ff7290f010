//! # pgharbor-verify
//!
//! Proof that a table arrived intact. Both sides are reduced to the same thing:
//! each row's fields in PostgreSQL's binary form (the source side through the
//! very encoder that loaded it, the target side straight from
//! `COPY … TO STDOUT (FORMAT binary)`, split into rows by
//! `pgharbor-copy-binary`), hashed with 128-bit XXH3. A table's
//! digest is its row count plus the wrapping sum of its row hashes, which does
//! not depend on row order and can be computed while streaming.
//!
//! `jsonb` is the one type PostgreSQL normalises (key order, whitespace, number
//! spelling); its values are hashed in a canonical form ([`canonical_json`]) on
//! both sides, so equal documents compare equal and any change in content does not.
//!
//! When digests differ, [`RowMultiset`] finds sample rows present on one side
//! only, named by their key.

pub mod canonical;
pub mod digest;

pub use canonical::canonical_json;
pub use digest::{RowHasher, RowMultiset, TableDigest};

/// Errors of verification: the table being verified, the error that stopped
/// it as the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Reading the target failed.
    #[error("verifying table {table}")]
    Target {
        /// Table.
        table: String,
        /// The PostgreSQL error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The target's COPY stream was not what was expected.
    #[error("verifying table {table}: malformed COPY data from the target")]
    Malformed {
        /// Table.
        table: String,
        /// What is wrong, and where in the stream.
        #[source]
        reason: pgharbor_copy_binary::CopyError,
    },
}
