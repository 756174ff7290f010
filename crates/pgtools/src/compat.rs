//! Compatibility filters for dumped SQL: what a `pg_dump` wrote that the
//! target server does not accept, left out exactly and counted.
//!
//! Column attribute options (`ALTER TABLE … ALTER COLUMN … SET (name=value)`)
//! are hints to the planner, not data, and some builds add their own (e.g.
//! Debian's PostgreSQL 15.20 here stamps every column with `pg_attver=…`,
//! which PostgreSQL 16 rejects as an "unrecognized parameter"). An
//! [`AttributeOptionFilter`] probes each distinct option name once on a
//! temporary table of the target and removes the unknown ones.

use tokio_postgres::Client;

/// The column attribute options of dumped SQL that a target does not
/// recognise, with how many were removed so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeOptionFilter {
    /// Each unknown option name with the number of columns it was removed
    /// from.
    counts: Vec<(String, usize)>,
}

impl AttributeOptionFilter {
    /// Probes every distinct attribute option of `sql` (pieces of dumped
    /// SQL) on `target`, in a transaction that is rolled back.
    pub async fn probe<'a>(
        target: &mut Client,
        sql: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, tokio_postgres::Error> {
        let options = distinct_options(sql);
        let unknown = if options.is_empty() {
            Vec::new()
        } else {
            unknown_options(target, &options).await?
        };
        Ok(Self::for_unknown(unknown))
    }

    /// A filter removing the options named `unknown`.
    pub fn for_unknown(unknown: Vec<String>) -> Self {
        AttributeOptionFilter {
            counts: unknown.into_iter().map(|n| (n, 0)).collect(),
        }
    }

    /// Whether the target knows every option (nothing to remove).
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// `sql` with the unknown options removed from attribute option lines
    /// (a line left with none is dropped), counting removals per option.
    pub fn apply(&mut self, sql: &str) -> String {
        let mut out = String::with_capacity(sql.len());
        for line in sql.lines() {
            match attribute_options(line) {
                Some(options) if options.iter().any(|(n, _)| self.is_unknown(n)) => {
                    let kept = self.keep_known(options);
                    if !kept.is_empty() {
                        let head = &line[..line.rfind(" SET (").expect("checked")];
                        out.push_str(&format!("{head} SET ({});\n", kept.join(", ")));
                    }
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// What was left out, as `option (N columns)`.
    pub fn skipped(&self) -> Vec<String> {
        self.counts
            .iter()
            .map(|(name, n)| format!("{name} ({n} columns)"))
            .collect()
    }

    fn is_unknown(&self, name: &str) -> bool {
        self.counts.iter().any(|(n, _)| n == name)
    }

    /// The known options as `name=value`, counting the unknown ones.
    fn keep_known(&mut self, options: Vec<(String, String)>) -> Vec<String> {
        let mut kept = Vec::new();
        for (name, value) in options {
            match self.counts.iter_mut().find(|(n, _)| *n == name) {
                Some(count) => count.1 += 1,
                None => kept.push(format!("{name}={value}")),
            }
        }
        kept
    }
}

/// The options of a `… ALTER COLUMN … SET (a=1, b=2);` line.
fn attribute_options(line: &str) -> Option<Vec<(String, String)>> {
    if !line.starts_with("ALTER TABLE ") || !line.contains(" ALTER COLUMN ") {
        return None;
    }
    let start = line.rfind(" SET (")? + " SET (".len();
    let inner = line.get(start..)?.strip_suffix(");")?;
    Some(
        inner
            .split(", ")
            .filter_map(|o| o.split_once('='))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

/// Each option name of `sql` once, with the first value seen (to probe with).
fn distinct_options<'a>(sql: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for piece in sql {
        for line in piece.lines() {
            for (name, value) in attribute_options(line).unwrap_or_default() {
                if !seen.iter().any(|(n, _)| *n == name) {
                    seen.push((name, value));
                }
            }
        }
    }
    seen
}

/// The names among `options` that `target` rejects as unrecognized.
async fn unknown_options(
    target: &mut Client,
    options: &[(String, String)],
) -> Result<Vec<String>, tokio_postgres::Error> {
    let tx = target.transaction().await?;
    tx.batch_execute("CREATE TEMP TABLE pgharbor_probe (x int)")
        .await?;
    let mut unknown = Vec::new();
    for (name, value) in options {
        tx.batch_execute("SAVEPOINT probe").await?;
        let probe = format!("ALTER TABLE pgharbor_probe ALTER COLUMN x SET ({name}={value})");
        if let Err(err) = tx.batch_execute(&probe).await {
            let unrecognized = err
                .as_db_error()
                .is_some_and(|db| db.message().starts_with("unrecognized parameter"));
            if unrecognized {
                unknown.push(name.clone());
            }
        }
        tx.batch_execute("ROLLBACK TO SAVEPOINT probe").await?;
    }
    tx.rollback().await?;
    Ok(unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQL: &str = "CREATE TABLE public.a (\n    id integer\n);\n\
ALTER TABLE ONLY public.a ALTER COLUMN id SET (pg_attver=537, n_distinct=-1);\n\
ALTER TABLE ONLY public.a ALTER COLUMN name SET (pg_attver=537);\n";

    #[test]
    fn options_are_read_from_alter_column_lines() {
        assert_eq!(
            attribute_options("ALTER TABLE ONLY public.a ALTER COLUMN id SET (n_distinct=-1);"),
            Some(vec![("n_distinct".to_string(), "-1".to_string())])
        );
        assert_eq!(
            attribute_options("ALTER TABLE public.a OWNER TO app;"),
            None
        );
        assert_eq!(
            distinct_options([SQL, SQL]),
            vec![
                ("pg_attver".to_string(), "537".to_string()),
                ("n_distinct".to_string(), "-1".to_string())
            ]
        );
    }

    #[test]
    fn unknown_attribute_options_are_left_out_and_counted() {
        let mut filter = AttributeOptionFilter::for_unknown(vec!["pg_attver".to_string()]);
        assert!(!filter.is_empty());
        let out = filter.apply(SQL);
        assert_eq!(
            out,
            "CREATE TABLE public.a (\n    id integer\n);\nALTER TABLE ONLY public.a ALTER COLUMN id SET (n_distinct=-1);\n"
        );
        assert_eq!(filter.skipped(), vec!["pg_attver (2 columns)".to_string()]);
    }
}
