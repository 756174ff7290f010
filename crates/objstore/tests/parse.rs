//! Parsing DEST: every accepted form, and errors that name the problem.

use pgharbor_conn::Secret;
use pgharbor_objstore::{
    AzureCredentials, Destination, DestinationKind, DestinationOptions, ObjstoreErrorKind,
    S3Credentials, MIN_PART_SIZE,
};

fn s3_options() -> DestinationOptions {
    DestinationOptions {
        s3_credentials: S3Credentials {
            access_key_id: Some("AKIAEXAMPLE".into()),
            secret_access_key: Some(Secret::new("s3-secret-never-shown")),
            session_token: Some(Secret::new("session-token-never-shown")),
        },
        ..Default::default()
    }
}

fn azure_options() -> DestinationOptions {
    DestinationOptions {
        azure_credentials: AzureCredentials {
            account: Some("acct".into()),
            access_key: Some(Secret::new("YXp1cmUta2V5LW5ldmVyLXNob3du")),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn parse(dest: &str, options: &DestinationOptions) -> Destination {
    Destination::parse(dest, options).unwrap_or_else(|e| panic!("{dest}: {e}"))
}

fn error(dest: &str, options: &DestinationOptions) -> String {
    let e = Destination::parse(dest, options).expect_err(dest);
    e.to_string()
}

#[test]
fn local_forms() {
    let o = DestinationOptions::default();
    let d = parse("/var/backups/pg", &o);
    assert_eq!(d.kind(), DestinationKind::Local);
    assert_eq!(d.to_string(), "/var/backups/pg");
    assert_eq!(
        parse("file:///var/backups/pg", &o).to_string(),
        "/var/backups/pg"
    );
    assert_eq!(
        parse("file://localhost/var/backups", &o).to_string(),
        "/var/backups"
    );
    assert_eq!(
        parse("file:///var/my%20backups", &o).to_string(),
        "/var/my backups"
    );
    let relative = parse("backups/pg", &o).to_string();
    assert!(
        relative.starts_with('/') && relative.ends_with("/backups/pg"),
        "{relative}"
    );
}

#[test]
fn s3_forms() {
    let o = s3_options();
    let d = parse("s3://my-bucket/nightly/pg", &o);
    assert_eq!(d.kind(), DestinationKind::S3);
    assert_eq!(d.to_string(), "s3://my-bucket/nightly/pg");
    assert_eq!(parse("s3://my-bucket", &o).to_string(), "s3://my-bucket");
    assert_eq!(parse("s3://my-bucket/", &o).to_string(), "s3://my-bucket");
    assert_eq!(
        parse("s3://my.bucket.1/a/b/", &o).to_string(),
        "s3://my.bucket.1/a/b"
    );
    let custom = DestinationOptions {
        s3_endpoint: Some("http://127.0.0.1:9000".into()),
        s3_path_style: Some(true),
        s3_region: Some("eu-central-1".into()),
        ..o.clone()
    };
    assert_eq!(parse("s3://b12/x", &custom).to_string(), "s3://b12/x");
    let virtual_hosted = DestinationOptions {
        s3_path_style: Some(false),
        ..custom
    };
    parse("s3://b12/x", &virtual_hosted);
}

#[test]
fn azure_forms() {
    let o = azure_options();
    let d = parse("az://backups/nightly", &o);
    assert_eq!(d.kind(), DestinationKind::Azure);
    assert_eq!(d.to_string(), "az://backups/nightly");
    assert_eq!(parse("azure://backups", &o).to_string(), "az://backups");
    let azurite = DestinationOptions {
        azure_endpoint: Some("http://127.0.0.1:10000/devstoreaccount1".into()),
        ..o
    };
    parse("az://backups", &azurite);
    let sas = DestinationOptions {
        azure_credentials: AzureCredentials {
            account: Some("acct".into()),
            sas_token: Some(Secret::new("?sv=2022-11-02&sp=racwdl&sig=abc")),
            ..Default::default()
        },
        ..Default::default()
    };
    parse("az://backups", &sas);
    let cs = DestinationOptions {
        azure_credentials: AzureCredentials {
            connection_string: Some(Secret::new("UseDevelopmentStorage=true")),
            ..Default::default()
        },
        ..Default::default()
    };
    parse("az://backups", &cs);
}

#[test]
fn bad_input_names_the_problem() {
    let s3 = s3_options();
    let az = azure_options();
    let cases: &[(&str, &DestinationOptions, &str)] = &[
        ("", &s3, "it is empty"),
        ("   ", &s3, "it is empty"),
        ("gs://bucket/x", &s3, "unsupported scheme 'gs://'"),
        ("ftp://host/x", &s3, "unsupported scheme 'ftp://'"),
        ("s3://", &s3, "the bucket name is missing"),
        ("s3:///prefix", &s3, "the bucket name is missing"),
        (
            "s3://My_Bucket/x",
            &s3,
            "'My_Bucket' is not a valid S3 bucket name",
        ),
        ("s3://ab/x", &s3, "'ab' is not a valid S3 bucket name"),
        (
            "s3://bucket/a//b",
            &s3,
            "the prefix 'a//b' has an empty path segment",
        ),
        (
            "s3://bucket/a/../b",
            &s3,
            "the prefix 'a/../b' has a '.' or '..' segment",
        ),
        (
            "s3://bucket/a?versionId=1",
            &s3,
            "query strings and fragments are not supported",
        ),
        ("az://", &az, "the container name is missing"),
        (
            "az://Backups",
            &az,
            "'Backups' is not a valid Azure container name",
        ),
        (
            "az://a--b",
            &az,
            "'a--b' is not a valid Azure container name",
        ),
        (
            "file://relative/path",
            &s3,
            "file:// URLs need an absolute path",
        ),
        ("file:///bad%zzpath", &s3, "bad percent-encoding"),
    ];
    for (dest, options, expected) in cases {
        let msg = error(dest, options);
        assert!(msg.contains(expected), "{dest:?}: {msg}");
        assert!(
            msg.starts_with("invalid backup destination"),
            "{dest:?}: {msg}"
        );
    }
}

#[test]
fn credentials_in_the_url_are_refused_and_not_echoed() {
    let msg = error("s3://AKIA:wJalrXUtnFEMI@bucket/x", &s3_options());
    assert!(
        msg.contains("credentials in the URL are not supported"),
        "{msg}"
    );
    assert!(!msg.contains("wJalrXUtnFEMI"), "{msg}");
    assert!(msg.contains("s3://****@bucket/x"), "{msg}");
    let msg = error("az://c/p?sv=1&sig=SIGNATURE", &azure_options());
    assert!(!msg.contains("SIGNATURE"), "{msg}");
}

#[test]
fn missing_credentials_say_which_variables_to_set() {
    let e = Destination::parse("s3://bucket/x", &DestinationOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::Credentials);
    assert!(
        e.to_string()
            .contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{e}"
    );
    let e = Destination::parse("az://container/x", &DestinationOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::Credentials);
    assert!(
        e.to_string().contains("AZURE_STORAGE_CONNECTION_STRING"),
        "{e}"
    );
}

#[test]
fn bad_options_name_the_problem() {
    let bad_endpoint = DestinationOptions {
        s3_endpoint: Some("127.0.0.1:9000".into()),
        ..s3_options()
    };
    let msg = error("s3://bucket/x", &bad_endpoint);
    assert!(
        msg.contains("--s3-endpoint must be an http:// or https:// URL"),
        "{msg}"
    );
    let small_parts = DestinationOptions {
        part_size: Some(MIN_PART_SIZE - 1),
        ..s3_options()
    };
    let msg = error("s3://bucket/x", &small_parts);
    assert!(msg.contains("below the minimum"), "{msg}");
    let bad_key = DestinationOptions {
        azure_credentials: AzureCredentials {
            account: Some("acct".into()),
            access_key: Some(Secret::new("not base64 !!")),
            ..Default::default()
        },
        ..Default::default()
    };
    let e = Destination::parse("az://container", &bad_key).unwrap_err();
    assert_eq!(e.kind(), ObjstoreErrorKind::Credentials);
    assert!(!e.to_string().contains("not base64 !!"), "{e}");
}

#[test]
fn nothing_secret_in_display_or_debug() {
    for (dest, options) in [
        ("s3://bucket/x", s3_options()),
        ("az://container/x", azure_options()),
    ] {
        let d = parse(dest, &options);
        let shown = format!("{d} {d:?} {options:?}");
        for secret in [
            "s3-secret-never-shown",
            "session-token-never-shown",
            "YXp1cmUta2V5LW5ldmVyLXNob3du",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

#[tokio::test]
async fn bad_object_names_are_refused() {
    let d = parse(
        "/tmp/pgharbor-never-written",
        &DestinationOptions::default(),
    );
    for (name, problem) in [
        ("", "is empty"),
        ("/etc/passwd", "must be relative"),
        ("a/../../etc", "'..' segment"),
        ("a//b", "empty path segment"),
        ("a/b/", "empty path segment"),
        ("a\\b", "may contain only"),
        ("a%2Fb", "may contain only"),
    ] {
        let e = d.put_bytes(name, "x").await.unwrap_err();
        assert_eq!(e.kind(), ObjstoreErrorKind::InvalidName, "{name:?}");
        assert!(e.to_string().contains(problem), "{name:?}: {e}");
    }
    assert!(!std::path::Path::new("/tmp/pgharbor-never-written").exists());
}

#[test]
fn destinations_and_their_futures_move_between_tasks() {
    fn shared<T: Send + Sync>(_: &T) {}
    fn sent<T: Send>(_: T) {}
    for (dest, options) in [
        ("/tmp/pgharbor-never-written", DestinationOptions::default()),
        ("s3://bucket/x", s3_options()),
    ] {
        let d = parse(dest, &options);
        shared(&d);
        // Futures are lazy: building them here writes nothing.
        sent(d.put_stream("a", &b"x"[..]));
        sent(d.put_bytes("a", "x"));
        sent(d.get_stream("a"));
        sent(d.get_bytes("a"));
        sent(d.list(""));
        sent(d.exists("a"));
        sent(d.delete("a"));
        sent(d.delete_prefix("a"));
    }
    assert!(!std::path::Path::new("/tmp/pgharbor-never-written").exists());
}
