//! The harness against real servers.

use std::net::TcpStream;
use std::time::Duration;

use pgharbor_testkit::{Cluster, ClusterOptions, Flavor};
use tokio_postgres::error::SqlState;

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

#[tokio::test]
async fn pg15_and_pg16_vector_run_at_once() {
    // Start both concurrently, as a cross-version test would.
    let t15 = std::thread::spawn(|| Cluster::start(Flavor::Pg15));
    let t16 = std::thread::spawn(|| Cluster::start(Flavor::Pg16Vector));
    let pg15 = t15.join().unwrap();
    let pg16 = t16.join().unwrap();
    assert_ne!(pg15.port(), pg16.port());
    assert_eq!(pg15.major_version(), 15);
    assert_eq!(pg16.major_version(), 16);

    for (cluster, want) in [(&pg15, "PostgreSQL 15."), (&pg16, "PostgreSQL 16.")] {
        let via_psql = cluster.psql("postgres", "SELECT version()");
        assert!(via_psql.starts_with(want), "{via_psql}");
        let client = cluster.client("postgres").await;
        let row = client.query_one("SELECT version()", &[]).await.unwrap();
        let via_client: String = row.get(0);
        assert_eq!(via_client, via_psql);
        let setting = cluster.psql("postgres", "SHOW fsync");
        assert_eq!(setting, "off");
    }

    let client = pg16.client("postgres").await;
    client
        .batch_execute("CREATE EXTENSION vector")
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT ('[1,2,3]'::vector <-> '[1,2,4]'::vector)::float8",
            &[],
        )
        .await
        .unwrap();
    let distance: f64 = row.get(0);
    assert_eq!(distance, 1.0);

    let err = pg15
        .try_psql("postgres", "CREATE EXTENSION vector")
        .unwrap_err();
    assert!(err.contains("vector"), "{err}");
}

#[tokio::test]
async fn password_auth_rejects_a_wrong_password() {
    let cluster = Cluster::start_with(
        Flavor::Pg15,
        ClusterOptions {
            password_auth: true,
            ..Default::default()
        },
    );
    let password = cluster.password().expect("a generated password").to_owned();
    assert!(cluster
        .url("postgres")
        .starts_with(&format!("postgresql://postgres:{password}@127.0.0.1:")));

    // The right password works, through the URL as well as the helper.
    let (client, conn) = tokio_postgres::connect(&cluster.url("postgres"), tokio_postgres::NoTls)
        .await
        .expect("connect with the right password");
    tokio::spawn(conn);
    let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let _ = cluster.client("postgres").await;

    // A wrong password and no password are refused over TCP.
    let mut wrong = cluster.tokio_config("postgres");
    wrong.password("not-the-password");
    let err = wrong
        .connect(tokio_postgres::NoTls)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INVALID_PASSWORD), "{err}");

    let mut none = tokio_postgres::Config::new();
    none.host("127.0.0.1")
        .port(cluster.port())
        .user("postgres")
        .dbname("postgres");
    assert!(none.connect(tokio_postgres::NoTls).await.is_err());

    // The unix socket stays trust: psql works.
    assert_eq!(cluster.psql("postgres", "SELECT current_user"), "postgres");
}

#[test]
fn custom_password_is_percent_encoded_in_the_url() {
    let cluster = Cluster::start_with(
        Flavor::Pg16Vector,
        ClusterOptions {
            password_auth: true,
            password: Some("p@ss:w/rd".into()),
            ..Default::default()
        },
    );
    assert_eq!(cluster.password(), Some("p@ss:w/rd"));
    assert_eq!(
        cluster.url("my db"),
        format!(
            "postgresql://postgres:p%40ss%3Aw%2Frd@127.0.0.1:{}/my%20db",
            cluster.port()
        )
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) =
            tokio_postgres::connect(&cluster.url("postgres"), tokio_postgres::NoTls)
                .await
                .expect("encoded password accepted");
        tokio::spawn(conn);
        client.simple_query("SELECT 1").await.unwrap();
    });
}

#[test]
fn extra_conf_hba_and_data_files() {
    let cluster = Cluster::start_with(
        Flavor::Pg15,
        ClusterOptions {
            extra_conf: vec![
                ("work_mem".into(), "7MB".into()),
                ("application_name".into(), "it's quoted".into()),
            ],
            hba_lines: Some(vec![
                "local all all trust".into(),
                "host all all 127.0.0.1/32 reject".into(),
            ]),
            data_files: vec![("extra/hello.txt".into(), b"hello".to_vec())],
            ..Default::default()
        },
    );
    assert_eq!(cluster.psql("postgres", "SHOW work_mem"), "7MB");
    assert_eq!(
        cluster.psql("postgres", "SELECT pg_read_file('extra/hello.txt')"),
        "hello"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(
            cluster
                .tokio_config("postgres")
                .connect(tokio_postgres::NoTls),
        )
        .map(|_| ())
        .unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code(), &SqlState::INVALID_AUTHORIZATION_SPECIFICATION);
    assert!(db.message().contains("pg_hba.conf"), "{db}");
}

#[test]
fn create_database_stop_restart_and_drop() {
    let cluster = Cluster::start(Flavor::Pg15);
    cluster.create_database("Mixed Case");
    assert_eq!(
        cluster.psql(
            "Mixed Case",
            "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2); SELECT count(*) FROM t;"
        ),
        "2"
    );
    let port = cluster.port();
    assert!(cluster.is_running());
    assert!(port_open(port));

    cluster.stop();
    assert!(!cluster.is_running());
    assert!(!port_open(port));
    assert!(cluster.try_psql("postgres", "SELECT 1").is_err());
    cluster.stop(); // idempotent

    cluster.restart();
    assert_eq!(cluster.port(), port);
    assert_eq!(cluster.psql("Mixed Case", "SELECT count(*) FROM t"), "2");

    // A crash and crash recovery.
    cluster.crash();
    assert!(!port_open(port));
    cluster.restart();
    assert_eq!(cluster.psql("Mixed Case", "SELECT count(*) FROM t"), "2");

    let data_dir = cluster.data_dir().to_path_buf();
    assert!(data_dir.join("PG_VERSION").exists());
    assert!(cluster.bin("pg_dump").exists());
    drop(cluster);
    assert!(!data_dir.exists());
    assert!(!port_open(port));
}

#[test]
fn several_clusters_at_once() {
    let clusters: Vec<Cluster> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                Cluster::start(if i % 2 == 0 {
                    Flavor::Pg15
                } else {
                    Flavor::Pg16Vector
                })
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let mut ports: Vec<u16> = clusters.iter().map(Cluster::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    for c in &clusters {
        assert_eq!(c.psql("postgres", "SELECT 40 + 2"), "42");
    }
}
