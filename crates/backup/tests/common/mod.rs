//! Shared fixtures: a server with a small but varied database, and
//! destinations.

#![allow(dead_code)]

use pgharbor_conn::ConnConfig;
use pgharbor_objstore::{Destination, DestinationOptions};
use pgharbor_testkit::{Cluster, Flavor};

/// Use the PG16 client programs (they dump PG15 and PG16 servers).
pub fn use_pg16_tools() {
    let dir = Flavor::Pg16Vector
        .bin_dir()
        .expect("PG16 binaries (scripts/setup.sh)");
    std::env::set_var("PGHARBOR_PG_BIN", dir);
}

/// A server with database `app`: several tables, a view, a sequence, a
/// large object, a role owning a table and a database setting.
pub fn server_with_app(flavor: Flavor, rows: u32) -> Cluster {
    use_pg16_tools();
    let cluster = Cluster::start(flavor);
    cluster.psql("postgres", "CREATE ROLE app_owner LOGIN");
    cluster.create_database("app");
    cluster.psql(
        "app",
        &format!(
            "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now());
             INSERT INTO users (name) SELECT 'user ' || g FROM generate_series(1, {rows}) g;
             CREATE SCHEMA shop;
             CREATE TABLE shop.orders (id bigint PRIMARY KEY, user_id int REFERENCES users, total numeric(10,2), note text);
             INSERT INTO shop.orders SELECT g, 1 + g % {rows}, g * 1.5, repeat('x', g % 50) FROM generate_series(1, {rows} * 2) g;
             CREATE TABLE empty_table (x int);
             CREATE TABLE owned (v text); INSERT INTO owned VALUES ('a'), ('b');
             ALTER TABLE owned OWNER TO app_owner;
             CREATE SEQUENCE counter START 100; SELECT nextval('counter');
             CREATE VIEW big_orders AS SELECT * FROM shop.orders WHERE total > 10;
             SELECT lo_from_bytea(0, 'large object payload');
             ALTER DATABASE app SET work_mem = '8MB';
             ALTER DATABASE app SET search_path = \"$user\", public, shop;"
        ),
    );
    cluster
}

/// A backup of database `app` on `cluster` to `dest`, default options.
pub async fn back_up_app(cluster: &Cluster, dest: &Destination) -> pgharbor_backup::BackupReport {
    pgharbor_backup::backup_postgres(
        &config(cluster, "postgres"),
        pgharbor_backup::Selection::One("app".into()),
        dest,
        &pgharbor_backup::BackupOptions::default(),
    )
    .await
    .unwrap()
}

/// A connection configuration for `db` on `cluster`.
pub fn config(cluster: &Cluster, db: &str) -> ConnConfig {
    ConnConfig::parse(&cluster.url(db)).unwrap()
}

/// A local destination in a temporary directory.
pub fn local_dest() -> (tempfile::TempDir, Destination) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backups");
    let dest = Destination::parse(path.to_str().unwrap(), &DestinationOptions::default()).unwrap();
    (dir, dest)
}

/// The content of database `db` as text, for comparing two databases.
pub fn content(cluster: &Cluster, db: &str) -> String {
    cluster.psql(
        db,
        "SELECT (SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM users),
                (SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM shop.orders o),
                (SELECT string_agg(v, ',' ORDER BY v) FROM owned),
                (SELECT count(*) FROM big_orders),
                (SELECT last_value FROM counter),
                (SELECT string_agg(convert_from(lo_get(oid), 'UTF8'), ',') FROM pg_largeobject_metadata),
                (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'owned')",
    )
}

/// The database-level settings of `db`.
pub fn db_settings(cluster: &Cluster, db: &str) -> String {
    cluster.psql(
        "postgres",
        &format!(
            "SELECT string_agg(c, ';' ORDER BY c) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c WHERE d.datname = '{db}' AND s.setrole = 0"
        ),
    )
}
