//! [`SecretSource`]: where a password in a configuration or plan file comes
//! from.

use crate::secret::Secret;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The largest secret file read (a password, a key or a token; anything
/// bigger is a mistake, e.g. a path to the wrong file).
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Where a secret comes from, as written in a TOML (or any serde) file:
///
/// * `password = "literal"`: the value itself. Allowed, but callers should
///   warn (see [`SecretSource::is_literal`]): the file then holds a secret.
/// * `password = { env = "NAME" }`: the environment variable `NAME`.
/// * `password = { file = "/run/secrets/name" }`: the contents of a file,
///   trailing line breaks removed (Kubernetes and Docker secret mounts).
///
/// [`SecretSource::resolve`] turns it into a [`Secret`]. Errors name the
/// variable or the file, never the value; `Debug` never shows a literal.
///
/// ```
/// use pgharbor_conn::SecretSource;
/// # #[derive(serde::Deserialize)]
/// # struct Plan { password: SecretSource }
/// # fn parse(text: &str) -> Plan { toml::from_str(text).unwrap() }
/// // With a plan struct holding `password: SecretSource`:
/// let plan = parse(r#"password = { env = "APP_DB_PASSWORD" }"#);
/// assert_eq!(plan.password, SecretSource::Env("APP_DB_PASSWORD".into()));
/// assert!(!plan.password.is_literal());
/// ```
///
/// Parsers quote the offending line in their errors (the `toml` crate does):
/// a caller that reports a parse error of a file that may hold literal
/// passwords should print the error's message and position, not the line.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The secret itself, written in the file.
    Literal(Secret),
    /// The name of an environment variable holding the secret.
    Env(String),
    /// A file holding the secret (trailing `\n` / `\r\n` removed).
    File(PathBuf),
}

/// Why a [`SecretSource`] could not be resolved. The message names the
/// variable or file and never contains the secret.
#[derive(Debug)]
#[non_exhaustive]
pub enum SecretSourceError {
    /// The environment variable is not set.
    EnvMissing {
        /// The variable's name.
        name: String,
    },
    /// The environment variable is set but not valid Unicode.
    EnvNotUnicode {
        /// The variable's name.
        name: String,
    },
    /// The file could not be read.
    FileUnreadable {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_SECRET_FILE_BYTES`].
    FileTooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file is not UTF-8 text.
    FileNotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// The secret is empty (after removing trailing line breaks from a file).
    Empty {
        /// Where it came from, e.g. `environment variable DB_PASSWORD`.
        origin: String,
    },
    /// The secret contains a NUL character, which PostgreSQL cannot accept.
    ContainsNul {
        /// Where it came from.
        origin: String,
    },
}

impl fmt::Display for SecretSourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSourceError::EnvMissing { name } => {
                write!(f, "the environment variable {name} is not set")
            }
            SecretSourceError::EnvNotUnicode { name } => {
                write!(f, "the environment variable {name} is not valid Unicode")
            }
            SecretSourceError::FileUnreadable { path, source } => {
                write!(f, "cannot read the secret file {}: {source}", path.display())
            }
            SecretSourceError::FileTooLarge { path } => write!(
                f,
                "the secret file {} is larger than {MAX_SECRET_FILE_BYTES} bytes; is it the right file?",
                path.display()
            ),
            SecretSourceError::FileNotUtf8 { path } => {
                write!(f, "the secret file {} is not UTF-8 text", path.display())
            }
            SecretSourceError::Empty { origin } => write!(f, "the {origin} is empty"),
            SecretSourceError::ContainsNul { origin } => {
                write!(f, "the {origin} contains a NUL character")
            }
        }
    }
}

impl std::error::Error for SecretSourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SecretSourceError::FileUnreadable { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Removes trailing line breaks (`\n`, `\r\n`), as secret mounts and
/// `echo` add one. Other trailing whitespace is part of the secret.
pub(crate) fn trim_line_breaks(s: &str) -> &str {
    s.trim_end_matches(['\n', '\r'])
}

impl SecretSource {
    /// Whether the secret is written in the file itself; callers should warn
    /// that the file now holds a secret and suggest `env` or `file`.
    pub fn is_literal(&self) -> bool {
        matches!(self, SecretSource::Literal(_))
    }

    /// Where the secret comes from, for messages: `a literal value`,
    /// `environment variable NAME`, `secret file PATH`.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Literal(_) => "literal value".to_owned(),
            SecretSource::Env(name) => format!("environment variable {name}"),
            SecretSource::File(path) => format!("secret file {}", path.display()),
        }
    }

    /// Reads the secret: the literal, the process environment, or the file.
    pub fn resolve(&self) -> Result<Secret, SecretSourceError> {
        self.resolve_with(&|name| std::env::var_os(name))
    }

    /// Like [`SecretSource::resolve`], with environment variables looked up
    /// through `env` instead of the process (for tests and callers that
    /// manage their own environment).
    pub fn resolve_with(
        &self,
        env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Secret, SecretSourceError> {
        let secret = match self {
            SecretSource::Literal(s) => s.clone(),
            SecretSource::Env(name) => {
                let value = env(name)
                    .ok_or_else(|| SecretSourceError::EnvMissing { name: name.clone() })?;
                Secret::new(
                    value
                        .into_string()
                        .map_err(|_| SecretSourceError::EnvNotUnicode { name: name.clone() })?,
                )
            }
            SecretSource::File(path) => read_secret_file(path)?,
        };
        if secret.is_empty() {
            return Err(SecretSourceError::Empty {
                origin: self.describe(),
            });
        }
        if secret.expose().contains('\0') {
            return Err(SecretSourceError::ContainsNul {
                origin: self.describe(),
            });
        }
        Ok(secret)
    }
}

fn read_secret_file(path: &Path) -> Result<Secret, SecretSourceError> {
    let unreadable = |source| SecretSourceError::FileUnreadable {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        bytes.fill(0);
        return Err(SecretSourceError::FileTooLarge {
            path: path.to_owned(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let mut bytes = e.into_bytes();
        bytes.fill(0);
        SecretSourceError::FileNotUtf8 {
            path: path.to_owned(),
        }
    })?;
    let secret = Secret::new(text);
    let trimmed = trim_line_breaks(secret.expose());
    if trimmed.len() == secret.expose().len() {
        Ok(secret)
    } else {
        Ok(Secret::new(trimmed))
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Literal(s) => f.debug_tuple("Literal").field(s).finish(),
            SecretSource::Env(name) => f.debug_tuple("Env").field(name).finish(),
            SecretSource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl fmt::Display for SecretSource {
    /// The same words as [`SecretSource::describe`]; never the literal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

const EXPECTING: &str =
    "a password as a string, { env = \"VARIABLE\" } or { file = \"/run/secrets/name\" }";

struct SourceVisitor;

impl SourceVisitor {
    /// Errors for values of the wrong type: they may be a password written
    /// without quotes, so the value is never repeated.
    fn wrong_type<E: de::Error>(what: &str) -> E {
        E::custom(format!(
            "expected {EXPECTING}, found {what} (not shown); quote a literal password"
        ))
    }
}

impl<'de> Visitor<'de> for SourceVisitor {
    type Value = SecretSource;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretSource, E> {
        Ok(SecretSource::Literal(Secret::new(v)))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<SecretSource, E> {
        Ok(SecretSource::Literal(Secret::new(v)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretSource, E> {
        Err(Self::wrong_type("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretSource, E> {
        Err(Self::wrong_type("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretSource, E> {
        Err(Self::wrong_type("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretSource, E> {
        Err(Self::wrong_type("a number"))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<SecretSource, E> {
        Err(Self::wrong_type("bytes"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<SecretSource, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Err(Self::wrong_type("a list"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<SecretSource, E> {
        Err(Self::wrong_type("nothing"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretSource, A::Error> {
        let mut found: Option<SecretSource> = None;
        while let Some(key) = map.next_key::<String>()? {
            let source = match key.as_str() {
                "env" => {
                    let name: String = map.next_value()?;
                    if name.is_empty() || name.contains(['=', '\0']) {
                        return Err(de::Error::custom(format!(
                            "{{ env = {name:?} }} is not a valid environment variable name"
                        )));
                    }
                    SecretSource::Env(name)
                }
                "file" => {
                    let path: PathBuf = map.next_value()?;
                    if path.as_os_str().is_empty() {
                        return Err(de::Error::custom("{ file = \"\" } names no file"));
                    }
                    SecretSource::File(path)
                }
                other => {
                    map.next_value::<IgnoredAny>()?;
                    return Err(de::Error::custom(format!(
                        "unknown key {other:?} in a password source; use {{ env = \"VARIABLE\" }} or {{ file = \"/run/secrets/name\" }}"
                    )));
                }
            };
            if found.replace(source).is_some() {
                return Err(de::Error::custom(
                    "a password source takes exactly one of env or file, not both",
                ));
            }
        }
        found.ok_or_else(|| {
            de::Error::custom(
                "an empty table is not a password source; use { env = \"VARIABLE\" } or { file = \"/run/secrets/name\" }",
            )
        })
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SourceVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    #[derive(Debug, Deserialize)]
    struct Plan {
        password: SecretSource,
    }

    #[derive(Debug, Deserialize)]
    struct Many {
        roles: HashMap<String, SecretSource>,
    }

    fn plan(text: &str) -> Result<SecretSource, String> {
        toml::from_str::<Plan>(text)
            .map(|p| p.password)
            .map_err(|e| e.message().to_owned())
    }

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_three_forms_deserialise_from_toml() {
        let literal = plan(r#"password = "Pw_CANARY_91b7!@#""#).unwrap();
        assert!(literal.is_literal());
        assert_eq!(literal.resolve().unwrap().expose(), "Pw_CANARY_91b7!@#");
        assert!(!format!("{literal:?} {literal}").contains("CANARY"));
        assert_eq!(literal.to_string(), "literal value");

        let env = plan(r#"password = { env = "APP_DB_PASSWORD" }"#).unwrap();
        assert_eq!(env, SecretSource::Env("APP_DB_PASSWORD".into()));
        assert_eq!(env.to_string(), "environment variable APP_DB_PASSWORD");

        let file = plan("[password]\nfile = \"/run/secrets/db\"\n").unwrap();
        assert_eq!(file, SecretSource::File("/run/secrets/db".into()));
        assert!(!file.is_literal());

        let many: Many = toml::from_str(
            "[roles]\napp = { env = \"A\" }\nreader = { file = \"/r\" }\nadmin = \"lit\"\n",
        )
        .unwrap();
        assert_eq!(many.roles.len(), 3);
        assert!(many.roles["admin"].is_literal());
    }

    #[test]
    fn env_sources_resolve_and_name_the_variable_when_missing() {
        let source = SecretSource::Env("DB_PW".into());
        let got = source
            .resolve_with(&env_of(&[("DB_PW", "from env\n")]))
            .unwrap();
        assert_eq!(
            got.expose(),
            "from env\n",
            "env values are taken as they are"
        );

        let e = source.resolve_with(&env_of(&[])).unwrap_err();
        assert!(matches!(e, SecretSourceError::EnvMissing { .. }));
        assert_eq!(e.to_string(), "the environment variable DB_PW is not set");

        let e = source.resolve_with(&env_of(&[("DB_PW", "")])).unwrap_err();
        assert_eq!(e.to_string(), "the environment variable DB_PW is empty");
    }

    #[test]
    fn file_sources_trim_trailing_line_breaks_only() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("plain", "s3cret", "s3cret"),
            ("newline", "s3cret\n", "s3cret"),
            ("crlf", "s3cret\r\n", "s3cret"),
            ("spaces", "  s3 cret \n", "  s3 cret "),
            ("inner", "line1\nline2\n", "line1\nline2"),
        ];
        for (name, contents, expected) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            let got = SecretSource::File(path).resolve().unwrap();
            assert_eq!(got.expose(), expected, "{name}");
        }
    }

    #[test]
    fn file_errors_name_the_file_and_never_the_contents() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = SecretSource::File(missing.clone()).resolve().unwrap_err();
        assert!(matches!(e, SecretSourceError::FileUnreadable { .. }));
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = SecretSource::File(empty.clone()).resolve().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("the secret file {} is empty", empty.display())
        );

        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe, b'C', b'A', b'N']).unwrap();
        let e = SecretSource::File(binary).resolve().unwrap_err();
        assert!(matches!(e, SecretSourceError::FileNotUtf8 { .. }));
        assert!(!e.to_string().contains("CAN"));

        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_SECRET_FILE_BYTES as usize + 1]).unwrap();
        let e = SecretSource::File(big).resolve().unwrap_err();
        assert!(matches!(e, SecretSourceError::FileTooLarge { .. }));

        let nul = dir.path().join("nul");
        std::fs::write(&nul, "a\0b").unwrap();
        let e = SecretSource::File(nul).resolve().unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
        assert!(!format!("{e:?}").contains("a\\0b"));

        let e = SecretSource::File(dir.path().to_owned())
            .resolve()
            .unwrap_err();
        assert!(matches!(e, SecretSourceError::FileUnreadable { .. }), "{e}");
    }

    #[test]
    fn bad_toml_is_explained_without_repeating_values() {
        let e = plan("password = 91357246").unwrap_err();
        assert!(e.contains("quote a literal password"), "{e}");
        assert!(!e.contains("91357246"), "{e}");
        let e = plan("password = true").unwrap_err();
        assert!(e.contains("boolean"), "{e}");
        let e = plan("password = [\"a\"]").unwrap_err();
        assert!(e.contains("list"), "{e}");

        let e = plan(r#"password = { value = "Pw_CANARY_91b7" }"#).unwrap_err();
        assert!(e.contains("unknown key \"value\""), "{e}");
        assert!(!e.contains("CANARY"), "{e}");

        let e = plan(r#"password = { env = "A", file = "/b" }"#).unwrap_err();
        assert!(e.contains("exactly one"), "{e}");
        let e = plan("password = {}").unwrap_err();
        assert!(e.contains("empty table"), "{e}");
        let e = plan(r#"password = { env = "" }"#).unwrap_err();
        assert!(e.contains("not a valid environment variable name"), "{e}");
        let e = plan(r#"password = { file = "" }"#).unwrap_err();
        assert!(e.contains("names no file"), "{e}");
    }
}
