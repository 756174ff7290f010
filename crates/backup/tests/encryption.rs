//! age encryption with an x25519 key and with a passphrase: round trips,
//! the age CLI decrypts, and no secret appears anywhere.

mod common;

use common::*;
use pgharbor_backup::{
    backup_postgres, restore, BackupOptions, Decryption, Encryption, EncryptionKind,
    RestoreOptions, Selection,
};
use pgharbor_conn::Secret;
use pgharbor_testkit::Flavor;

#[tokio::test]
async fn x25519_and_passphrase_round_trip_without_showing_secrets() {
    let pg = server_with_app(Flavor::Pg16Vector, 50);
    let (dir, dest) = local_dest();
    let identity = age::x25519::Identity::generate();
    let secret_key = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_owned();
    let public_key = identity.to_public().to_string();
    let passphrase = "correct horse battery staple 42";

    let cases = [
        (
            Encryption::Recipients(vec![public_key.clone()]),
            Decryption::Identities(Secret::new(secret_key.clone())),
            EncryptionKind::AgeX25519,
        ),
        (
            Encryption::Passphrase(Secret::new(passphrase)),
            Decryption::Passphrase(Secret::new(passphrase)),
            EncryptionKind::AgePassphrase,
        ),
    ];
    for (i, (encryption, decryption, kind)) in cases.into_iter().enumerate() {
        let options = BackupOptions {
            encrypt: Some(encryption.clone()),
            ..Default::default()
        };
        let report = backup_postgres(
            &config(&pg, "postgres"),
            Selection::One("app".into()),
            &dest,
            &options,
        )
        .await
        .unwrap();
        assert_eq!(report.manifest.encryption, Some(kind));
        assert_eq!(report.manifest.files[0].name, "app.dump.zst.age");
        let manifest = std::fs::read_to_string(
            dir.path()
                .join("backups")
                .join(&report.id)
                .join("manifest.json"),
        )
        .unwrap();
        for text in [
            manifest.as_str(),
            &format!("{report:?}"),
            &format!("{encryption:?}"),
            &format!("{decryption:?}"),
        ] {
            assert!(
                !text.contains(&secret_key) && !text.contains(passphrase),
                "{text}"
            );
        }

        // Without the key: a clear error. With a wrong key: no secret in it.
        let name = format!("enc{i}");
        let options = RestoreOptions {
            as_name: Some(name.clone()),
            ..Default::default()
        };
        let e = restore(&dest, &report.id, &config(&pg, "postgres"), &options)
            .await
            .unwrap_err();
        assert!(pgharbor_backup::chain_text(&e).contains("encrypted"), "{e}");
        let wrong = Decryption::Passphrase(Secret::new("wrong passphrase"));
        let options = RestoreOptions {
            as_name: Some(format!("{name}w")),
            decryption: Some(wrong),
            ..Default::default()
        };
        let e = restore(&dest, &report.id, &config(&pg, "postgres"), &options)
            .await
            .unwrap_err();
        let text = pgharbor_backup::chain_text(&e);
        assert!(
            !text.contains("wrong passphrase") && !text.contains(passphrase),
            "{text}"
        );
        let layers: Vec<String> =
            std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect();
        assert!(
            layers
                .iter()
                .any(|layer| layer.ends_with(": decryption failed")),
            "the context alone, age's error its cause: {layers:?}"
        );
        assert_eq!(
            text.matches("check the identity or passphrase").count(),
            1,
            "{text}"
        );

        let options = RestoreOptions {
            as_name: Some(name.clone()),
            decryption: Some(decryption),
            jobs: 2,
            ..Default::default()
        };
        restore(&dest, &report.id, &config(&pg, "postgres"), &options)
            .await
            .unwrap();
        assert_eq!(content(&pg, &name), content(&pg, "app"));

        // The age CLI decrypts the x25519 file.
        if i == 0 {
            let key_file = dir.path().join("key.txt");
            std::fs::write(&key_file, format!("{secret_key}\n")).unwrap();
            let file = dir
                .path()
                .join("backups")
                .join(&report.id)
                .join("app.dump.zst.age");
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "age -d -i '{}' '{}' | zstd -dc | head -c 5",
                    key_file.display(),
                    file.display()
                ))
                .output()
                .unwrap();
            assert_eq!(
                &out.stdout[..],
                b"PGDMP",
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
