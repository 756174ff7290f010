//! The `n8n-credentials` hook, run before anything is written: every row of
//! n8n's `credentials_entity` must decrypt ([`n8n_cipher`](super::n8n_cipher))
//! to JSON with the instance's encryption key — found where n8n looks, in
//! its order: `N8N_ENCRYPTION_KEY` from the environment, else the file named
//! by `N8N_ENCRYPTION_KEY_FILE` (a Docker or Kubernetes secret), else the
//! `encryptionKey` of the `config` file in the data directory — or n8n on
//! PostgreSQL could not use them. The check reads
//! the source inside the run's snapshot; the key is held as a [`Secret`] and
//! never shown, only where it was found.

use super::n8n_cipher::{CredentialCipher, DecryptError};
use crate::error::{MigrateError, MigrateErrorKind};
use pgharbor_conn::Secret;
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde::{Serialize, Serializer};
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The environment variable n8n reads its encryption key from.
pub const KEY_ENV: &str = "N8N_ENCRYPTION_KEY";
/// The environment variable naming a file that holds the key, read when
/// [`KEY_ENV`] is not in the environment.
pub const KEY_FILE_ENV: &str = "N8N_ENCRYPTION_KEY_FILE";
/// The table holding n8n's encrypted credentials.
pub const TABLE: &str = "credentials_entity";
/// Failed credentials named in a refusal; the rest are counted.
const NAMED_FAILURES: usize = 10;
/// A `config` file larger than this is not n8n's.
const CONFIG_LIMIT: u64 = 1 << 20;
/// A key file larger than this does not hold a key.
const KEY_FILE_LIMIT: u64 = 64 << 10;

/// Where the encryption key was found (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `N8N_ENCRYPTION_KEY` in pgharbor's environment.
    Environment,
    /// The file at this path, named by `N8N_ENCRYPTION_KEY_FILE`.
    KeyFile(PathBuf),
    /// The `encryptionKey` of n8n's `config` file at this path.
    ConfigFile(PathBuf),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Environment => f.write_str(KEY_ENV),
            KeyOrigin::KeyFile(path) => write!(f, "{KEY_FILE_ENV}'s {}", path.display()),
            KeyOrigin::ConfigFile(path) => write!(f, "the encryptionKey in {}", path.display()),
        }
    }
}

impl KeyOrigin {
    /// The variable giving the key (the config file's is [`KEY_ENV`]'s place).
    fn variable(&self) -> &'static str {
        match self {
            KeyOrigin::KeyFile(_) => KEY_FILE_ENV,
            KeyOrigin::Environment | KeyOrigin::ConfigFile(_) => KEY_ENV,
        }
    }
}

/// In JSON: `"N8N_ENCRYPTION_KEY"`, or the key file's or config file's path.
impl Serialize for KeyOrigin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            KeyOrigin::Environment => serializer.serialize_str(KEY_ENV),
            KeyOrigin::KeyFile(path) | KeyOrigin::ConfigFile(path) => {
                serializer.collect_str(&path.display())
            }
        }
    }
}

/// Where n8n looks for its key: the values of [`KEY_ENV`] and
/// [`KEY_FILE_ENV`] (`None` when not in the environment) and the path of
/// its `config` file.
#[derive(Debug, Clone)]
pub struct KeySources {
    /// The value of `N8N_ENCRYPTION_KEY`, if it is in the environment.
    pub env: Option<OsString>,
    /// The value of `N8N_ENCRYPTION_KEY_FILE`, if it is in the environment.
    pub key_file: Option<OsString>,
    /// n8n's settings file in the data directory.
    pub config: PathBuf,
}

impl KeySources {
    /// The two variables from pgharbor's environment, and `config`.
    pub fn from_environment(config: PathBuf) -> Self {
        KeySources {
            env: std::env::var_os(KEY_ENV),
            key_file: std::env::var_os(KEY_FILE_ENV),
            config,
        }
    }
}

/// The instance's encryption key and where it was found.
#[derive(Debug)]
pub struct InstanceKey {
    key: Secret,
    /// Where it was found.
    pub origin: KeyOrigin,
    /// The `config` file holding another key than `N8N_ENCRYPTION_KEY`'s
    /// (or the key file's), which n8n refuses to start with ("Mismatching
    /// encryption keys").
    pub other_key_in: Option<PathBuf>,
}

/// What the check found: every credential decrypted.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialsCheck {
    /// The credentials that decrypt to JSON (all of them).
    pub decrypted: u64,
    /// Where the key was found; `None` when there were no credentials.
    pub key_from: Option<KeyOrigin>,
    /// The `config` file holding another key than `N8N_ENCRYPTION_KEY`'s.
    #[serde(skip)]
    pub other_key_in: Option<PathBuf>,
}

impl CredentialsCheck {
    /// The sentence for the end of the run.
    pub fn sentence(&self) -> String {
        let mismatch = match (&self.other_key_in, &self.key_from) {
            (Some(config), Some(origin)) => format!(" {}", mismatch(config, origin)),
            _ => String::new(),
        };
        let checked = match (&self.key_from, self.decrypted) {
            (Some(origin), 1) => {
                format!("1 credential decrypts with this instance's key ({origin}).")
            }
            (Some(origin), n) => {
                format!("{n} credentials decrypt with this instance's key ({origin}).")
            }
            (None, _) => format!("There are no credentials to decrypt ({TABLE} is empty)."),
        };
        format!("{checked}{mismatch}")
    }
}

/// What to do when `config` holds another key than the one from `origin`
/// (a variable), which decrypts every credential.
fn mismatch(config: &Path, origin: &KeyOrigin) -> String {
    let variable = origin.variable();
    format!(
        "The encryptionKey in {} is not {variable}'s, and n8n refuses to start with two different keys (\"Mismatching encryption keys\"): make them the same, or delete that file (n8n writes it again from {variable}).",
        config.display()
    )
}

/// The key n8n would use, in its order. `N8N_ENCRYPTION_KEY` when it is
/// in the environment (even empty, as in n8n: then the file it names is not
/// read); else the file `N8N_ENCRYPTION_KEY_FILE` names, when set. Either
/// value as n8n takes it ([`as_n8n_takes`]); one that is empty then leaves
/// the key to the `encryptionKey` in `config`. `Ok(None)` when none has one.
/// A key file that cannot be read, or a `config` that exists but cannot be
/// read as n8n's settings, is an error naming the file (never its content).
pub fn find_key(sources: &KeySources) -> Result<Option<InstanceKey>, MigrateError> {
    let given = match (&sources.env, &sources.key_file) {
        (Some(value), _) => Some((env_key(value)?, KeyOrigin::Environment)),
        (None, Some(path)) if !path.is_empty() => {
            let path = PathBuf::from(path);
            Some((key_file(&path)?, KeyOrigin::KeyFile(path)))
        }
        _ => None,
    };
    let config = &sources.config;
    if let Some((key, origin)) = given.filter(|(key, _)| !key.is_empty()) {
        // n8n compares the two; a config it cannot read is its own error, not this check's.
        let other_key_in = match config_key(config) {
            Ok(Some(in_file)) if in_file.expose() != key => Some(config.to_path_buf()),
            _ => None,
        };
        return Ok(Some(InstanceKey {
            key: Secret::new(key),
            origin,
            other_key_in,
        }));
    }
    let Some(key) = config_key(config)? else {
        return Ok(None);
    };
    Ok(Some(InstanceKey {
        key,
        origin: KeyOrigin::ConfigFile(config.to_path_buf()),
        other_key_in: None,
    }))
}

/// `N8N_ENCRYPTION_KEY`'s value as n8n takes it.
fn env_key(value: &OsString) -> Result<String, MigrateError> {
    let value = value.to_str().ok_or_else(|| {
        refusal(format!(
            "{KEY_ENV} is not valid UTF-8; set it to the key this n8n instance runs with"
        ))
    })?;
    Ok(as_n8n_takes(value).to_string())
}

/// The content of the key file at `path`, as n8n takes it.
fn key_file(path: &Path) -> Result<String, MigrateError> {
    let unusable = |why: String| {
        refusal(format!(
            "{KEY_FILE_ENV} names {}, which {why}; make it the file holding the key this n8n instance runs with (or set {KEY_ENV}); nothing was written",
            path.display()
        ))
    };
    let mut content = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(KEY_FILE_LIMIT + 1).read_to_end(&mut content))
        .map_err(|e| unusable(format!("cannot be read ({e})")))?;
    if content.len() as u64 > KEY_FILE_LIMIT {
        return Err(unusable(format!(
            "is larger than {KEY_FILE_LIMIT} bytes, too large for a key"
        )));
    }
    let text =
        String::from_utf8(content).map_err(|_| unusable("is not valid UTF-8 text".to_string()))?;
    Ok(as_n8n_takes(&text).to_string())
}

/// A key as n8n takes it from `N8N_ENCRYPTION_KEY` or the key file (read
/// verbatim; n8n warns of leading or trailing whitespace in the file): like
/// every string setting (`@n8n/config`), without surrounding whitespace,
/// then without one pair of matching quotes around a single line.
fn as_n8n_takes(value: &str) -> &str {
    let trimmed = value.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let quoted =
        |quote: char| trimmed.len() >= 2 && trimmed.starts_with(quote) && trimmed.ends_with(quote);
    let inner = || &trimmed[1..trimmed.len() - 1];
    let line_break = |c: char| matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}');
    if (quoted('"') || quoted('\'')) && !inner().contains(line_break) {
        inner()
    } else {
        trimmed
    }
}

/// The `encryptionKey` of n8n's `config` file, if the file exists and has one.
fn config_key(config: &Path) -> Result<Option<Secret>, MigrateError> {
    let unreadable = |why: String| {
        refusal(format!(
            "{}: {why}; n8n's settings file holds {{\"encryptionKey\": \"…\"}} (or set {KEY_ENV})",
            config.display()
        ))
    };
    let text = match std::fs::metadata(config) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Ok(meta) if meta.len() > CONFIG_LIMIT => {
            return Err(unreadable(format!(
                "is {} bytes, too large for n8n's settings file",
                meta.len()
            )))
        }
        _ => std::fs::read_to_string(config)
            .map_err(|e| unreadable(format!("cannot be read ({})", e.kind())))?,
    };
    let settings: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        unreadable(format!(
            "is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    Ok(settings
        .get("encryptionKey")
        .and_then(serde_json::Value::as_str)
        .filter(|key| !key.is_empty())
        .map(Secret::new))
}

/// A credential that does not decrypt.
struct Failed {
    id: String,
    name: String,
    why: DecryptError,
}

/// Check, in `source` (a connection inside the run's snapshot), that every
/// credential decrypts to JSON with the key from `sources`. Refused
/// (usage error, exit 2, nothing written) when one does not, naming them, or
/// when there are credentials and no key, naming where it looked.
pub fn check(source: &Connection, sources: &KeySources) -> Result<CredentialsCheck, MigrateError> {
    let rows: u64 = source
        .query_row(&format!("SELECT count(*) FROM \"{TABLE}\""), [], |r| {
            r.get(0)
        })
        .map_err(|e| read_error(e, "counting"))?;
    if rows == 0 {
        return Ok(CredentialsCheck {
            decrypted: 0,
            key_from: None,
            other_key_in: None,
        });
    }
    let Some(key) = find_key(sources)? else {
        let config = &sources.config;
        return Err(refusal(format!(
            "n8n's {rows} credentials are encrypted with the instance's encryption key, and pgharbor found none to check them with: {KEY_ENV} is not set and {} {}. Set {KEY_ENV} to the key this n8n instance runs with (its container's {KEY_ENV}, or the encryptionKey in its data directory's config file) and run again; nothing was written",
            config.display(),
            if config.exists() { "has no encryptionKey" } else { "does not exist" }
        )));
    };
    let cipher = CredentialCipher::new(key.key.expose());
    let (failed, count) = failures(source, &cipher)?;
    if count > 0 {
        return Err(refusal(refused_text(&failed, count, rows, &key)));
    }
    Ok(CredentialsCheck {
        decrypted: rows,
        key_from: Some(key.origin),
        other_key_in: key.other_key_in,
    })
}

/// The first [`NAMED_FAILURES`] credentials that do not decrypt, in id
/// order, and how many do not.
fn failures(
    source: &Connection,
    cipher: &CredentialCipher,
) -> Result<(Vec<Failed>, u64), MigrateError> {
    let mut statement = source
        .prepare(&format!(
            "SELECT id, name, data FROM \"{TABLE}\" ORDER BY id"
        ))
        .map_err(|e| read_error(e, "reading"))?;
    let mut rows = statement.query([]).map_err(|e| read_error(e, "reading"))?;
    let mut failed = Vec::new();
    let mut count = 0u64;
    while let Some(row) = rows.next().map_err(|e| read_error(e, "reading"))? {
        let data = row.get_ref(2).map_err(|e| read_error(e, "reading"))?;
        let outcome = match data {
            ValueRef::Text(text) => std::str::from_utf8(text)
                .map_err(|_| DecryptError::NotBase64)
                .and_then(|text| cipher.check(text)),
            _ => Err(DecryptError::NotBase64),
        };
        let Err(why) = outcome else { continue };
        count += 1;
        if failed.len() < NAMED_FAILURES {
            failed.push(Failed {
                id: shown(row.get_ref(0).map_err(|e| read_error(e, "reading"))?),
                name: shown(row.get_ref(1).map_err(|e| read_error(e, "reading"))?),
                why,
            });
        }
    }
    Ok((failed, count))
}

/// An id or name as text.
fn shown(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(x) => x.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    }
}

/// The refusal when `count` of `rows` credentials do not decrypt with `key`.
fn refused_text(failed: &[Failed], count: u64, rows: u64, key: &InstanceKey) -> String {
    let one_reason = failed.windows(2).all(|pair| pair[0].why == pair[1].why);
    let mut named: Vec<String> = failed
        .iter()
        .map(|f| match one_reason {
            true => format!("{} {:?}", f.id, f.name),
            false => format!("{} {:?} ({})", f.id, f.name, f.why),
        })
        .collect();
    if count > failed.len() as u64 {
        named.push(format!("and {} more", count - failed.len() as u64));
    }
    let reason = match (one_reason, failed.first()) {
        (true, Some(first)) if failed.len() > 1 => format!(" (each named: {})", first.why),
        (true, Some(first)) => format!(" ({})", first.why),
        _ => String::new(),
    };
    let what_to_do = if count < rows {
        let others = match rows - count {
            1 => "The other one decrypts".to_string(),
            n => format!("The other {n} decrypt"),
        };
        format!("{others}, so the key is likely right and these values were damaged: repair or delete these credentials in n8n (on SQLite), or, if the instance runs with another key, set {KEY_ENV} to it, and run again")
    } else {
        format!("Set {KEY_ENV} to the encryption key this n8n instance runs with (the {KEY_ENV} of its container or service, else the encryptionKey in the config file of its data directory) and run again")
    };
    let other_key = match &key.other_key_in {
        Some(config) => format!(
            " {} holds another encryptionKey: if n8n runs without {variable}, that is its key (unset {variable} for pgharbor).",
            config.display(),
            variable = key.origin.variable()
        ),
        None => String::new(),
    };
    let verb = if count == 1 { "does" } else { "do" };
    format!(
        "{count} of n8n's {rows} credentials {verb} not decrypt with {}: {}{reason}. n8n on PostgreSQL could not use them. {what_to_do}; nothing was written.{other_key}",
        key.origin,
        named.join(", ")
    )
}

fn refusal(message: String) -> MigrateError {
    MigrateError::new(MigrateErrorKind::Usage, message)
}

fn read_error(error: rusqlite::Error, doing: &str) -> MigrateError {
    MigrateError::new(
        MigrateErrorKind::Source,
        format!("{doing} n8n's credentials ({TABLE})"),
    )
    .caused_by(error)
}

#[cfg(test)]
mod tests {
    use super::super::n8n_cipher::tests::{FIXTURE_KEY, FIXTURE_ROW};
    use super::*;
    use crate::error::explain;

    fn config_with(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("config");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The key's places with `env` as `N8N_ENCRYPTION_KEY` and no key file.
    fn sources(env: Option<&str>, config: &Path) -> KeySources {
        KeySources {
            env: env.map(OsString::from),
            key_file: None,
            config: config.to_path_buf(),
        }
    }

    /// A 0600 key file holding `content` in `dir`.
    fn key_file_with(dir: &Path, content: &str) -> PathBuf {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join("n8n-key");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, content.as_bytes()).unwrap();
        path
    }

    /// An in-memory `credentials_entity` with `rows` (id, name, data).
    fn credentials(rows: &[(&str, &str, &str)]) -> Connection {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE credentials_entity (id varchar(36) PRIMARY KEY, name varchar(128), data text)",
        )
        .unwrap();
        for row in rows {
            db.execute(
                "INSERT INTO credentials_entity VALUES (?1, ?2, ?3)",
                [row.0, row.1, row.2],
            )
            .unwrap();
        }
        db
    }

    #[test]
    fn the_environment_wins_over_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(dir.path(), r#"{"encryptionKey": "from-the-file"}"#);
        let key = find_key(&sources(Some("from-the-env"), &config))
            .unwrap()
            .unwrap();
        assert_eq!(key.origin, KeyOrigin::Environment);
        assert_eq!(key.key.expose(), "from-the-env");
        assert_eq!(
            key.other_key_in,
            Some(config.clone()),
            "n8n would refuse the two keys"
        );
        let same = find_key(&sources(Some("from-the-file"), &config))
            .unwrap()
            .unwrap();
        assert_eq!(same.other_key_in, None);
        let key = find_key(&sources(Some(""), &config)).unwrap().unwrap();
        assert_eq!(key.origin, KeyOrigin::ConfigFile(config.clone()));
        assert_eq!(key.key.expose(), "from-the-file");
        assert!(
            !format!("{key:?}").contains("from-the-file"),
            "Debug shows the key"
        );
    }

    #[test]
    fn a_config_without_a_key_is_no_key_and_a_broken_one_is_named_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        assert!(find_key(&sources(None, &dir.path().join("config")))
            .unwrap()
            .is_none());
        let config = config_with(dir.path(), r#"{"tunnelSubdomain": "x"}"#);
        assert!(find_key(&sources(None, &config)).unwrap().is_none());
        let config = config_with(dir.path(), "{\"encryptionKey\": \"half-a-secret");
        let error = explain(&find_key(&sources(None, &config)).unwrap_err());
        assert!(
            error.contains(&config.display().to_string()) && error.contains("is not JSON"),
            "{error}"
        );
        assert!(!error.contains("half-a-secret"), "{error}");
    }

    #[test]
    fn every_credential_decrypting_is_counted_with_where_the_key_was_found() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(
            dir.path(),
            &format!(r#"{{"encryptionKey": "{FIXTURE_KEY}"}}"#),
        );
        let db = credentials(&[("a1", "Slack", FIXTURE_ROW), ("b2", "Mail", FIXTURE_ROW)]);
        let checked = check(&db, &sources(None, &config)).unwrap();
        assert_eq!(checked.decrypted, 2);
        assert_eq!(
            checked.sentence(),
            format!(
                "2 credentials decrypt with this instance's key (the encryptionKey in {}).",
                config.display()
            )
        );
        assert_eq!(
            serde_json::to_value(&checked).unwrap(),
            serde_json::json!({"decrypted": 2, "key_from": config.display().to_string()})
        );
    }

    #[test]
    fn a_damaged_credential_is_refused_naming_it_alone() {
        let damaged = FIXTURE_ROW.replace('y', "z");
        let db = credentials(&[
            ("a1", "Slack", FIXTURE_ROW),
            ("b2", "Mail \"work\"", damaged.as_str()),
            ("c3", "Jira", FIXTURE_ROW),
        ]);
        let error = check(
            &db,
            &sources(Some(FIXTURE_KEY), Path::new("/nowhere/config")),
        )
        .unwrap_err();
        assert_eq!(error.kind(), MigrateErrorKind::Usage);
        let text = explain(&error);
        assert!(
            text.starts_with("1 of n8n's 3 credentials does not decrypt with N8N_ENCRYPTION_KEY: b2 \"Mail \\\"work\\\"\" ("),
            "{text}"
        );
        assert!(!text.contains("a1") && !text.contains("c3"), "{text}");
        assert!(
            text.contains("The other 2 decrypt") && text.ends_with("nothing was written."),
            "{text}"
        );
        assert!(!text.contains(FIXTURE_KEY), "{text}");
    }

    #[test]
    fn a_wrong_key_names_ten_credentials_and_counts_the_rest() {
        let rows: Vec<(String, String)> = (0..12)
            .map(|i| (format!("id{i:02}"), format!("cred {i}")))
            .collect();
        let db = credentials(
            &rows
                .iter()
                .map(|(id, name)| (id.as_str(), name.as_str(), FIXTURE_ROW))
                .collect::<Vec<_>>(),
        );
        let text = explain(
            &check(&db, &sources(Some("the-wrong-key"), Path::new("/x/config"))).unwrap_err(),
        );
        assert!(text.starts_with("12 of n8n's 12 credentials do not decrypt with N8N_ENCRYPTION_KEY: id00 \"cred 0\", id01 \"cred 1\", "), "{text}");
        assert!(
            text.contains("id09 \"cred 9\"") && !text.contains("id10"),
            "{text}"
        );
        assert!(text.contains(", and 2 more (each named: "), "{text}");
        assert!(
            text.contains(
                "Set N8N_ENCRYPTION_KEY to the encryption key this n8n instance runs with"
            ),
            "{text}"
        );
        assert!(!text.contains("the-wrong-key"), "{text}");
    }

    #[test]
    fn no_key_is_refused_naming_where_pgharbor_looked_unless_there_are_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let empty = credentials(&[]);
        let checked = check(&empty, &sources(None, &config)).unwrap();
        assert_eq!((checked.decrypted, checked.key_from), (0, None));
        let db = credentials(&[("a1", "Slack", FIXTURE_ROW)]);
        let error = check(&db, &sources(None, &config)).unwrap_err();
        assert_eq!(error.kind(), MigrateErrorKind::Usage);
        let text = explain(&error);
        assert!(
            text.contains(&format!(
                "N8N_ENCRYPTION_KEY is not set and {} does not exist",
                config.display()
            )),
            "{text}"
        );
    }

    #[test]
    fn the_key_file_comes_after_the_environment_and_before_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(dir.path(), r#"{"encryptionKey": "from-the-config"}"#);
        let file = key_file_with(dir.path(), "from-the-key-file\n");
        let with_file = |env: Option<&str>| KeySources {
            key_file: Some(file.clone().into()),
            ..sources(env, &config)
        };
        let key = find_key(&with_file(Some("from-the-env"))).unwrap().unwrap();
        assert_eq!(key.origin, KeyOrigin::Environment);
        assert_eq!(key.key.expose(), "from-the-env");
        let key = find_key(&with_file(None)).unwrap().unwrap();
        assert_eq!(key.origin, KeyOrigin::KeyFile(file.clone()));
        assert_eq!(
            key.key.expose(),
            "from-the-key-file",
            "n8n trims the file's newline"
        );
        assert_eq!(
            key.other_key_in,
            Some(config.clone()),
            "n8n would refuse the two keys"
        );
        let key = find_key(&with_file(Some(""))).unwrap().unwrap();
        assert_eq!(
            key.origin,
            KeyOrigin::ConfigFile(config.clone()),
            "an empty N8N_ENCRYPTION_KEY is in the environment: n8n does not read the file"
        );
        let unnamed = KeySources {
            key_file: Some("".into()),
            ..sources(None, &config)
        };
        assert_eq!(
            find_key(&unnamed).unwrap().unwrap().origin,
            KeyOrigin::ConfigFile(config.clone())
        );
        assert_eq!(
            serde_json::to_value(KeyOrigin::KeyFile(file.clone())).unwrap(),
            serde_json::json!(file.display().to_string())
        );
    }

    #[test]
    fn keys_are_taken_as_n8n_takes_them_trimmed_and_unquoted_and_empty_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_with(dir.path(), r#"{"encryptionKey": "from-the-config"}"#);
        for (given, taken) in [
            ("  spaced\t\n", "spaced"),
            ("\"quoted\"\n", "quoted"),
            ("'single'", "single"),
            ("\"two\nlines\"", "\"two\nlines\""),
            ("\"unmatched'", "\"unmatched'"),
            ("\"", "\""),
        ] {
            assert_eq!(as_n8n_takes(given), taken, "{given:?}");
            let key = find_key(&sources(Some(given), &config)).unwrap().unwrap();
            assert_eq!(key.key.expose(), taken, "{given:?}");
        }
        let blank = KeySources {
            key_file: Some(key_file_with(dir.path(), " \n").into()),
            ..sources(None, &config)
        };
        let key = find_key(&blank).unwrap().unwrap();
        assert_eq!(key.origin, KeyOrigin::ConfigFile(config));
    }

    #[test]
    fn a_key_file_that_cannot_be_read_is_refused_naming_it_and_the_os_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-secret");
        let error = find_key(&KeySources {
            key_file: Some(missing.clone().into()),
            ..sources(None, &dir.path().join("config"))
        })
        .unwrap_err();
        assert_eq!(error.kind(), MigrateErrorKind::Usage);
        let text = explain(&error);
        assert!(
            text.starts_with(&format!(
                "N8N_ENCRYPTION_KEY_FILE names {}, which cannot be read (No such file or directory (os error 2))",
                missing.display()
            )),
            "{text}"
        );
        let error = find_key(&KeySources {
            key_file: Some(dir.path().into()),
            ..sources(None, &dir.path().join("config"))
        })
        .unwrap_err();
        assert!(
            explain(&error).contains("Is a directory (os error 21)"),
            "{}",
            explain(&error)
        );
    }

    #[test]
    fn a_wrong_key_file_is_named_in_the_refusal_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = key_file_with(dir.path(), "a-wrong-key-in-a-file\n");
        let config = config_with(
            dir.path(),
            &format!(r#"{{"encryptionKey": "{FIXTURE_KEY}"}}"#),
        );
        let db = credentials(&[("a1", "Slack", FIXTURE_ROW)]);
        let text = explain(
            &check(
                &db,
                &KeySources {
                    key_file: Some(file.clone().into()),
                    ..sources(None, &config)
                },
            )
            .unwrap_err(),
        );
        assert!(
            text.starts_with(&format!(
                "1 of n8n's 1 credentials does not decrypt with N8N_ENCRYPTION_KEY_FILE's {}: a1 \"Slack\"",
                file.display()
            )),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                "{} holds another encryptionKey: if n8n runs without N8N_ENCRYPTION_KEY_FILE, that is its key (unset N8N_ENCRYPTION_KEY_FILE for pgharbor).",
                config.display()
            )),
            "{text}"
        );
        assert!(
            !text.contains("a-wrong-key-in-a-file") && !text.contains(FIXTURE_KEY),
            "{text}"
        );
    }
}
