//! Backup and restore through moto's S3 server and Azurite.

mod common;

use common::*;
use pgharbor_backup::{list, restore, verify, BackupState, RestoreOptions, VerifyOptions};
use pgharbor_conn::Secret;
use pgharbor_objstore::{AzureCredentials, Destination, DestinationOptions, S3Credentials};
use pgharbor_testkit::{AzuriteServer, Flavor, S3Server};

async fn round_trip(dest: &Destination) {
    let pg = server_with_app(Flavor::Pg16Vector, 50);
    let report = back_up_app(&pg, dest).await;
    assert_eq!(list(dest).await.unwrap()[0].state, BackupState::Complete);
    let options = RestoreOptions {
        as_name: Some("back".into()),
        jobs: 2,
        ..Default::default()
    };
    restore(dest, &report.id, &config(&pg, "postgres"), &options)
        .await
        .unwrap();
    assert_eq!(content(&pg, "back"), content(&pg, "app"));
    let v = verify(dest, None, None, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(v.passed, "{v:?}");
    assert_eq!(list(dest).await.unwrap()[0].state, BackupState::Verified);
}

#[tokio::test]
async fn s3_round_trip() {
    let s3 = S3Server::start();
    s3.create_bucket("pgb");
    let options = DestinationOptions {
        s3_endpoint: Some(s3.endpoint()),
        s3_region: Some(s3.region().to_owned()),
        s3_credentials: S3Credentials {
            access_key_id: Some(s3.access_key_id().to_owned()),
            secret_access_key: Some(Secret::new(s3.secret_access_key())),
            session_token: None,
        },
        ..Default::default()
    };
    round_trip(&Destination::parse("s3://pgb/nightly", &options).unwrap()).await;
}

#[tokio::test]
async fn azure_round_trip() {
    let az = AzuriteServer::start();
    az.create_container("pgb");
    let options = DestinationOptions {
        azure_endpoint: Some(az.endpoint()),
        azure_credentials: AzureCredentials {
            account: Some(az.account().to_owned()),
            access_key: Some(Secret::new(az.key())),
            ..Default::default()
        },
        ..Default::default()
    };
    round_trip(&Destination::parse("az://pgb/nightly", &options).unwrap()).await;
}
