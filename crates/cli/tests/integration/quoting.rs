//! Identifier quoting against a real server: hostile table, column and index
//! names arrive byte for byte, run nothing, and touch no other table.

use crate::harness::{cluster, databases, pgharbor, query, scalar, Scratch};
use pgharbor_testkit::Flavor;

/// Quotes an identifier for SQLite's and PostgreSQL's SQL (the same rule),
/// written independently of `pgharbor_core::schema::quote_ident`.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A standard-conforming string literal.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

const TABLES: &[&str] = &[
    "x\"; DROP TABLE victim; --",
    "it's",
    "semi;colon",
    "back\\slash\\",
    "ünïcødé 🐘 表",
    "$1",
    "-- not a comment",
    "/* not a comment */",
    "select",
    "user",
    "Mixed Case",
    "a\"\"b\"",
    "tab\there",
    "new\nline",
    "E'\\x41'",
];

const COLUMNS: &[&str] = &[
    "x\"); DROP TABLE victim; --",
    "'; DELETE FROM victim; --",
    "$1",
    "$$",
    "--",
    "/*",
    "\\",
    "from",
    "ÄÖÜ ß",
    "U&\"0061\"",
];

fn hostile_sqlite(scratch: &Scratch) -> std::path::PathBuf {
    let mut sql = String::from("PRAGMA foreign_keys = OFF;\n");
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|c| format!("{} TEXT", ident(c)))
        .collect();
    let values: Vec<String> = COLUMNS.iter().map(|c| literal(c)).collect();
    for (i, table) in TABLES.iter().enumerate() {
        sql.push_str(&format!(
            "CREATE TABLE {} (id INTEGER PRIMARY KEY, {}, parent INTEGER REFERENCES {}(id), UNIQUE ({}));\n",
            ident(table),
            cols.join(", "),
            ident(TABLES[0]),
            ident(COLUMNS[0]),
        ));
        sql.push_str(&format!(
            "CREATE INDEX {} ON {} ({}, {} DESC);\n",
            ident(&format!("i{i}\"; DROP TABLE victim; --")),
            ident(table),
            ident(COLUMNS[1]),
            ident(COLUMNS[2]),
        ));
        sql.push_str(&format!(
            "INSERT INTO {} VALUES (1, {}, 1);\n",
            ident(table),
            values.join(", ")
        ));
    }
    scratch.sqlite("hostile.db", &sql)
}

#[test]
fn hostile_names_arrive_exactly_and_touch_nothing_else() {
    let scratch = Scratch::new();
    let db = hostile_sqlite(&scratch);
    let pg = databases(Flavor::Pg15);
    pg.create_database("quoting");
    pg.psql(
        "quoting",
        "CREATE TABLE victim (v integer); INSERT INTO victim VALUES (42);",
    );
    let url = pg.url("quoting");

    let run = pgharbor(&["migrate", db.to_str().unwrap(), &url]).success();
    assert!(
        run.stdout.contains("verified: every table matches"),
        "{}",
        run.all()
    );

    // Exactly the source's tables plus the untouched victim.
    let mut expected: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
    expected.push("victim".into());
    expected.sort();
    let mut got = query(
        &pg,
        "quoting",
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
    );
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(scalar(&pg, "quoting", "SELECT count(*) FROM victim"), "1");
    assert_eq!(scalar(&pg, "quoting", "SELECT v FROM victim"), "42");

    let mut columns = vec!["id".to_string()];
    columns.extend(COLUMNS.iter().map(|c| c.to_string()));
    columns.push("parent".into());
    for table in TABLES {
        let oid = format!(
            "(SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = {})",
            literal(table)
        );
        let attnames = query(
            &pg,
            "quoting",
            &format!(
                "SELECT attname FROM pg_attribute WHERE attrelid = {oid} AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
            ),
        );
        assert_eq!(attnames, columns, "columns of {table:?}");
        // The values (which are the column names) arrived too.
        for c in COLUMNS {
            let v = scalar(
                &pg,
                "quoting",
                &format!("SELECT {} FROM {}", ident(c), ident(table)),
            );
            assert_eq!(&v, c, "{table:?}.{c:?}");
        }
        let indexes = query(
            &pg,
            "quoting",
            &format!("SELECT count(*) FROM pg_index WHERE indrelid = {oid}"),
        );
        assert_eq!(indexes, ["3"], "primary key, unique and index on {table:?}");
        let fks = query(
            &pg,
            "quoting",
            &format!("SELECT count(*) FROM pg_constraint WHERE conrelid = {oid} AND contype = 'f'"),
        );
        assert_eq!(fks, ["1"], "foreign key of {table:?}");
    }

    // verify quotes the same names when it reads them back.
    let run = pgharbor(&["verify", db.to_str().unwrap(), &url]).success();
    assert!(
        run.stdout.contains("verified: every table matches"),
        "{}",
        run.all()
    );
}

#[test]
fn sqlite_cannot_hold_a_nul_in_a_name() {
    // The reason the next test uses over-long names: SQLite's tokenizer
    // refuses a NUL inside a quoted name, so no SQLite file can carry one
    // (pgharbor_core::schema::check_ident still refuses NULs, see its tests).
    let scratch = Scratch::new();
    let conn = rusqlite::Connection::open(scratch.path("nul.db")).unwrap();
    assert!(conn.execute_batch("CREATE TABLE \"a\0b\" (x)").is_err());
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0);
}

#[test]
fn names_postgres_would_truncate_are_refused_naming_the_table() {
    let scratch = Scratch::new();
    // 64 bytes in 32 characters: the limit is in bytes.
    let long_table = "ü".repeat(32);
    let db = scratch.sqlite(
        "long.db",
        &format!(
            "CREATE TABLE ok (id INTEGER PRIMARY KEY); CREATE TABLE {} (id INTEGER PRIMARY KEY);",
            ident(&long_table)
        ),
    );
    let run = pgharbor(&["migrate", db.to_str().unwrap(), "--dry-run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains(&long_table), "{}", run.stderr);
    assert!(
        run.stderr.contains("64 bytes") && run.stderr.contains("63"),
        "{}",
        run.stderr
    );

    let long_column = format!("c{}", "x".repeat(63));
    let db = scratch.sqlite(
        "longcol.db",
        &format!(
            "CREATE TABLE \"t;1\" (id INTEGER PRIMARY KEY, {} TEXT);",
            ident(&long_column)
        ),
    );
    let pg = cluster();
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &pg.url("longcol")]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("t;1") && run.stderr.contains(&long_column),
        "{}",
        run.stderr
    );
    // Refused before anything was created.
    let tables = query(
        &pg,
        "postgres",
        "SELECT datname FROM pg_database WHERE datname = 'longcol'",
    );
    assert!(tables.is_empty(), "{tables:?}");
}

#[test]

fn translated_index_expressions_cannot_smuggle_statements() {
    // Expression and partial indexes (and views) are the places where SQL
    // text from the source is carried over, translated. SQLite's bracket
    // identifiers become double quotes: `[x"]` turns into `"x""`, which
    // PostgreSQL reads as an identifier running on into the next quoted
    // name; the parenthesis counter that cuts the index's elements out of
    // SQLite's SQL does not skip quoted names. With a column named
    // `x"), lower(((` the first statement is valid, and what follows `));`
    // is a second statement, run by the simple query protocol.
    let scratch = Scratch::new();
    let bracketed = "x\"";
    let smuggled = ")); DROP TABLE victim; --";
    let decoy = "x\"), lower(((";
    let db = scratch.sqlite(
        "evil.db",
        &format!(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, {} TEXT, {} TEXT, {} TEXT);
             CREATE INDEX e ON t (lower([{bracketed}]), lower((({}))));
             INSERT INTO t VALUES (1, 'x', 'y', 'z');",
            ident(bracketed),
            ident(smuggled),
            ident(decoy),
            ident(smuggled),
        ),
    );
    let pg = databases(Flavor::Pg15);
    pg.create_database("evil");
    pg.psql(
        "evil",
        "CREATE TABLE victim (v integer); INSERT INTO victim VALUES (42);",
    );
    let run = pgharbor(&["migrate", db.to_str().unwrap(), &pg.url("evil")]);
    let victim = query(
        &pg,
        "evil",
        "SELECT count(*) FROM pg_class WHERE relname = 'victim'",
    );
    assert_eq!(victim, ["1"], "the victim table was dropped: {}", run.all());
}
