//! What the copy needs to know about the source database, read from its
//! catalogs inside the copy's snapshot (no superuser needed).

use crate::error::MigrateError;
use crate::journal::SCHEMAS as JOURNAL_SCHEMAS;
use crate::postgres::source_error;
use pgharbor_core::schema::QualifiedName;
use tokio_postgres::Client;

/// One table whose rows are copied.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// Schema-qualified name.
    pub name: QualifiedName,
    /// Size on disk in bytes (for ordering and splitting).
    pub bytes: i64,
    /// Pages (blocks) in the main fork, for ctid ranges.
    pub pages: i64,
    /// Columns copied (generated columns excluded), quoted.
    pub columns: Vec<String>,
    /// Whether binary COPY is safe for every column (see [`binary_safe_sql`]).
    pub binary: bool,
    /// For an extension's configuration table: the condition selecting the
    /// rows pg_dump would dump (rows the extension created itself are not
    /// copied).
    pub extension_condition: Option<String>,
}

impl SourceTable {
    /// `SELECT cols FROM ONLY t [WHERE …]` for a part of the table.
    pub fn select(&self, condition: Option<&str>) -> String {
        let mut conditions: Vec<&str> = Vec::new();
        if let Some(c) = self.extension_condition.as_deref() {
            conditions.push(c);
        }
        conditions.extend(condition);
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(
                " WHERE {}",
                conditions
                    .iter()
                    .map(|c| format!("({c})"))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            )
        };
        format!(
            "SELECT {} FROM ONLY {}{filter}",
            self.columns.join(", "),
            self.name
        )
    }

    /// The COPY options for this table's format.
    pub fn copy_format(&self) -> &'static str {
        if self.binary {
            "FORMAT binary"
        } else {
            "FORMAT text"
        }
    }
}

/// A column type travels in binary COPY between servers of any version only
/// when its binary form does not embed type OIDs of the source database
/// (arrays and composites of non-built-in types do) and it has send/receive
/// functions. Other tables use text COPY.
const BINARY_SAFE: &str = "
    t.typsend <> 0 AND t.typtype <> 'c'
    AND NOT (t.typelem <> 0 AND t.typcategory = 'A' AND t.typelem >= 16384)
    AND NOT (t.typtype = 'd' AND t.typbasetype >= 16384)";

/// The SQL fragment used to decide binary COPY for a type `t` (exposed for
/// tests and documentation).
pub fn binary_safe_sql() -> &'static str {
    BINARY_SAFE
}

/// `'pgharbor_journal', '_pgharbor', …`: the journal schemas as SQL literals,
/// for `nspname NOT IN (…)`.
fn journal_schema_list() -> String {
    JOURNAL_SCHEMAS
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pgharbor journal schemas the database holds (a database pgharbor
/// copied or loaded into): the copy leaves them out.
pub async fn journal_schemas(client: &Client) -> Result<Vec<String>, MigrateError> {
    let rows = client
        .query(
            &format!(
                "SELECT nspname FROM pg_namespace WHERE nspname IN ({}) ORDER BY 1",
                journal_schema_list()
            ),
            &[],
        )
        .await
        .map_err(source_error("looking for pgharbor's journal"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Tables with rows to copy: ordinary tables, partitions and tables of
/// inheritance trees (each read with `ONLY`), plus extensions' configuration
/// tables with their dump condition. Unlogged tables are copied; foreign
/// tables, views and partitioned parents hold no rows of their own; the
/// tables of pgharbor's journal are left out.
pub async fn tables(client: &Client) -> Result<Vec<SourceTable>, MigrateError> {
    let sql = format!(
        "WITH config AS (
             SELECT unnest(e.extconfig) AS oid, unnest(e.extcondition) AS condition
             FROM pg_extension e
         )
         SELECT n.nspname, c.relname,
                pg_total_relation_size(c.oid), pg_relation_size(c.oid) / current_setting('block_size')::int,
                array(SELECT quote_ident(a.attname) FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                      ORDER BY a.attnum),
                NOT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                              AND NOT ({BINARY_SAFE})),
                cfg.condition,
                (cfg.oid IS NULL AND EXISTS (SELECT 1 FROM pg_depend d
                     WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'))
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN config cfg ON cfg.oid = c.oid
         WHERE c.relkind = 'r'
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
           AND n.nspname NOT IN ({journal})
         ORDER BY 3 DESC, 1, 2",
        journal = journal_schema_list()
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(source_error("listing the source's tables"))?;
    Ok(rows
        .iter()
        .filter(|row| !row.get::<_, bool>(7))
        .map(|row| SourceTable {
            name: QualifiedName::new(row.get::<_, String>(0), row.get::<_, String>(1)),
            bytes: row.get(2),
            pages: row.get(3),
            columns: row.get(4),
            binary: row.get(5),
            extension_condition: row
                .get::<_, Option<String>>(6)
                .map(|c| c.trim().trim_start_matches("WHERE").trim().to_string())
                .filter(|c| !c.is_empty()),
        })
        .collect())
}

/// An extension installed in the source database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// Name.
    pub name: String,
    /// Installed version.
    pub version: String,
}

/// Extensions installed in a database (`plpgsql` included).
pub async fn extensions(client: &Client) -> Result<Vec<Extension>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT extname, extversion FROM pg_extension ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Extension {
            name: r.get(0),
            version: r.get(1),
        })
        .collect())
}

/// A sequence and its state.
#[derive(Debug, Clone)]
pub struct SequenceState {
    /// Schema-qualified name.
    pub name: QualifiedName,
    /// `last_value`, `None` when the sequence was never used.
    pub last_value: Option<i64>,
}

/// Every sequence's state (those the user may read; others are named in the
/// error), pgharbor's journal's left out.
pub async fn sequences(client: &Client) -> Result<Vec<SequenceState>, MigrateError> {
    let rows = client
        .query(
            &format!(
                "SELECT schemaname, sequencename, last_value,
                        has_sequence_privilege(format('%I.%I', schemaname, sequencename), 'SELECT')
                 FROM pg_sequences
                 WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
                   AND schemaname NOT IN ({})
                 ORDER BY 1, 2",
                journal_schema_list()
            ),
            &[],
        )
        .await
        .map_err(source_error("reading the source's sequences"))?;
    let mut out = Vec::new();
    for row in rows {
        let name = QualifiedName::new(row.get::<_, String>(0), row.get::<_, String>(1));
        if !row.get::<_, bool>(3) {
            return Err(MigrateError::new(
                crate::MigrateErrorKind::Source,
                format!(
                    "cannot read sequence {name}: permission denied (GRANT SELECT ON SEQUENCE {name} TO the source user)"
                ),
            ));
        }
        out.push(SequenceState {
            name,
            last_value: row.get(2),
        });
    }
    Ok(out)
}

/// The large objects' OIDs.
pub async fn large_objects(client: &Client) -> Result<Vec<u32>, MigrateError> {
    let rows = client
        .query("SELECT oid FROM pg_largeobject_metadata ORDER BY 1", &[])
        .await
        .map_err(source_error("listing the source's large objects"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The server's `server_version_num`.
pub async fn server_version_num(client: &Client) -> Result<u32, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?;
    Ok(row.get::<_, i32>(0) as u32)
}
