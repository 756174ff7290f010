//! # pgharbor-copy-binary
//!
//! PostgreSQL's binary `COPY` format, and nothing else: no I/O, no async
//! runtime, no dependencies. Whoever writes or reads a `COPY … (FORMAT binary)`
//! stream (the loader, verification, the PostgreSQL → PostgreSQL digest) frames
//! and parses it here, as rust-postgres keeps `postgres-protocol` apart from
//! its client.
//!
//! A stream is a [`HEADER`] (signature, flags, header extension), rows, and a
//! [`TRAILER`]. A row is a field count (big-endian `i16`) followed by that many
//! fields, each a big-endian `i32` length and that many bytes, or the length
//! -1 for NULL.
//!
//! * [`write`]: the header and trailer to send, and a row's pieces appended to
//!   a `Vec<u8>`: [`write::write_field_count`], [`write::write_null`],
//!   [`write::write_field`], and [`write::OpenField`] for a value encoded in
//!   place whose length is known only afterwards.
//! * [`split`]: [`RowSplitter`] takes the stream in chunks cut anywhere and
//!   hands out complete rows, read from the chunk itself when a row lies
//!   inside it; only a row cut between chunks is copied, so memory is bounded
//!   by the largest row.
//! * [`row`]: a complete [`Row`] and its [`Fields`], and [`Row::parse`] for a
//!   buffer holding one row.
//! * [`error`]: every malformation named, with the row, the field and the byte
//!   offset where it was found.
//!
//! ```
//! use pgharbor_copy_binary::{write, RowSplitter, HEADER, TRAILER};
//!
//! let mut stream = HEADER.to_vec();
//! write::write_row(&mut stream, &[Some(b"alpha"), None]).unwrap();
//! stream.extend_from_slice(TRAILER);
//!
//! let mut splitter = RowSplitter::new();
//! let mut rows = Vec::new();
//! for chunk in stream.chunks(3) {
//!     let owned = |f: Option<&[u8]>| f.map(<[u8]>::to_vec);
//!     splitter
//!         .feed(chunk, |row| rows.push(row.fields().map(owned).collect::<Vec<_>>()))
//!         .unwrap();
//! }
//! assert_eq!(splitter.finish().unwrap(), 1);
//! assert_eq!(rows, vec![vec![Some(b"alpha".to_vec()), None]]);
//! ```

pub mod error;
pub mod header;
pub mod row;
pub mod split;
pub mod write;

pub use error::{CopyError, CopyErrorKind, Cut, FieldTooLong};
pub use header::{HEADER, SIGNATURE, TRAILER};
pub use row::{Field, Fields, Row};
pub use split::RowSplitter;
