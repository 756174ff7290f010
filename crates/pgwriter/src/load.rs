//! Streaming encoded rows into `COPY … FROM STDIN (FORMAT binary)`.

use crate::error::{WriteError, WriteErrorKind};
use bytes::Bytes;
use futures_util::SinkExt;
use pgharbor_copy_binary::{HEADER, TRAILER};
use pgharbor_core::schema::{quote_ident, QualifiedName};
use tokio::sync::mpsc;
use tokio_postgres::Client;

/// The `COPY` statement for `columns` of `table`.
///
/// `freeze` writes the rows already frozen; PostgreSQL allows it only when the
/// table was created or truncated in the same transaction.
pub fn copy_statement(table: &QualifiedName, columns: &[String], freeze: bool) -> String {
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let freeze = if freeze { ", FREEZE" } else { "" };
    format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary{freeze})",
        cols.join(", ")
    )
}

/// A message from a row producer to the COPY.
#[derive(Debug)]
pub enum Chunk {
    /// Encoded rows; a piece may end inside a row (COPY data need not
    /// follow row boundaries), so that a huge row travels in small pieces.
    Data(Bytes),
    /// Every row was sent: finish the COPY.
    End,
}

/// Send every chunk from `chunks` into one binary COPY, returning the rows
/// PostgreSQL reports.
///
/// Only [`Chunk::End`] completes the COPY. If the channel closes without it
/// (the producer failed), the COPY is abandoned and an error returned, so a
/// partial table is never committed by accident.
pub async fn copy_chunks(
    client: &Client,
    table: &QualifiedName,
    columns: &[String],
    freeze: bool,
    mut chunks: mpsc::Receiver<Chunk>,
) -> Result<u64, WriteError> {
    let doing = format!("loading table {table}");
    let sink = client
        .copy_in::<_, Bytes>(&copy_statement(table, columns, freeze))
        .await
        .map_err(|e| WriteError::from_pg(e, &doing))?;
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from_static(HEADER))
        .await
        .map_err(|e| WriteError::from_pg(e, &doing))?;
    loop {
        match chunks.recv().await {
            Some(Chunk::Data(data)) => sink
                .send(data)
                .await
                .map_err(|e| WriteError::from_pg(e, &doing))?,
            Some(Chunk::End) => break,
            None => {
                return Err(WriteError::new(
                    WriteErrorKind::Source,
                    format!("{doing}: the source stopped before the end of the table"),
                ))
            }
        }
    }
    sink.send(Bytes::from_static(TRAILER))
        .await
        .map_err(|e| WriteError::from_pg(e, &doing))?;
    sink.finish()
        .await
        .map_err(|e| WriteError::from_pg(e, &doing))
}
