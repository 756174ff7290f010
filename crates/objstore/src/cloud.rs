//! S3-compatible object stores and Azure Blob through the `object_store`
//! crate.
//!
//! HTTP goes through reqwest with rustls; reqwest is built without a
//! bundled crypto provider, so the workspace's `ring` provider is installed
//! as the process default before the first client is built (nothing else in
//! the workspace relies on a different default). Requests are signed with
//! `ring` too: no aws-lc-rs, no OpenSSL.
//!
//! Uploads: one `PUT` when the data fits in one part (atomic), otherwise a
//! multipart upload (S3) or staged blocks committed by a block list (Azure),
//! also atomic: nothing is visible under the name until it completes, and a
//! failed upload is aborted.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};
use tokio::io::AsyncRead;

use crate::azure::{AzureAccount, AzureAuth};
use crate::error::{op_error, ObjstoreError, ObjstoreErrorKind as Kind, Op, Result};
use crate::object::{fill, Checksum, ObjectInfo, ObjectStream, Written};
use crate::options::{DestinationOptions, DEFAULT_PART_SIZE, MIN_PART_SIZE};

/// Parts of a multipart upload sent at once; with the part being filled and
/// the one being read, an upload holds about `part size × (PARTS_IN_FLIGHT + 2)`.
pub const PARTS_IN_FLIGHT: usize = 2;

/// Which object store service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// AWS S3 or an S3-compatible server.
    S3,
    /// Azure Blob Storage (or Azurite).
    Azure,
}

/// A bucket or container and the prefix under which the objects live.
pub(crate) struct Cloud {
    store: Arc<dyn ObjectStore>,
    service: Service,
    /// `s3://bucket/prefix`, for messages.
    dest: String,
    /// The bucket or container name.
    root: String,
    /// Where the service is, for messages (`https://s3.amazonaws.com`, …).
    endpoint: String,
    prefix: String,
    part_size: usize,
    secrets: Vec<String>,
}

impl Cloud {
    /// A bucket (S3) or container (Azure) named `root`, with the objects
    /// under `prefix`. Nothing is contacted yet.
    pub(crate) fn open(
        service: Service,
        dest: String,
        root: &str,
        prefix: &str,
        o: &DestinationOptions,
    ) -> Result<Cloud> {
        let part_size = o.part_size.unwrap_or(DEFAULT_PART_SIZE);
        if part_size < MIN_PART_SIZE {
            return Err(ObjstoreError::invalid(
                &dest,
                format!(
                    "the part size {part_size} is below the minimum of {MIN_PART_SIZE} bytes (5 MiB)"
                ),
            ));
        }
        install_crypto_provider();
        let client = match service {
            Service::S3 => s3_client(&dest, root, o)?,
            Service::Azure => azure_client(&dest, root, o)?,
        };
        Ok(Cloud {
            store: client.store,
            service,
            dest,
            root: root.to_owned(),
            endpoint: client.endpoint,
            prefix: prefix.to_owned(),
            part_size,
            secrets: client.secrets,
        })
    }

    fn path(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    /// The name of `path` relative to the prefix.
    fn name_of(&self, path: &ObjectPath) -> String {
        let full = path.as_ref();
        if self.prefix.is_empty() {
            return full.to_owned();
        }
        full.strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(full)
            .to_owned()
    }

    /// Streams `reader` into `name`: one `PUT` when it fits in a part,
    /// otherwise a multipart upload with at most [`PARTS_IN_FLIGHT`] parts
    /// in flight.
    pub(crate) async fn put_stream<R: AsyncRead + Unpin>(
        &self,
        name: &str,
        mut reader: R,
    ) -> Result<Written> {
        let op = Op::Write(name);
        let path = self.path(name);
        let mut sum = Checksum::default();
        let first = fill(&mut reader, self.part_size, &mut sum, &self.dest, name).await?;
        if first.len() < self.part_size {
            self.store
                .put(&path, PutPayload::from(first))
                .await
                .map_err(|e| self.error(op, &e))?;
            return Ok(sum.finish());
        }
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.error(op, &e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        writer.put(Bytes::from(first));
        loop {
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(self.error(op, &e));
            }
            let chunk = match fill(&mut reader, self.part_size, &mut sum, &self.dest, name).await {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            };
            if chunk.is_empty() {
                break;
            }
            writer.put(Bytes::from(chunk));
        }
        writer.finish().await.map_err(|e| self.error(op, &e))?;
        Ok(sum.finish())
    }

    /// One `PUT`: the object appears whole or not at all.
    pub(crate) async fn put_bytes(&self, name: &str, data: Bytes) -> Result<Written> {
        let mut sum = Checksum::default();
        sum.update(&data);
        self.store
            .put(&self.path(name), PutPayload::from(data))
            .await
            .map_err(|e| self.error(Op::Write(name), &e))?;
        Ok(sum.finish())
    }

    pub(crate) async fn get(&self, name: &str) -> Result<ObjectStream> {
        let result = self
            .store
            .get(&self.path(name))
            .await
            .map_err(|e| self.error(Op::Read(name), &e))?;
        let size = result.meta.size;
        let (dest, owned, service, secrets) = (
            self.dest.clone(),
            name.to_owned(),
            self.service,
            self.secrets.clone(),
        );
        let stream = result.into_stream().map_err(move |e| {
            let (kind, cause) = classify(&e, &secrets);
            op_error(kind, &dest, Op::Read(&owned), &cause, hint(kind, service))
        });
        Ok(ObjectStream::new(size, stream.boxed()))
    }

    pub(crate) async fn head(&self, name: &str) -> Result<Option<ObjectInfo>> {
        match self.store.head(&self.path(name)).await {
            Ok(meta) => Ok(Some(self.info(meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(Op::Stat(name), &e)),
        }
    }

    /// Every object under `prefix/` (everything when empty), by name.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let full = match (self.prefix.is_empty(), prefix.is_empty()) {
            (true, true) => None,
            (true, false) => Some(ObjectPath::from(prefix)),
            (false, true) => Some(ObjectPath::from(self.prefix.as_str())),
            (false, false) => Some(self.path(prefix)),
        };
        let mut out: Vec<ObjectInfo> = self
            .store
            .list(full.as_ref())
            .map_ok(|meta| self.info(meta))
            .try_collect()
            .await
            .map_err(|e| self.error(Op::List(prefix), &e))?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deleting a missing object is not an error.
    pub(crate) async fn delete(&self, name: &str) -> Result<()> {
        match self.store.delete(&self.path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(Op::Delete(name), &e)),
        }
    }

    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let objects = self.list(prefix).await?;
        let paths: Vec<_> = objects.iter().map(|o| Ok(self.path(&o.name))).collect();
        let paths = futures_util::stream::iter(paths).boxed();
        self.store
            .delete_stream(paths)
            .try_for_each(|_| async { Ok(()) })
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(()),
                e => Err(self.error(Op::Delete(prefix), &e)),
            })?;
        Ok(objects.len() as u64)
    }

    fn info(&self, meta: object_store::ObjectMeta) -> ObjectInfo {
        ObjectInfo {
            name: self.name_of(&meta.location),
            size: meta.size,
            last_modified: meta.last_modified.into(),
        }
    }

    /// The error for `op`, with the bucket and endpoint named where that helps.
    fn error(&self, op: Op<'_>, e: &object_store::Error) -> ObjstoreError {
        let (kind, cause) = classify(e, &self.secrets);
        let (what, store) = match self.service {
            Service::S3 => ("bucket", "S3"),
            Service::Azure => ("container", "Azure Blob"),
        };
        let cause = match kind {
            Kind::ContainerMissing => format!(
                "the {what} '{}' does not exist at {} ({cause})",
                self.root, self.endpoint
            ),
            Kind::Credentials => format!(
                "{store} at {} rejected the credentials ({cause})",
                self.endpoint
            ),
            Kind::Unreachable => format!("{store} at {} did not answer ({cause})", self.endpoint),
            Kind::NotFound => format!("no such object ({cause})"),
            _ => cause,
        };
        op_error(kind, &self.dest, op, &cause, hint(kind, self.service))
    }
}

/// A built client: the store, where it points, and the secrets it holds.
struct Client {
    store: Arc<dyn ObjectStore>,
    endpoint: String,
    secrets: Vec<String>,
}

/// The client for an S3 bucket.
fn s3_client(dest: &str, bucket: &str, o: &DestinationOptions) -> Result<Client> {
    let creds = &o.s3_credentials;
    let (Some(key_id), Some(secret)) = (&creds.access_key_id, &creds.secret_access_key) else {
        return Err(ObjstoreError::new(
            Kind::Credentials,
            format!(
                "backup destination {dest}: no S3 credentials; set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)"
            ),
        ));
    };
    let region = o.s3_region.as_deref().unwrap_or("us-east-1");
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_access_key_id(key_id)
        .with_secret_access_key(secret.expose())
        .with_retry(retry_config());
    if let Some(token) = &creds.session_token {
        builder = builder.with_token(token.expose());
    }
    let endpoint = match &o.s3_endpoint {
        Some(url) => {
            check_endpoint(dest, url, "--s3-endpoint")?;
            builder = builder
                .with_endpoint(url.trim_end_matches('/'))
                .with_virtual_hosted_style_request(!o.s3_path_style.unwrap_or(true));
            url.clone()
        }
        None => {
            builder = builder.with_virtual_hosted_style_request(!o.s3_path_style.unwrap_or(false));
            format!("https://s3.{region}.amazonaws.com")
        }
    };
    let secrets = o.secrets();
    let store = builder
        .with_client_options(client_options(&endpoint))
        .build()
        .map_err(|e| ObjstoreError::invalid(dest, scrub(&e.to_string(), &secrets)))?;
    Ok(Client {
        store: Arc::new(store),
        endpoint,
        secrets,
    })
}

/// The client for an Azure Blob container.
fn azure_client(dest: &str, container: &str, o: &DestinationOptions) -> Result<Client> {
    let account = AzureAccount::resolve(dest, o)?;
    let mut builder = MicrosoftAzureBuilder::new()
        .with_container_name(container)
        .with_account(&account.name)
        .with_retry(retry_config());
    builder = match &account.auth {
        AzureAuth::Key(key) => builder.with_access_key(key.expose()),
        AzureAuth::Sas(sas) => builder.with_config(AzureConfigKey::SasKey, sas.expose()),
    };
    let endpoint = match &account.endpoint {
        Some(url) => {
            check_endpoint(dest, url, "the Azure blob endpoint")?;
            builder = builder.with_endpoint(url.trim_end_matches('/').to_owned());
            url.clone()
        }
        None => format!("https://{}.blob.core.windows.net", account.name),
    };
    let mut secrets = o.secrets();
    secrets.push(account.secret());
    let store = builder
        .with_client_options(client_options(&endpoint))
        .build()
        .map_err(|e| {
            ObjstoreError::new(
                Kind::Credentials,
                format!(
                    "backup destination {dest}: the Azure credentials are unusable: {}; check \
                     AZURE_STORAGE_KEY (base64), the connection string or the SAS token",
                    scrub(&e.to_string(), &secrets)
                ),
            )
        })?;
    Ok(Client {
        store: Arc::new(store),
        endpoint,
        secrets,
    })
}

/// Shows where, never the client (whose credentials are inside) or the secrets.
impl std::fmt::Debug for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloud")
            .field("service", &self.service)
            .field("dest", &self.dest)
            .field("endpoint", &self.endpoint)
            .field("part_size", &self.part_size)
            .finish_non_exhaustive()
    }
}

/// The kind of an `object_store` error and its text without secrets.
fn classify(e: &object_store::Error, secrets: &[String]) -> (Kind, String) {
    let text = scrub(&condense(&error_chain(e)), secrets);
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    let kind = if has(&["NoSuchBucket", "ContainerNotFound"]) {
        Kind::ContainerMissing
    } else if has(&[
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AuthenticationFailed",
        "ExpiredToken",
        "InvalidToken",
        "InvalidSecurity",
        "AuthorizationFailure",
        "NoAuthenticationInformation",
    ]) {
        Kind::Credentials
    } else {
        match e {
            object_store::Error::NotFound { .. } => Kind::NotFound,
            object_store::Error::Unauthenticated { .. } => Kind::Credentials,
            object_store::Error::PermissionDenied { .. } => Kind::PermissionDenied,
            _ if has(&[
                "error sending request",
                "Connection refused",
                "dns error",
                "timed out",
            ]) =>
            {
                Kind::Unreachable
            }
            _ => Kind::Other,
        }
    };
    (kind, text)
}

/// The service's error code and message (`SignatureDoesNotMatch, HTTP 403
/// Forbidden: The request signature …`) when the text carries an XML error
/// document; the whole text otherwise.
fn condense(text: &str) -> String {
    let between = |open: &str, close: &str| {
        let start = text.find(open)? + open.len();
        let len = text[start..].find(close)?;
        Some(text[start..start + len].trim().to_owned())
    };
    let Some(code) = between("<Code>", "</Code>") else {
        return text.to_owned();
    };
    let message = between("<Message>", "</Message>").unwrap_or_default();
    match between("status code: ", ":") {
        Some(status) => format!("{code}, HTTP {status}: {message}"),
        None => format!("{code}: {message}"),
    }
}

/// The error and its sources, one line.
fn error_chain(e: &object_store::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text.replace(['\n', '\r'], " ")
}

/// `text` with every secret, and any `sig=` signature of a SAS URL, replaced.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        out = out.replace(secret.as_str(), "[REDACTED]");
    }
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.find("sig=") {
        result.push_str(&rest[..at + 4]);
        rest = &rest[at + 4..];
        let end = rest
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(rest.len());
        result.push_str("[REDACTED]");
        rest = &rest[end..];
    }
    result.push_str(rest);
    result
}

/// What to do about an error of `kind`.
fn hint(kind: Kind, service: Service) -> &'static str {
    match (kind, service) {
        (Kind::Credentials, Service::S3) => {
            "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for \
             temporary credentials), and that they belong to this endpoint"
        }
        (Kind::Credentials, Service::Azure) => {
            "check AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, the connection string, or the \
             SAS token (its expiry and permissions)"
        }
        (Kind::PermissionDenied, Service::S3) => {
            "the credentials are valid but not allowed this; grant s3:PutObject, s3:GetObject, \
             s3:ListBucket and s3:DeleteObject on the bucket"
        }
        (Kind::PermissionDenied, Service::Azure) => {
            "the credentials are valid but not allowed this; use a key or a SAS token with \
             read, add, create, write, delete and list permissions on the container"
        }
        (Kind::ContainerMissing, Service::S3) => {
            "create the bucket, or correct its name or the endpoint"
        }
        (Kind::ContainerMissing, Service::Azure) => {
            "create the container, or correct its name or the account"
        }
        (Kind::Unreachable, _) => "check the endpoint URL and that the service is reachable",
        (Kind::NotFound, _) => "list the destination to see the objects it holds",
        _ => "",
    }
}

/// An `http://` or `https://` URL with a host.
fn check_endpoint(dest: &str, url: &str, what: &str) -> Result<()> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains('@') => Ok(()),
        _ => Err(ObjstoreError::invalid(
            dest,
            format!("{what} must be an http:// or https:// URL with a host (no credentials), e.g. http://127.0.0.1:9000"),
        )),
    }
}

fn client_options(endpoint: &str) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(endpoint.starts_with("http://"))
        .with_connect_timeout(Duration::from_secs(10))
        .with_timeout(Duration::from_secs(300))
}

/// A few quick retries: an unreachable endpoint fails in seconds, not minutes.
fn retry_config() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    }
}

/// Makes `ring` the process's default rustls provider unless one is set.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_secrets_and_signatures() {
        let text = "GET http://h/c/b?sv=2020&sig=abc%2Bdef&se=1 failed with key SECRETKEY";
        let out = scrub(text, &["SECRETKEY".to_owned()]);
        assert_eq!(
            out,
            "GET http://h/c/b?sv=2020&sig=[REDACTED]&se=1 failed with key [REDACTED]"
        );
    }

    #[test]
    fn condenses_xml_errors() {
        let text = "Error performing PUT http://h/b/k - Server returned non-2xx status code: \
                    403 Forbidden: <?xml version=\"1.0\"?> <Error><Code>SignatureDoesNotMatch</Code>\
                    <Message>The signature does not match.</Message><RequestId>1</RequestId></Error>";
        assert_eq!(
            condense(text),
            "SignatureDoesNotMatch, HTTP 403 Forbidden: The signature does not match."
        );
        assert_eq!(condense("Connection refused"), "Connection refused");
    }

    #[test]
    fn endpoints() {
        assert!(check_endpoint("d", "http://127.0.0.1:9000", "x").is_ok());
        assert!(check_endpoint("d", "https://s3.example.com/", "x").is_ok());
        assert!(check_endpoint("d", "127.0.0.1:9000", "x").is_err());
        assert!(check_endpoint("d", "http://k:s@h", "x").is_err());
    }
}
