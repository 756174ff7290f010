//! Restoring the roles file (`pg_dumpall --roles-only`) statement by
//! statement over a client connection, like `psql` would, but reporting
//! roles that already exist instead of failing on them.

use pgharbor_objstore::Destination;
use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::error::{BackupError, BackupErrorKind, Result};
use crate::manifest::Manifest;
use crate::restore::RestoreOptions;
use crate::stream::{bridge, decode_into, stored_file};

/// What restoring the roles did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RolesReport {
    /// Roles created.
    pub created: Vec<String>,
    /// Roles that already existed (their attributes were still applied).
    pub existing: Vec<String>,
}

/// Downloads, decodes and runs the roles file `file` of `manifest`.
pub(crate) async fn restore_roles(
    dest: &Destination,
    manifest: &Manifest,
    file: &str,
    admin: &Client,
    options: &RestoreOptions,
) -> Result<RolesReport> {
    let stored = stored_file(manifest, file)?;
    let download = dest.get_stream(&format!("{}/{file}", manifest.id)).await?;
    let bridged = bridge(download.into_reader());
    let decryption = options.decryption.clone();
    let sql = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        decode_into(bridged, decryption.as_ref(), &mut out, &stored).map(|_| out)
    })
    .await
    .map_err(|e| BackupError::new(BackupErrorKind::Io, "the roles task failed").caused_by(e))??;
    let sql = String::from_utf8_lossy(&sql);
    let mut report = RolesReport::default();
    for statement in statements(&sql) {
        let created = create_role_name(&statement);
        match admin.batch_execute(&statement).await {
            Ok(()) => report.created.extend(created),
            Err(e) if e.code() == Some(&SqlState::DUPLICATE_OBJECT) && created.is_some() => {
                report.existing.extend(created);
            }
            Err(e) => {
                return Err(BackupError::postgres(
                    format!("restoring the roles ({})", first_words(&statement)),
                    e,
                ))
            }
        }
    }
    Ok(report)
}

/// The statements of a `pg_dumpall --roles-only` script: one per line
/// ending in `;`, comments and psql meta-commands skipped.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        if current.is_empty()
            && (line.starts_with("--") || line.starts_with('\\') || line.trim().is_empty())
        {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// The role a `CREATE ROLE` statement creates.
fn create_role_name(statement: &str) -> Option<String> {
    let rest = statement.strip_prefix("CREATE ROLE ")?;
    let name = rest.trim_end().trim_end_matches(';');
    Some(
        match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\"\"", "\""),
            None => name.to_owned(),
        },
    )
}

/// The start of a statement for messages (never past its third word, so no
/// password hash is shown).
fn first_words(statement: &str) -> String {
    statement
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_into_statements() {
        let sql = "--\n-- Roles\n--\n\nCREATE ROLE \"a\"\"b\";\nALTER ROLE \"a\"\"b\" WITH LOGIN;\n\\connect x\nCREATE ROLE app;\n";
        let s = statements(sql);
        assert_eq!(s.len(), 3);
        assert_eq!(create_role_name(&s[0]).as_deref(), Some("a\"b"));
        assert_eq!(create_role_name(&s[1]), None);
        assert_eq!(create_role_name(&s[2]).as_deref(), Some("app"));
        assert_eq!(first_words(&s[1]), "ALTER ROLE \"a\"\"b\"");
    }
}
