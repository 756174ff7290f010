//! The same conformance suite against every kind of destination: a local
//! directory (a path), `file://`, S3 (moto's server) and Azure Blob
//! (Azurite), each started fresh per test by pgharbor-testkit.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use pgharbor_conn::Secret;
use pgharbor_objstore::{
    AzureCredentials, Destination, DestinationKind, DestinationOptions, ObjstoreErrorKind,
    S3Credentials, MIN_PART_SIZE,
};
use pgharbor_testkit::{AzuriteServer, S3Server};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// A secret that must never show up in any message.
const WRONG_SECRET: &str = "secret-that-must-never-be-printed";
/// The same, base64 (Azure account keys are base64).
const WRONG_SECRET_B64: &str = "c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk";

/// Which destination a test runs against.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Dir,
    FileUrl,
    S3,
    Azure,
}

/// A destination with whatever keeps it alive.
struct Fixture {
    dest: Destination,
    /// The DEST string and options it was made from.
    url: String,
    options: DestinationOptions,
    _dir: Option<tempfile::TempDir>,
    s3: Option<S3Server>,
    azurite: Option<AzuriteServer>,
}

impl Fixture {
    fn new(kind: Kind) -> Fixture {
        let mut options = DestinationOptions {
            part_size: Some(MIN_PART_SIZE),
            ..Default::default()
        };
        let (mut dir, mut s3, mut azurite) = (None, None, None);
        let url = match kind {
            Kind::Dir | Kind::FileUrl => {
                let d = tempfile::tempdir().unwrap();
                let root = d.path().join("backups");
                dir = Some(d);
                if kind == Kind::Dir {
                    root.display().to_string()
                } else {
                    format!("file://{}", root.display())
                }
            }
            Kind::S3 => {
                let server = S3Server::start();
                server.create_bucket("pgharbor-backups");
                options.s3_endpoint = Some(server.endpoint());
                options.s3_region = Some(server.region().to_owned());
                options.s3_credentials = S3Credentials {
                    access_key_id: Some(server.access_key_id().to_owned()),
                    secret_access_key: Some(Secret::new(server.secret_access_key())),
                    session_token: None,
                };
                s3 = Some(server);
                "s3://pgharbor-backups/nightly/pg".to_owned()
            }
            Kind::Azure => {
                let server = AzuriteServer::start();
                server.create_container("pgharbor-backups");
                options.azure_endpoint = Some(server.endpoint());
                options.azure_credentials = AzureCredentials {
                    account: Some(server.account().to_owned()),
                    access_key: Some(Secret::new(server.key())),
                    ..Default::default()
                };
                azurite = Some(server);
                "az://pgharbor-backups/nightly/pg".to_owned()
            }
        };
        let dest = Destination::parse(&url, &options).unwrap();
        Fixture {
            dest,
            url,
            options,
            _dir: dir,
            s3,
            azurite,
        }
    }

    /// The same destination with `options` changed by `change`.
    fn with(&self, url: &str, change: impl FnOnce(&mut DestinationOptions)) -> Destination {
        let mut options = self.options.clone();
        change(&mut options);
        Destination::parse(url, &options).unwrap()
    }

    /// The real secret of the fixture's credentials, if any.
    fn real_secret(&self) -> Option<&str> {
        self.s3
            .as_ref()
            .map(|s| s.secret_access_key())
            .or(self.azurite.as_ref().map(|a| a.key()))
    }
}

/// Deterministic, incompressible test data.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A reader that hands out at most 100,000 bytes per read, like a pipe.
struct Trickle<'a>(&'a [u8]);

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.0.len().min(buf.remaining()).min(100_000);
        buf.put_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Poll::Ready(Ok(()))
    }
}

/// A reader that fails after `ok` bytes, like a dump process that dies.
struct Failing(usize);

impl AsyncRead for Failing {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.0 == 0 {
            return Poll::Ready(Err(io::Error::other("pg_dump exited with status 1")));
        }
        let n = self.0.min(buf.remaining()).min(65536);
        buf.put_slice(&vec![7u8; n]);
        self.0 -= n;
        Poll::Ready(Ok(()))
    }
}

async fn round_trip_multipart(kind: Kind) {
    let f = Fixture::new(kind);
    // 12 MiB + a bit with 5 MiB parts: three parts on S3 and Azure.
    let content = data(2 * MIN_PART_SIZE + 2 * 1024 * 1024 + 12345, 1);
    let written = f
        .dest
        .put_stream("2026-01-01T020000Z/app.dump", Trickle(&content))
        .await
        .unwrap();
    assert_eq!(written.size, content.len() as u64);
    assert_eq!(written.sha256, sha256_hex(&content));

    // Back as an AsyncRead.
    let download = f
        .dest
        .get_stream("2026-01-01T020000Z/app.dump")
        .await
        .unwrap();
    assert_eq!(download.size(), content.len() as u64);
    let mut back = Vec::new();
    download.into_reader().read_to_end(&mut back).await.unwrap();
    assert_eq!(back.len(), content.len());
    assert_eq!(sha256_hex(&back), written.sha256);

    // And as a stream of chunks, none larger than the whole.
    let mut stream = f
        .dest
        .get_stream("2026-01-01T020000Z/app.dump")
        .await
        .unwrap();
    let mut hasher = Sha256::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        hasher.update(chunk.unwrap());
        chunks += 1;
    }
    assert!(chunks > 1, "a multi-MB object arrives in several chunks");
    let streamed: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(streamed, written.sha256);

    // A small object through put_stream (one PUT) round-trips too.
    let small = data(1000, 2);
    let w = f.dest.put_stream("small.bin", &small[..]).await.unwrap();
    assert_eq!((w.size, w.sha256.clone()), (1000, sha256_hex(&small)));
    assert_eq!(f.dest.get_bytes("small.bin").await.unwrap(), small);

    // An empty object.
    let w = f.dest.put_stream("empty", &b""[..]).await.unwrap();
    assert_eq!(w.size, 0);
    assert_eq!(f.dest.get_bytes("empty").await.unwrap().len(), 0);
}

async fn failed_upload_leaves_nothing(kind: Kind) {
    let f = Fixture::new(kind);
    f.dest.put_bytes("db.dump", "previous").await.unwrap();
    // Fails in the second part (multipart on object stores).
    let e = f
        .dest
        .put_stream("db.dump", Failing(MIN_PART_SIZE + 1000))
        .await
        .unwrap_err();
    let msg = said(&e);
    assert!(msg.contains("reading the data to upload failed"), "{msg}");
    assert!(msg.contains("pg_dump exited with status 1"), "{msg}");
    assert!(
        msg.contains("db.dump") && msg.contains(&f.dest.to_string()),
        "{msg}"
    );
    assert_eq!(&f.dest.get_bytes("db.dump").await.unwrap()[..], b"previous");
    let names: Vec<String> = f
        .dest
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["db.dump"]);
}

async fn list_with_prefix(kind: Kind) {
    let f = Fixture::new(kind);
    let before = SystemTime::now() - Duration::from_secs(60);
    for (name, len) in [
        ("a/1.dump", 10),
        ("a/2.dump", 20),
        ("a/x/3", 30),
        ("ab/4", 40),
        ("b", 50),
    ] {
        f.dest.put_bytes(name, data(len, 3)).await.unwrap();
    }
    let under_a = f.dest.list("a").await.unwrap();
    let names: Vec<&str> = under_a.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        ["a/1.dump", "a/2.dump", "a/x/3"],
        "'a' does not match 'ab/…'"
    );
    assert_eq!(
        under_a.iter().map(|o| o.size).collect::<Vec<_>>(),
        [10, 20, 30]
    );
    assert!(under_a.iter().all(|o| o.last_modified > before));
    assert_eq!(f.dest.list("a/").await.unwrap(), under_a);

    let all: Vec<String> = f
        .dest
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(all, ["a/1.dump", "a/2.dump", "a/x/3", "ab/4", "b"]);
    assert!(f.dest.list("nothing-here").await.unwrap().is_empty());

    let stat = f.dest.stat("ab/4").await.unwrap().unwrap();
    assert_eq!((stat.name.as_str(), stat.size), ("ab/4", 40));
    assert!(f.dest.stat("ab/5").await.unwrap().is_none());

    let e = f.dest.list("../etc").await.unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::InvalidName);
    assert!(said(&e).contains("'..'"), "{e}");
}

async fn delete_and_delete_prefix(kind: Kind) {
    let f = Fixture::new(kind);
    for name in ["old/1", "old/2", "old/deep/3", "keep/1", "oldish"] {
        f.dest.put_bytes(name, "x").await.unwrap();
    }
    assert!(f.dest.exists("old/1").await.unwrap());
    f.dest.delete("old/1").await.unwrap();
    assert!(!f.dest.exists("old/1").await.unwrap());
    f.dest
        .delete("old/1")
        .await
        .expect("deleting a missing object is fine");

    assert_eq!(f.dest.delete_prefix("old").await.unwrap(), 2);
    let left: Vec<String> = f
        .dest
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(left, ["keep/1", "oldish"]);
    assert_eq!(f.dest.delete_prefix("old").await.unwrap(), 0);
}

async fn atomic_manifest(kind: Kind) {
    let f = Fixture::new(kind);
    let first = br#"{"state":"running"}"#;
    let second = br#"{"state":"complete","files":3}"#;
    let w = f
        .dest
        .put_bytes("b1/manifest.json", &first[..])
        .await
        .unwrap();
    assert_eq!((w.size, w.sha256), (first.len() as u64, sha256_hex(first)));
    f.dest
        .put_bytes("b1/manifest.json", &second[..])
        .await
        .unwrap();
    assert_eq!(
        &f.dest.get_bytes("b1/manifest.json").await.unwrap()[..],
        second
    );
    let listed = f.dest.list("b1").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, second.len() as u64);

    if matches!(kind, Kind::Dir | Kind::FileUrl) {
        // Nothing but the manifest in the directory: no temporary files left.
        let dir = f._dir.as_ref().unwrap().path().join("backups/b1");
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["manifest.json"]);
    }
}

async fn missing_object(kind: Kind) {
    let f = Fixture::new(kind);
    f.dest.put_bytes("present", "x").await.unwrap();
    let e = f.dest.get_bytes("b9/manifest.json").await.unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::NotFound, "{e}");
    assert!(e.is_not_found());
    let msg = said(&e);
    assert!(msg.contains("'b9/manifest.json'"), "{msg}");
    assert!(msg.contains(&f.dest.to_string()), "{msg}");
    assert!(msg.contains("list the destination"), "{msg}");
    assert!(!f.dest.exists("b9/manifest.json").await.unwrap());
}

async fn missing_bucket(kind: Kind) {
    let f = Fixture::new(kind);
    let (url, named) = match kind {
        Kind::S3 => (
            "s3://no-such-bucket/pg".to_owned(),
            "no-such-bucket".to_owned(),
        ),
        Kind::Azure => (
            "az://no-such-container/pg".to_owned(),
            "no-such-container".to_owned(),
        ),
        Kind::Dir | Kind::FileUrl => {
            let missing = f._dir.as_ref().unwrap().path().join("not-there");
            (missing.display().to_string(), missing.display().to_string())
        }
    };
    let dest = f.with(&url, |_| {});
    let e = dest.list("").await.unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::ContainerMissing, "{e}");
    assert!(said(&e).contains(&named), "{e}");
    let e = dest.get_bytes("manifest.json").await.unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::ContainerMissing, "{e}");
    if matches!(kind, Kind::S3 | Kind::Azure) {
        let e = dest.put_bytes("manifest.json", "{}").await.unwrap_err();
        assert_eq!(e.kind(), ObjstoreErrorKind::ContainerMissing, "{e}");
        let msg = said(&e);
        assert!(msg.contains(&format!("'{named}' does not exist")), "{msg}");
        assert!(msg.contains("create the"), "{msg}");
    } else {
        // A local directory is created on first write.
        dest.put_bytes("manifest.json", "{}").await.unwrap();
        assert!(dest.exists("manifest.json").await.unwrap());
    }
}

fn assert_no_secret(f: &Fixture, text: &str) {
    assert!(!text.contains(WRONG_SECRET), "secret leaked: {text}");
    assert!(!text.contains(WRONG_SECRET_B64), "secret leaked: {text}");
    if let Some(real) = f.real_secret() {
        assert!(!text.contains(real), "secret leaked: {text}");
    }
}

async fn wrong_credentials(kind: Kind) {
    let f = Fixture::new(kind);
    let url = f.url.clone();
    let dest = match kind {
        Kind::S3 => f.with(&url, |o| {
            o.s3_credentials.secret_access_key = Some(Secret::new(WRONG_SECRET));
        }),
        Kind::Azure => f.with(&url, |o| {
            o.azure_credentials.access_key = Some(Secret::new(WRONG_SECRET_B64));
        }),
        Kind::Dir | Kind::FileUrl => return, // no credentials
    };
    assert_no_secret(&f, &format!("{dest} {dest:?}"));
    for e in [
        dest.put_bytes("manifest.json", "{}").await.unwrap_err(),
        dest.list("").await.unwrap_err(),
        dest.get_bytes("manifest.json").await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ObjstoreErrorKind::Credentials, "{e}");
        let msg = said(&e);
        assert!(msg.contains("rejected the credentials"), "{msg}");
        assert!(msg.contains(&f.dest.to_string()), "{msg}");
        assert_no_secret(&f, &format!("{e} {e:?}"));
    }

    if kind == Kind::S3 {
        // An unknown access key id.
        let dest = f.with(&url, |o| {
            o.s3_credentials.access_key_id = Some("AKIAUNKNOWN".into())
        });
        let e = dest.list("").await.unwrap_err();
        assert_eq!(e.kind(), ObjstoreErrorKind::Credentials, "{e}");
        assert!(said(&e).contains("AWS_ACCESS_KEY_ID"), "{e}");
        // No credentials at all: said before anything is sent.
        let e = Destination::parse(&url, &DestinationOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ObjstoreErrorKind::Credentials);
        assert!(said(&e).contains("AWS_SECRET_ACCESS_KEY"), "{e}");
    } else {
        // A SAS token Azurite does not accept: its signature is never shown.
        let dest = f.with(&url, |o| {
            o.azure_credentials.access_key = None;
            o.azure_credentials.sas_token = Some(Secret::new(format!(
                "sv=2021-08-06&ss=b&srt=sco&sp=rl&se=2099-01-01T00:00:00Z&sig={WRONG_SECRET_B64}"
            )));
        });
        let e = dest.list("").await.unwrap_err();
        assert_eq!(e.kind(), ObjstoreErrorKind::Credentials, "{e}");
        assert_no_secret(&f, &format!("{e} {e:?} {dest:?}"));
        // The connection string form works, and shows nothing secret either.
        let az = f.azurite.as_ref().unwrap();
        let dest = f.with(&url, |o| {
            o.azure_credentials = AzureCredentials {
                connection_string: Some(Secret::new(az.connection_string())),
                ..Default::default()
            };
            o.azure_endpoint = None;
        });
        assert!(dest.list("").await.unwrap().is_empty());
        assert_no_secret(&f, &format!("{dest:?} {:?}", f.options));
    }
}

async fn unreachable_endpoint(kind: Kind) {
    let f = Fixture::new(kind);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = f.url.clone();
    let dest = match kind {
        Kind::S3 => f.with(&url, |o| {
            o.s3_endpoint = Some(format!("http://127.0.0.1:{port}"))
        }),
        Kind::Azure => f.with(&url, |o| {
            o.azure_endpoint = Some(format!("http://127.0.0.1:{port}/devstoreaccount1"))
        }),
        Kind::Dir | Kind::FileUrl => return,
    };
    let e = dest.list("").await.unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::Unreachable, "{e}");
    assert!(said(&e).contains(&format!("127.0.0.1:{port}")), "{e}");
}

/// A container SAS token instead of the account key (Azure only).
#[tokio::test]
async fn azure_sas_token() {
    let f = Fixture::new(Kind::Azure);
    let az = f.azurite.as_ref().unwrap();
    let sas = az.container_sas("pgharbor-backups", "racwdl");
    let url = f.url.clone();
    let dest = f.with(&url, |o| {
        o.azure_credentials.access_key = None;
        o.azure_credentials.sas_token = Some(Secret::new(format!("?{sas}")));
    });
    let content = data(MIN_PART_SIZE + 4096, 5);
    let w = dest.put_stream("b1/app.dump", &content[..]).await.unwrap();
    assert_eq!(w.sha256, sha256_hex(&content));
    dest.put_bytes("b1/manifest.json", "{}").await.unwrap();
    let names: Vec<String> = dest
        .list("b1")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["b1/app.dump", "b1/manifest.json"]);
    assert_eq!(
        sha256_hex(&dest.get_bytes("b1/app.dump").await.unwrap()),
        w.sha256
    );
    assert_eq!(dest.delete_prefix("b1").await.unwrap(), 2);

    // Read-only SAS: writing is refused as a permission problem, not a credentials one.
    let read_only = az.container_sas("pgharbor-backups", "rl");
    let dest = f.with(&url, |o| {
        o.azure_credentials.access_key = None;
        o.azure_credentials.sas_token = Some(Secret::new(read_only.clone()));
    });
    assert!(dest.list("").await.unwrap().is_empty());
    let e = dest.put_bytes("x", "y").await.unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::PermissionDenied, "{e}");
    let signature = read_only.rsplit("sig=").next().unwrap();
    assert!(!format!("{e} {e:?} {dest:?}").contains(signature), "{e}");
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod dir {
            $(#[tokio::test] async fn $test() { super::$test(super::Kind::Dir).await })*
        }
        mod file_url {
            $(#[tokio::test] async fn $test() { super::$test(super::Kind::FileUrl).await })*
        }
        mod s3 {
            $(#[tokio::test] async fn $test() { super::$test(super::Kind::S3).await })*
        }
        mod azure {
            $(#[tokio::test] async fn $test() { super::$test(super::Kind::Azure).await })*
        }
    };
}

suite!(
    round_trip_multipart,
    failed_upload_leaves_nothing,
    list_with_prefix,
    delete_and_delete_prefix,
    atomic_manifest,
    missing_object,
    missing_bucket,
    wrong_credentials,
    unreachable_endpoint,
);

#[test]
fn kinds() {
    let o = DestinationOptions::default();
    assert_eq!(
        Destination::parse("/tmp/x", &o).unwrap().kind(),
        DestinationKind::Local
    );
    assert_eq!(
        Destination::parse("file:///tmp/x", &o).unwrap().kind(),
        DestinationKind::Local
    );
}

/// An error and its causes as one line, as the CLI prints it.
fn said(e: &(dyn std::error::Error + 'static)) -> String {
    pgharbor_conn::chain_text(e, &pgharbor_objstore::keeps_cause_apart)
}
