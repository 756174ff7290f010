//! Azure Blob account resolution: account name, key or SAS token, and
//! endpoint, from the options or a connection string.

use pgharbor_conn::Secret;

use crate::error::{ObjstoreError, ObjstoreErrorKind as Kind, Result};
use crate::options::DestinationOptions;

/// Azurite's well-known development account (`UseDevelopmentStorage=true`).
const DEV_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development account key; public, not a secret.
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How requests are authorised.
#[derive(Debug)]
pub(crate) enum AzureAuth {
    /// Shared key: the account key, base64.
    Key(Secret),
    /// A SAS token (query string).
    Sas(Secret),
}

/// Everything needed to reach one storage account.
#[derive(Debug)]
pub(crate) struct AzureAccount {
    pub(crate) name: String,
    pub(crate) auth: AzureAuth,
    /// The blob endpoint; `None` for `https://NAME.blob.core.windows.net`.
    pub(crate) endpoint: Option<String>,
}

impl AzureAccount {
    /// From a connection string when there is one, else from the account,
    /// key and SAS token options. `options.azure_endpoint` wins over a
    /// connection string's `BlobEndpoint`.
    pub(crate) fn resolve(dest: &str, options: &DestinationOptions) -> Result<AzureAccount> {
        let c = &options.azure_credentials;
        let mut account = match &c.connection_string {
            Some(cs) => parse_connection_string(dest, cs.expose())?,
            None => {
                let name = c.account.clone().ok_or_else(|| missing(dest))?;
                let auth = match (&c.access_key, &c.sas_token) {
                    (Some(key), _) => AzureAuth::Key(key.clone()),
                    (None, Some(sas)) => AzureAuth::Sas(sas.clone()),
                    (None, None) => return Err(missing(dest)),
                };
                AzureAccount {
                    name,
                    auth,
                    endpoint: None,
                }
            }
        };
        if let Some(endpoint) = &options.azure_endpoint {
            account.endpoint = Some(endpoint.clone());
        }
        Ok(account)
    }

    /// The secret this account holds, to scrub from messages.
    pub(crate) fn secret(&self) -> String {
        match &self.auth {
            AzureAuth::Key(s) | AzureAuth::Sas(s) => s.expose().to_owned(),
        }
    }
}

fn missing(dest: &str) -> ObjstoreError {
    ObjstoreError::new(
        Kind::Credentials,
        format!(
            "backup destination {dest}: no Azure credentials; set AZURE_STORAGE_ACCOUNT with \
             AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or AZURE_STORAGE_CONNECTION_STRING"
        ),
    )
}

/// Parses `Key=Value;…` (the connection string itself is never echoed).
fn parse_connection_string(dest: &str, cs: &str) -> Result<AzureAccount> {
    let bad = |problem: &str| {
        ObjstoreError::new(
            Kind::Credentials,
            format!("backup destination {dest}: AZURE_STORAGE_CONNECTION_STRING {problem}"),
        )
    };
    let mut fields = Vec::new();
    for part in cs.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad("has a part without '=' (expected Key=Value;Key=Value)"))?;
        fields.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(AzureAccount {
            name: DEV_ACCOUNT.to_owned(),
            auth: AzureAuth::Key(Secret::new(DEV_KEY)),
            endpoint: Some(format!("http://127.0.0.1:10000/{DEV_ACCOUNT}")),
        });
    }
    let auth = match (get("accountkey"), get("sharedaccesssignature")) {
        (Some(key), _) => AzureAuth::Key(Secret::new(key)),
        (None, Some(sas)) => AzureAuth::Sas(Secret::new(sas)),
        (None, None) => return Err(bad("has neither AccountKey nor SharedAccessSignature")),
    };
    let endpoint = get("blobendpoint");
    let name = match get("accountname") {
        Some(name) => name,
        None => endpoint
            .as_deref()
            .and_then(account_from_endpoint)
            .ok_or_else(|| bad("has no AccountName"))?,
    };
    let endpoint = endpoint.or_else(|| {
        let protocol = get("defaultendpointsprotocol").unwrap_or_else(|| "https".to_owned());
        get("endpointsuffix").map(|suffix| format!("{protocol}://{name}.blob.{suffix}"))
    });
    Ok(AzureAccount {
        name,
        auth,
        endpoint,
    })
}

/// `https://NAME.blob.core.windows.net` → `NAME`.
fn account_from_endpoint(endpoint: &str) -> Option<String> {
    let host = endpoint.split_once("://")?.1.split(['/', ':']).next()?;
    let (name, rest) = host.split_once('.')?;
    rest.starts_with("blob.").then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::AzureCredentials;

    fn with_cs(cs: &str) -> DestinationOptions {
        DestinationOptions {
            azure_credentials: AzureCredentials {
                connection_string: Some(Secret::new(cs)),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn connection_strings() {
        let a = AzureAccount::resolve(
            "az://c",
            &with_cs("DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/acct;"),
        )
        .unwrap();
        assert_eq!(a.name, "acct");
        assert_eq!(a.endpoint.as_deref(), Some("http://127.0.0.1:1/acct"));
        assert!(matches!(&a.auth, AzureAuth::Key(k) if k.expose() == "a2V5"));

        let a = AzureAccount::resolve("az://c", &with_cs("UseDevelopmentStorage=true")).unwrap();
        assert_eq!(a.name, DEV_ACCOUNT);

        let a = AzureAccount::resolve(
            "az://c",
            &with_cs(
                "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=1&sig=x",
            ),
        )
        .unwrap();
        assert_eq!(a.name, "acct");
        assert!(matches!(&a.auth, AzureAuth::Sas(s) if s.expose() == "sv=1&sig=x"));

        let a = AzureAccount::resolve(
            "az://c",
            &with_cs("AccountName=acct;AccountKey=k;EndpointSuffix=core.chinacloudapi.cn"),
        )
        .unwrap();
        assert_eq!(
            a.endpoint.as_deref(),
            Some("https://acct.blob.core.chinacloudapi.cn")
        );
    }

    #[test]
    fn bad_connection_strings_do_not_echo_secrets() {
        let e = AzureAccount::resolve("az://c", &with_cs("AccountName=a;SECRETVALUE")).unwrap_err();
        assert!(!e.to_string().contains("SECRETVALUE"), "{e}");
        let e = AzureAccount::resolve("az://c", &with_cs("AccountName=a")).unwrap_err();
        assert!(e
            .to_string()
            .contains("neither AccountKey nor SharedAccessSignature"));
        let e = AzureAccount::resolve("az://c", &DestinationOptions::default()).unwrap_err();
        assert_eq!(e.kind(), Kind::Credentials);
        assert!(e.to_string().contains("AZURE_STORAGE_ACCOUNT"));
    }
}
