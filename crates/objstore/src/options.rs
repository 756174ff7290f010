//! [`DestinationOptions`]: endpoints, addressing, regions and credentials,
//! from the command line and the usual environment variables.

use pgharbor_conn::Secret;

/// The default size of one part of a multipart upload (16 MiB): with S3's
/// limit of 10,000 parts, objects up to 160 GiB.
pub const DEFAULT_PART_SIZE: usize = 16 * 1024 * 1024;

/// The smallest part size S3 accepts (5 MiB) for every part but the last.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// How a [`Destination`](crate::Destination) reaches its storage. Nothing
/// here is read from the environment by `Destination::parse` itself: build
/// the options with [`DestinationOptions::from_env`] (then override fields
/// from command-line flags), or fill them in directly.
///
/// `Debug` shows every secret as `[REDACTED]`.
#[derive(Clone, Debug, Default)]
pub struct DestinationOptions {
    /// S3: the service's URL, for any S3-compatible store (MinIO, Ceph,
    /// moto, …); `http://` is allowed. `--s3-endpoint`, `AWS_ENDPOINT_URL_S3`,
    /// `AWS_ENDPOINT_URL`. Without it, AWS itself.
    pub s3_endpoint: Option<String>,
    /// S3: path-style requests (`ENDPOINT/bucket/key`) instead of
    /// virtual-hosted ones (`bucket.ENDPOINT/key`). `None`: path-style when
    /// an endpoint is set (what most S3-compatible servers expect),
    /// virtual-hosted on AWS. `AWS_S3_FORCE_PATH_STYLE` / `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`.
    pub s3_path_style: Option<bool>,
    /// S3: the region (`AWS_REGION`, `AWS_DEFAULT_REGION`); `us-east-1`
    /// when unset.
    pub s3_region: Option<String>,
    /// S3 credentials.
    pub s3_credentials: S3Credentials,
    /// Azure Blob: the account's blob endpoint, e.g. Azurite's
    /// `http://127.0.0.1:10000/devstoreaccount1`; `AZURE_STORAGE_BLOB_ENDPOINT`,
    /// or `BlobEndpoint` in a connection string. Without it,
    /// `https://ACCOUNT.blob.core.windows.net`.
    pub azure_endpoint: Option<String>,
    /// Azure Blob credentials.
    pub azure_credentials: AzureCredentials,
    /// Size of one part of a multipart upload ([`DEFAULT_PART_SIZE`] when
    /// `None`; at least [`MIN_PART_SIZE`]). An upload holds
    /// about `part size × (PARTS_IN_FLIGHT + 2)` bytes in memory.
    pub part_size: Option<usize>,
}

/// Static S3 credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`).
#[derive(Clone, Debug, Default)]
pub struct S3Credentials {
    /// The access key id (not secret; it appears in error messages).
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<Secret>,
    /// A session token for temporary credentials.
    pub session_token: Option<Secret>,
}

/// Azure Blob credentials: an account with its key, a connection string, or
/// a SAS token (with the account, or the endpoint, to say where).
#[derive(Clone, Debug, Default)]
pub struct AzureCredentials {
    /// The storage account name (`AZURE_STORAGE_ACCOUNT`).
    pub account: Option<String>,
    /// The account key, base64 (`AZURE_STORAGE_KEY`, `AZURE_STORAGE_ACCESS_KEY`).
    pub access_key: Option<Secret>,
    /// A connection string (`AZURE_STORAGE_CONNECTION_STRING`):
    /// `AccountName=…;AccountKey=…;BlobEndpoint=…` or with
    /// `SharedAccessSignature=…`, or `UseDevelopmentStorage=true`.
    pub connection_string: Option<Secret>,
    /// A SAS token, with or without the leading `?` (`AZURE_STORAGE_SAS_TOKEN`).
    pub sas_token: Option<Secret>,
}

impl DestinationOptions {
    /// Options from the process environment (see [`DestinationOptions::from_lookup`]).
    pub fn from_env() -> DestinationOptions {
        DestinationOptions::from_lookup(|name| std::env::var(name).ok())
    }

    /// Options from environment variables looked up with `lookup` (empty
    /// values count as unset):
    ///
    /// | variable | sets |
    /// | --- | --- |
    /// | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` | [`S3Credentials`] |
    /// | `AWS_REGION`, else `AWS_DEFAULT_REGION` | `s3_region` |
    /// | `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL` | `s3_endpoint` |
    /// | `AWS_S3_FORCE_PATH_STYLE=true`, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true` | `s3_path_style` |
    /// | `AZURE_STORAGE_ACCOUNT` (`_NAME`) | the Azure account |
    /// | `AZURE_STORAGE_KEY`, `AZURE_STORAGE_ACCESS_KEY`, `AZURE_STORAGE_ACCOUNT_KEY` | the account key |
    /// | `AZURE_STORAGE_CONNECTION_STRING` | the connection string |
    /// | `AZURE_STORAGE_SAS_TOKEN` | the SAS token |
    /// | `AZURE_STORAGE_BLOB_ENDPOINT` | `azure_endpoint` |
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> DestinationOptions {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| lookup(n).filter(|v| !v.is_empty()))
        };
        let flag = |name: &str| get(&[name]).map(|v| parse_bool(&v));
        let s3_path_style = match (
            flag("AWS_S3_FORCE_PATH_STYLE"),
            flag("AWS_VIRTUAL_HOSTED_STYLE_REQUEST"),
        ) {
            (Some(true), _) => Some(true),
            (_, Some(true)) => Some(false),
            _ => None,
        };
        DestinationOptions {
            s3_endpoint: get(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]),
            s3_path_style,
            s3_region: get(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
            s3_credentials: S3Credentials {
                access_key_id: get(&["AWS_ACCESS_KEY_ID"]),
                secret_access_key: get(&["AWS_SECRET_ACCESS_KEY"]).map(Secret::new),
                session_token: get(&["AWS_SESSION_TOKEN"]).map(Secret::new),
            },
            azure_endpoint: get(&["AZURE_STORAGE_BLOB_ENDPOINT"]),
            azure_credentials: AzureCredentials {
                account: get(&["AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"]),
                access_key: get(&[
                    "AZURE_STORAGE_KEY",
                    "AZURE_STORAGE_ACCESS_KEY",
                    "AZURE_STORAGE_ACCOUNT_KEY",
                ])
                .map(Secret::new),
                connection_string: get(&["AZURE_STORAGE_CONNECTION_STRING"]).map(Secret::new),
                sas_token: get(&["AZURE_STORAGE_SAS_TOKEN"]).map(Secret::new),
            },
            part_size: None,
        }
    }

    /// Every secret these options hold, to scrub from error messages.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let s3 = &self.s3_credentials;
        let az = &self.azure_credentials;
        [
            &s3.secret_access_key,
            &s3.session_token,
            &az.access_key,
            &az.connection_string,
            &az.sas_token,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
    }
}

fn parse_bool(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn reads_the_usual_variables() {
        let o = DestinationOptions::from_lookup(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA1"),
            ("AWS_SECRET_ACCESS_KEY", "topsecret"),
            ("AWS_SESSION_TOKEN", ""),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_S3_FORCE_PATH_STYLE", "true"),
            ("AZURE_STORAGE_ACCOUNT", "acct"),
            ("AZURE_STORAGE_KEY", "a2V5"),
            ("AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=abc"),
        ]));
        assert_eq!(o.s3_credentials.access_key_id.as_deref(), Some("AKIA1"));
        assert_eq!(
            o.s3_credentials
                .secret_access_key
                .as_ref()
                .map(|s| s.expose()),
            Some("topsecret")
        );
        assert!(o.s3_credentials.session_token.is_none(), "empty is unset");
        assert_eq!(o.s3_region.as_deref(), Some("eu-west-1"));
        assert_eq!(o.s3_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(o.s3_path_style, Some(true));
        assert_eq!(o.azure_credentials.account.as_deref(), Some("acct"));
        let debug = format!("{o:?}");
        assert!(
            !debug.contains("topsecret") && !debug.contains("a2V5") && !debug.contains("sig=abc")
        );
        let mut secrets = o.secrets();
        secrets.sort();
        assert_eq!(secrets, ["a2V5", "sv=1&sig=abc", "topsecret"]);
    }

    #[test]
    fn virtual_hosted_and_defaults() {
        let o = DestinationOptions::from_lookup(env(&[("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "1")]));
        assert_eq!(o.s3_path_style, Some(false));
        let o = DestinationOptions::from_lookup(env(&[]));
        assert_eq!(o.s3_path_style, None);
        assert!(o.secrets().is_empty());
    }
}
