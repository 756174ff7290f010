//! n8n end to end without n8n installed (its own round trip is
//! `scripts/test-apps.sh n8n`): a data directory n8n 2.8.4 wrote itself
//! (`fixtures/n8n/data`: `database.sqlite` + `config`) moved with `--preset n8n`
//! into the schema n8n's own migrations and first start created on
//! PostgreSQL 16 (`fixtures/n8n/pg-schema.sql`, with the rows n8n seeds);
//! then, independently of pgharbor's verification, every table compared row
//! for row with the SQLite file, every sequence checked past the moved ids,
//! and every credential decrypted with the instance's key in the format n8n
//! uses (AES-256-CBC, OpenSSL `Salted__` header, EVP_BytesToKey with MD5) by
//! `fixtures/n8n/decrypt-credentials.cjs` on Node's built-in crypto.
//!
//! The preset's `n8n-credentials` hook, before anything is written: the key
//! from `config`, `N8N_ENCRYPTION_KEY` winning over a wrong `config`, the
//! key only in the file `N8N_ENCRYPTION_KEY_FILE` names, a wrong key, one damaged row and no key at all — refusals leave the target
//! as it was, and no run prints the key.

use crate::harness::{databases, pgharbor, pgharbor_command, query, scalar, Run};
use pgharbor_testkit::{Flavor, TestDatabases};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The fixed TEST key in `fixtures/n8n/data/config` (never a real instance's).
const TEST_KEY: &str = "pgharbor-n8n-fixture-TEST-key-not-a-secret";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/n8n")
        .join(name)
}

/// A private copy of the SQLite file to read (it is in WAL mode: readers write `-shm`).
fn sqlite_copy(dir: &Path) -> rusqlite::Connection {
    let path = dir.join("database.sqlite");
    std::fs::copy(fixture("data/database.sqlite"), &path).unwrap();
    rusqlite::Connection::open(&path).unwrap()
}

fn moved_n8n() -> TestDatabases {
    let pg = databases(Flavor::Pg16Vector);
    pg.create_database("n8n");
    pg.psql(
        "n8n",
        &std::fs::read_to_string(fixture("pg-schema.sql")).unwrap(),
    );
    pg
}

#[test]
fn an_n8n_data_directory_lands_in_n8ns_schema_every_row_equal_sequences_past_and_credentials_decrypting(
) {
    let pg = moved_n8n();
    let url = pg.url("n8n");
    let shell_owner = scalar(&pg, "n8n", "SELECT id FROM \"user\"");
    let data = fixture("data");
    let run = migrate_n8n(&data, &url, None, &["--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let database = report.get("database").unwrap_or(&report);
    assert_eq!(database["verified"], true, "{}", run.stdout);
    let config = data.join("config").display().to_string();
    assert_eq!(
        report["credentials"],
        serde_json::json!({"decrypted": 50, "key_from": config}),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(&format!(
            "50 credentials decrypt with this instance's key (the encryptionKey in {config})."
        )),
        "the end of the run says the credentials decrypt, and with which key: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("N8N_ENCRYPTION_KEY") && run.stderr.contains("config"),
        "the end of the run names the key n8n needs and where it is: {}",
        run.stderr
    );
    assert_key_never_printed(&run, TEST_KEY);
    pgharbor(&["verify", data.to_str().unwrap(), &url, "--preset", "n8n"]).success();

    let dir = tempfile::tempdir().unwrap();
    let sqlite = sqlite_copy(dir.path());
    let compared = compare_every_table(&sqlite, &pg);
    assert!(
        compared.contains(&"workflow_entity".to_string()) && compared.len() > 40,
        "{compared:?}"
    );
    assert!(
        query(
            &pg,
            "n8n",
            &format!("SELECT id FROM \"user\" WHERE id = '{shell_owner}'")
        )
        .is_empty(),
        "the owner n8n seeded on PostgreSQL is replaced by the instance's users"
    );
    assert_migrations_kept(&sqlite, &pg);
    assert_sequences_past_the_moved_ids(&pg);
    assert_credentials_decrypt(&sqlite, &pg);
}

/// `pgharbor migrate DIR URL --preset n8n EXTRA…` with `N8N_ENCRYPTION_KEY`
/// set to `key`, or unset.
fn migrate_n8n(dir: &Path, url: &str, key: Option<&str>, extra: &[&str]) -> Run {
    let mut command = migrate_n8n_command(dir, url, extra);
    if let Some(key) = key {
        command.env("N8N_ENCRYPTION_KEY", key);
    }
    Run::from(command.output().expect("run pgharbor"))
}

/// The command of [`migrate_n8n`], with neither `N8N_ENCRYPTION_KEY` nor
/// `N8N_ENCRYPTION_KEY_FILE` in its environment.
fn migrate_n8n_command(dir: &Path, url: &str, extra: &[&str]) -> Command {
    let mut command = pgharbor_command(&["migrate", dir.to_str().unwrap(), url, "--preset", "n8n"]);
    command
        .args(extra)
        .env_remove("N8N_ENCRYPTION_KEY")
        .env_remove("N8N_ENCRYPTION_KEY_FILE");
    command
}

fn assert_key_never_printed(run: &Run, key: &str) {
    assert!(
        !run.stdout.contains(key) && !run.stderr.contains(key),
        "the run printed the encryption key:\n{}",
        run.all()
    );
}

/// The 50 credentials are in the target, and the run printed neither the
/// right key nor the stale one of `config`.
fn assert_credentials_moved_with_neither_key_printed(pg: &TestDatabases, run: &Run) {
    assert_eq!(
        scalar(pg, "n8n", "SELECT count(*) FROM credentials_entity"),
        "50"
    );
    assert_key_never_printed(run, TEST_KEY);
    assert_key_never_printed(run, "a-stale-WRONG-key");
}

/// A copy of the fixture's data directory: `database.sqlite` (changed by
/// `sql`, if any) and a `config` holding `config_key`, or no `config`.
fn data_copy(dir: &Path, config_key: Option<&str>, sql: Option<&str>) -> PathBuf {
    let data = dir.join("n8n-data");
    std::fs::create_dir(&data).unwrap();
    let sqlite = sqlite_copy(&data);
    if let Some(sql) = sql {
        sqlite.execute_batch(sql).unwrap();
    }
    drop(sqlite);
    if let Some(key) = config_key {
        std::fs::write(
            data.join("config"),
            format!("{{\n\t\"encryptionKey\": \"{key}\"\n}}"),
        )
        .unwrap();
    }
    data
}

/// Every schema's name and every table of `public` with its rows' digest:
/// what a refused run must leave as it was.
fn target_state(pg: &TestDatabases) -> Vec<String> {
    let mut state = query(
        pg,
        "n8n",
        "SELECT 'schema ' || nspname FROM pg_namespace ORDER BY 1",
    );
    for table in query(
        pg,
        "n8n",
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    ) {
        state.push(scalar(
            pg,
            "n8n",
            &format!(
                "SELECT '{table} ' || count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM public.\"{table}\" t"
            ),
        ));
    }
    state
}

/// A refused run left the target as [`target_state`] saw it `before`.
fn assert_target_as_it_was(pg: &TestDatabases, before: &[String]) {
    assert_eq!(
        target_state(pg),
        before,
        "the refused run changed the target"
    );
}

/// The fixture's credential ids, in the order pgharbor names them.
fn credential_ids() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = sqlite_copy(dir.path());
    let mut stmt = sqlite
        .prepare("SELECT id FROM credentials_entity ORDER BY id")
        .unwrap();
    let ids = stmt.query_map([], |r| r.get(0)).unwrap();
    ids.collect::<Result<_, _>>().unwrap()
}

#[test]
fn n8n_encryption_key_in_the_environment_wins_over_a_wrong_config() {
    let pg = moved_n8n();
    let dir = tempfile::tempdir().unwrap();
    let data = data_copy(dir.path(), Some("a-stale-WRONG-key"), None);
    let run = migrate_n8n(&data, &pg.url("n8n"), Some(TEST_KEY), &[]).success();
    assert!(
        run.stdout
            .contains("50 credentials decrypt with this instance's key (N8N_ENCRYPTION_KEY)."),
        "{}",
        run.all()
    );
    assert!(
        run.stdout.contains(&format!(
            "The encryptionKey in {} is not N8N_ENCRYPTION_KEY's, and n8n refuses to start with two different keys",
            data.join("config").display()
        )),
        "the end of the run warns of n8n's own refusal of two keys: {}",
        run.stdout
    );
    assert_credentials_moved_with_neither_key_printed(&pg, &run);
}

#[test]
fn n8n_encryption_key_file_alone_gives_the_key_like_a_kubernetes_secret() {
    use std::os::unix::fs::OpenOptionsExt;
    let pg = moved_n8n();
    let dir = tempfile::tempdir().unwrap();
    let data = data_copy(dir.path(), Some("a-stale-WRONG-key"), None);
    let secret = dir.path().join("secrets").join("n8n-encryption-key");
    std::fs::create_dir(secret.parent().unwrap()).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .and_then(|mut file| file.write_all(format!("{TEST_KEY}\n").as_bytes()))
        .unwrap();
    let run = Run::from(
        migrate_n8n_command(&data, &pg.url("n8n"), &["--json"])
            .env("N8N_ENCRYPTION_KEY_FILE", &secret)
            .output()
            .expect("run pgharbor"),
    )
    .success();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("--json report");
    assert_eq!(
        report.pointer("/credentials"),
        Some(&serde_json::json!({"decrypted": 50, "key_from": secret.display().to_string()})),
        "{}",
        run.all()
    );
    assert_credentials_moved_with_neither_key_printed(&pg, &run);
}

#[test]
fn a_wrong_n8n_encryption_key_is_refused_naming_the_credentials_and_nothing_is_written() {
    let pg = moved_n8n();
    let before = target_state(&pg);
    let wrong = "not-this-instance-WRONG-key";
    let run = migrate_n8n(&fixture("data"), &pg.url("n8n"), Some(wrong), &[]);
    let ids = credential_ids();
    let named: Vec<&str> = ids[..10].iter().map(String::as_str).collect();
    let run = run.fails_with(
        2,
        &[
            "50 of n8n's 50 credentials do not decrypt with N8N_ENCRYPTION_KEY: ",
            ", and 40 more",
            "Set N8N_ENCRYPTION_KEY to the encryption key this n8n instance runs with",
            "nothing was written",
        ],
    );
    for id in &named {
        assert!(run.stderr.contains(id), "{id} not named:\n{}", run.stderr);
    }
    assert!(
        !ids[10..].iter().any(|id| run.stderr.contains(id.as_str())),
        "more than ten named:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "{} holds another encryptionKey: if n8n runs without N8N_ENCRYPTION_KEY, that is its key",
            fixture("data/config").display()
        )),
        "{}",
        run.stderr
    );
    assert_target_as_it_was(&pg, &before);
    assert_key_never_printed(&run, wrong);
    assert_key_never_printed(&run, TEST_KEY);
}

#[test]
fn one_damaged_credential_is_refused_naming_exactly_that_credential() {
    let pg = moved_n8n();
    let before = target_state(&pg);
    let ids = credential_ids();
    let damaged = &ids[17];
    let dir = tempfile::tempdir().unwrap();
    // One base64 character of the ciphertext changed: that value no longer decrypts to JSON.
    let data = data_copy(
        dir.path(),
        Some(TEST_KEY),
        Some(&format!(
            "UPDATE credentials_entity SET data = substr(data, 1, 40) || \
             CASE substr(data, 41, 1) WHEN 'A' THEN 'B' ELSE 'A' END || substr(data, 42) \
             WHERE id = '{damaged}'"
        )),
    );
    let run = migrate_n8n(&data, &pg.url("n8n"), None, &[]).fails_with(
        2,
        &[
            &format!("1 of n8n's 50 credentials does not decrypt with the encryptionKey in {}: {damaged} \"", data.join("config").display()),
            "The other 49 decrypt",
            "nothing was written",
        ],
    );
    let others: Vec<&String> = ids
        .iter()
        .filter(|id| *id != damaged && run.stderr.contains(id.as_str()))
        .collect();
    assert!(others.is_empty(), "{others:?} named too:\n{}", run.stderr);
    assert_target_as_it_was(&pg, &before);
    assert_key_never_printed(&run, TEST_KEY);
}

#[test]
fn no_encryption_key_anywhere_is_refused_naming_where_pgharbor_looked() {
    let pg = moved_n8n();
    let before = target_state(&pg);
    let dir = tempfile::tempdir().unwrap();
    let data = data_copy(dir.path(), None, None);
    let run = migrate_n8n(&data, &pg.url("n8n"), None, &[]).fails_with(
        2,
        &[
            "n8n's 50 credentials are encrypted with the instance's encryption key, and pgharbor found none",
            &format!(
                "N8N_ENCRYPTION_KEY is not set and {} does not exist",
                data.join("config").display()
            ),
            "nothing was written",
        ],
    );
    assert_target_as_it_was(&pg, &before);
    assert_key_never_printed(&run, TEST_KEY);
}

/// n8n's own migration history on PostgreSQL stays as n8n wrote it (its
/// PostgreSQL history is longer than SQLite's), ending at the same migration.
fn assert_migrations_kept(sqlite: &rusqlite::Connection, pg: &TestDatabases) {
    let latest = "SELECT name FROM migrations ORDER BY timestamp DESC LIMIT 1";
    let sqlite_latest: String = sqlite.query_row(latest, [], |r| r.get(0)).unwrap();
    assert_eq!(scalar(pg, "n8n", latest), sqlite_latest);
    let sqlite_count: i64 = sqlite
        .query_row("SELECT count(*) FROM migrations", [], |r| r.get(0))
        .unwrap();
    let pg_count: i64 = scalar(pg, "n8n", "SELECT count(*) FROM migrations")
        .parse()
        .unwrap();
    assert!(
        pg_count > sqlite_count,
        "PostgreSQL keeps its own {pg_count} migrations (SQLite has {sqlite_count})"
    );
}

/// Every SQLite table but the migration history, row for row as a multiset,
/// each value read as text on both sides with the target's type in mind:
/// booleans as 0/1, timestamps in UTC to the millisecond (what n8n stores on
/// SQLite), everything else as its text. Returns the tables compared.
fn compare_every_table(sqlite: &rusqlite::Connection, pg: &TestDatabases) -> Vec<String> {
    let tables: Vec<String> = {
        let mut stmt = sqlite
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND name <> 'migrations' ORDER BY name",
            )
            .unwrap();
        let names = stmt.query_map([], |r| r.get(0)).unwrap();
        names.collect::<Result<_, _>>().unwrap()
    };
    let mut differences = Vec::new();
    for table in &tables {
        let types = target_types(pg, table);
        let columns: Vec<String> = source_columns(sqlite, table)
            .into_iter()
            .filter(|c| types.contains_key(c))
            .collect();
        let expected = sqlite_rows(sqlite, table, &columns, &types);
        let actual = pg_rows(pg, table, &columns, &types);
        if expected != actual {
            let missing: Vec<_> = expected
                .iter()
                .filter(|r| !actual.contains(r))
                .take(2)
                .collect();
            let extra: Vec<_> = actual
                .iter()
                .filter(|r| !expected.contains(r))
                .take(2)
                .collect();
            differences.push(format!(
                "{table}: {} rows in SQLite, {} in PostgreSQL; only in SQLite {missing:?}; only in PostgreSQL {extra:?}",
                expected.len(),
                actual.len()
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    tables
}

fn source_columns(sqlite: &rusqlite::Connection, table: &str) -> Vec<String> {
    let mut stmt = sqlite
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap();
    let names = stmt.query_map([], |r| r.get(0)).unwrap();
    names.collect::<Result<_, _>>().unwrap()
}

/// The target's columns of `table` and their types (`format_type`).
fn target_types(pg: &TestDatabases, table: &str) -> BTreeMap<String, String> {
    query(
        pg,
        "n8n",
        &format!(
            "SELECT attname || '|' || format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'public.\"{table}\"'::regclass AND attnum > 0 AND NOT attisdropped"
        ),
    )
    .into_iter()
    .map(|row| {
        let (name, kind) = row.split_once('|').unwrap();
        (name.to_string(), kind.to_string())
    })
    .collect()
}

type Row = Vec<Option<String>>;

fn sqlite_rows(
    sqlite: &rusqlite::Connection,
    table: &str,
    columns: &[String],
    types: &BTreeMap<String, String>,
) -> Vec<Row> {
    let list: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let mut stmt = sqlite
        .prepare(&format!("SELECT {} FROM \"{table}\"", list.join(", ")))
        .unwrap();
    let mut rows: Vec<Row> = stmt
        .query_map([], |r| {
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let value = r.get_ref(i)?;
                    Ok(sqlite_text(value).map(|t| normalized(&t, &types[c])))
                })
                .collect()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

fn sqlite_text(value: rusqlite::types::ValueRef) -> Option<String> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Some(format!(
            "\\x{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        )),
    }
}

/// A SQLite value as the target's text of `kind` reads: n8n writes
/// timestamps as `YYYY-MM-DD HH:MM:SS.mmm` (sometimes ISO 8601 with `T`/`Z`).
fn normalized(text: &str, kind: &str) -> String {
    if kind.starts_with("timestamp") {
        let t = text.replace('T', " ");
        let t = t.trim_end_matches('Z');
        let (seconds, fraction) = t.split_once('.').unwrap_or((t, ""));
        format!("{seconds}.{:0<3}", &fraction[..fraction.len().min(3)])
    } else if kind == "boolean" {
        match text {
            "true" => "1".into(),
            "false" => "0".into(),
            other => other.into(),
        }
    } else {
        text.to_string()
    }
}

fn pg_rows(
    pg: &TestDatabases,
    table: &str,
    columns: &[String],
    types: &BTreeMap<String, String>,
) -> Vec<Row> {
    if columns.is_empty() {
        return Vec::new();
    }
    let list: Vec<String> = columns
        .iter()
        .map(|c| {
            let kind = types[c].as_str();
            let value = if kind.starts_with("timestamp") {
                format!("to_char(\"{c}\" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')")
            } else if kind == "boolean" {
                format!("\"{c}\"::int::text")
            } else {
                format!("\"{c}\"::text")
            };
            // Each value with its own NULL marker: text may hold '|'.
            format!("CASE WHEN \"{c}\" IS NULL THEN 'N' ELSE 'V' || encode(convert_to({value}, 'UTF8'), 'base64') END")
        })
        .collect();
    let sql = format!(
        "SELECT concat_ws(',', {}) FROM public.\"{table}\"",
        list.join(", ")
    );
    let mut rows: Vec<Row> = query(pg, "n8n", &sql)
        .into_iter()
        .map(|line| {
            line.split(',')
                .map(|cell| {
                    cell.strip_prefix('V').map(|b64| {
                        let clean: String = b64.split_whitespace().collect();
                        String::from_utf8(base64_decode(&clean)).unwrap()
                    })
                })
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// Every sequence owned by a column of a moved table stands past that
/// column's highest value: n8n's next insert gets a new id.
fn assert_sequences_past_the_moved_ids(pg: &TestDatabases) {
    let owned = query(
        pg,
        "n8n",
        "SELECT c.relname || '|' || a.attname || '|' || s.relname FROM pg_depend d \
         JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
         JOIN pg_class c ON c.oid = d.refobjid JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid \
         WHERE d.deptype IN ('a', 'i') ORDER BY 1",
    );
    assert!(
        owned.iter().any(|o| o.starts_with("execution_entity|id|")),
        "{owned:?}"
    );
    let mut checked = 0;
    for entry in &owned {
        let [table, column, sequence] = entry.split('|').collect::<Vec<_>>()[..] else {
            panic!("{entry}")
        };
        let max = scalar(
            pg,
            "n8n",
            &format!("SELECT coalesce(max(\"{column}\"), 0) FROM \"{table}\""),
        );
        if max == "0" || table == "migrations" {
            continue;
        }
        let next = scalar(
            pg,
            "n8n",
            &format!("SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM \"{sequence}\""),
        );
        assert!(
            next.parse::<i64>().unwrap() > max.parse::<i64>().unwrap(),
            "{sequence} would hand out {next}, but {table}.{column} holds up to {max}"
        );
        checked += 1;
    }
    assert!(checked >= 2, "sequences of moved rows checked: {checked}");
}

/// The credentials decrypt with the instance's key (from `config`) to what
/// the SQLite rows decrypt to; with another key, they do not.
fn assert_credentials_decrypt(sqlite: &rusqlite::Connection, pg: &TestDatabases) {
    let moved = query(
        pg,
        "n8n",
        "SELECT id || E'\\t' || data FROM credentials_entity",
    );
    assert_eq!(moved.len(), 50);
    let source: Vec<String> = {
        let mut stmt = sqlite
            .prepare("SELECT id || char(9) || data FROM credentials_entity")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    let decrypted = decrypt(&moved, None).expect("the moved credentials decrypt");
    assert_eq!(decrypted, decrypt(&source, None).unwrap());
    assert!(
        decrypted.iter().all(|l| l.contains("\"data\":{")),
        "{decrypted:?}"
    );
    let refused = decrypt(&moved, Some("another-key")).expect_err("a wrong key fails");
    assert!(refused.contains("does not decrypt"), "{refused}");
}

/// `decrypt-credentials.cjs` over `rows` (`id<TAB>data`): sorted output lines, or stderr.
fn decrypt(rows: &[String], key: Option<&str>) -> Result<Vec<String>, String> {
    let mut command = Command::new("node");
    command
        .arg(fixture("decrypt-credentials.cjs"))
        .arg(fixture("data/config"))
        .env_remove("N8N_ENCRYPTION_KEY")
        .env_remove("N8N_ENCRYPTION_KEY_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(key) = key {
        command.env("N8N_ENCRYPTION_KEY", key);
    }
    let mut child = command.spawn().expect("run node (Node.js 20 is needed)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", rows.join("\n")).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    Ok(lines)
}
