//! # pgharbor-pgwriter
//!
//! Everything pgharbor writes into PostgreSQL:
//!
//! * [`encode`]: the binary COPY encoder that turns source [`Cell`](pgharbor_core::cell::Cell)s
//!   into values of the planned [`PgType`](pgharbor_core::schema::PgType), applying the
//!   documented conversion rules and counting every lossy change; the rows
//!   and fields are framed by `pgharbor-copy-binary`.
//! * [`ddl`]: `CREATE TABLE`, keys, indexes, foreign keys and views, every name
//!   quoted through [`quote_ident`](pgharbor_core::schema::quote_ident).
//! * [`load`]: streaming encoded chunks into `COPY … FROM STDIN (FORMAT binary)`.
//! * [`pgvector`]: the `vector` extension (installed, or how to get it), `vector`/`halfvec`
//!   column types by dimension, and HNSW/IVFFlat index DDL per distance.
//! * [`error`]: the writer's error type, which turns PostgreSQL errors into a
//!   one-line cause plus what to do.

pub mod ddl;
pub mod encode;
pub mod error;
pub mod load;
mod numeric;
pub mod pgvector;

pub use error::{ServerError, WriteError, WriteErrorKind};
