//! Generated passwords ([`generate_password`]) and files that hold secrets
//! ([`write_secret_file`]).
//!
//! Passwords come from the operating system's CSPRNG (`getrandom`), each
//! character chosen uniformly from the alphabet by rejection sampling (no
//! modulo bias), and the whole password is drawn again until it has at least
//! one character of every enabled class. The result is uniform over all
//! passwords of that length and alphabet that contain every class.
//!
//! The default alphabet is `A-Z a-z 0-9` plus [`DEFAULT_SYMBOLS`] (`-._~`),
//! the four characters RFC 3986 calls unreserved: they never need
//! percent-encoding in a URL, need no quoting in a libpq `key=value` string,
//! a `.pgpass` line, a shell word (when not first), YAML, `.env` files or
//! Docker Compose, and they are none of the characters managed services
//! refuse (AWS RDS and Azure Database for PostgreSQL reject `/`, `@`, `"`,
//! `'` and the space). The password still has all four classes (Azure asks
//! for three of four, length at least 8; RDS for at least 8 printable ASCII
//! characters). The default length, 24, gives about 145 bits of entropy.

use crate::secret::Secret;
use std::fmt;
use std::io::Write as _;
use std::path::Path;

/// The default password length.
pub const DEFAULT_PASSWORD_LENGTH: usize = 24;

/// The shortest password [`generate_password`] makes.
pub const MIN_PASSWORD_LENGTH: usize = 16;

/// The longest password [`generate_password`] makes (PostgreSQL itself has
/// no limit, but some managed services stop at 128 characters).
pub const MAX_PASSWORD_LENGTH: usize = 1024;

/// The default symbols: RFC 3986's unreserved punctuation, which needs no
/// encoding or quoting anywhere a connection string goes.
pub const DEFAULT_SYMBOLS: &str = "-._~";

/// Characters managed services reject in passwords (AWS RDS: `/ @ " '` and
/// the space; Azure follows the same rule for portability). `--symbols` may
/// still include them; [`PasswordRules::notes`] then says so.
pub const SERVICE_REJECTED_SYMBOLS: &str = "/@\"' ";

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";

/// What a generated password is made of.
///
/// ```
/// use pgharbor_conn::{generate_password, PasswordRules};
///
/// let password = generate_password(&PasswordRules::default()).unwrap();
/// assert_eq!(password.expose().chars().count(), 24);
///
/// let rules = PasswordRules { length: 32, symbols: String::new() };
/// let password = generate_password(&rules).unwrap();
/// assert!(password.expose().chars().all(|c| c.is_ascii_alphanumeric()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRules {
    /// Number of characters, from [`MIN_PASSWORD_LENGTH`] to
    /// [`MAX_PASSWORD_LENGTH`].
    pub length: usize,
    /// The symbol class: printable ASCII punctuation (duplicates are
    /// ignored). Empty means no symbols (letters and digits only).
    pub symbols: String,
}

impl Default for PasswordRules {
    /// [`DEFAULT_PASSWORD_LENGTH`] characters with [`DEFAULT_SYMBOLS`].
    fn default() -> Self {
        PasswordRules {
            length: DEFAULT_PASSWORD_LENGTH,
            symbols: DEFAULT_SYMBOLS.to_owned(),
        }
    }
}

/// Why a password could not be generated or written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenerateError {
    /// The length is below [`MIN_PASSWORD_LENGTH`].
    TooShort {
        /// The length asked for.
        length: usize,
    },
    /// The length is above [`MAX_PASSWORD_LENGTH`].
    TooLong {
        /// The length asked for.
        length: usize,
    },
    /// A character in the symbol set is not printable ASCII punctuation.
    InvalidSymbol {
        /// The offending character.
        symbol: char,
    },
    /// The operating system's random number generator failed.
    Random(String),
}

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenerateError::TooShort { length } => write!(
                f,
                "a password of {length} characters is too short; use at least {MIN_PASSWORD_LENGTH}"
            ),
            GenerateError::TooLong { length } => write!(
                f,
                "a password of {length} characters is longer than the {MAX_PASSWORD_LENGTH} pgharbor generates"
            ),
            GenerateError::InvalidSymbol { symbol } => write!(
                f,
                "{symbol:?} cannot be a symbol: use printable ASCII punctuation (letters and digits are always included; spaces and control characters are refused)"
            ),
            GenerateError::Random(e) => {
                write!(f, "the operating system's random number generator failed: {e}")
            }
        }
    }
}

impl std::error::Error for GenerateError {}

impl PasswordRules {
    /// The symbol set, validated and without duplicates, in the order given.
    pub fn symbol_chars(&self) -> Result<Vec<char>, GenerateError> {
        let mut out: Vec<char> = Vec::new();
        for c in self.symbols.chars() {
            if !c.is_ascii_punctuation() {
                return Err(GenerateError::InvalidSymbol { symbol: c });
            }
            if !out.contains(&c) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Checks the length and the symbol set.
    pub fn validate(&self) -> Result<(), GenerateError> {
        if self.length < MIN_PASSWORD_LENGTH {
            return Err(GenerateError::TooShort {
                length: self.length,
            });
        }
        if self.length > MAX_PASSWORD_LENGTH {
            return Err(GenerateError::TooLong {
                length: self.length,
            });
        }
        self.symbol_chars().map(|_| ())
    }

    /// The character classes a password must contain: lower case, upper
    /// case, digits and, unless the set is empty, the symbols.
    pub fn classes(&self) -> Result<Vec<Vec<char>>, GenerateError> {
        let mut classes = vec![
            LOWER.chars().collect(),
            UPPER.chars().collect(),
            DIGITS.chars().collect(),
        ];
        let symbols = self.symbol_chars()?;
        if !symbols.is_empty() {
            classes.push(symbols);
        }
        Ok(classes)
    }

    /// Bits of entropy of a password drawn under these rules (a slight
    /// overestimate: passwords missing a class are never produced).
    pub fn entropy_bits(&self) -> f64 {
        let size: usize = self
            .classes()
            .map(|c| c.iter().map(Vec::len).sum())
            .unwrap_or(0);
        self.length as f64 * (size.max(1) as f64).log2()
    }

    /// Remarks on the symbol set that are not errors: characters managed
    /// services reject, or that must be percent-encoded in a URL.
    pub fn notes(&self) -> Vec<String> {
        let Ok(symbols) = self.symbol_chars() else {
            return Vec::new();
        };
        let mut notes = Vec::new();
        let rejected: String = symbols
            .iter()
            .filter(|c| SERVICE_REJECTED_SYMBOLS.contains(**c))
            .collect();
        if !rejected.is_empty() {
            notes.push(format!(
                "symbols refused in passwords by managed services such as AWS RDS and Azure Database for PostgreSQL: {rejected:?}"
            ));
        }
        let encoded: String = symbols
            .iter()
            .filter(|c| !DEFAULT_SYMBOLS.contains(**c))
            .collect();
        if !encoded.is_empty() {
            notes.push(format!(
                "symbols that must be percent-encoded in a connection URL (`pgharbor url build --password-stdin` does it): {encoded:?}"
            ));
        }
        notes
    }
}

/// Fills `buf` from the operating system's CSPRNG.
fn os_random(buf: &mut [u8]) -> Result<(), GenerateError> {
    getrandom::fill(buf).map_err(|e| GenerateError::Random(e.to_string()))
}

/// Generates a password under `rules` from the operating system's CSPRNG.
///
/// Every character is drawn uniformly from the union of the classes, and the
/// draw is repeated until every class appears, so the result is uniform over
/// the passwords that satisfy the rules.
pub fn generate_password(rules: &PasswordRules) -> Result<Secret, GenerateError> {
    generate_with(rules, &mut os_random)
}

/// [`generate_password`] with a given source of random bytes (for tests).
pub(crate) fn generate_with(
    rules: &PasswordRules,
    random: &mut dyn FnMut(&mut [u8]) -> Result<(), GenerateError>,
) -> Result<Secret, GenerateError> {
    rules.validate()?;
    let classes = rules.classes()?;
    let alphabet: Vec<char> = classes.iter().flatten().copied().collect();
    // `alphabet.len()` is at most 26 + 26 + 10 + 32 = 94 < 256, so a byte is
    // enough; bytes at or above the largest multiple of the size are
    // rejected, which removes the modulo bias.
    let n = alphabet.len();
    let limit = 256 - 256 % n;
    let mut buf = [0u8; 256];
    loop {
        let mut password = String::with_capacity(rules.length);
        let mut count = 0;
        while count < rules.length {
            random(&mut buf)?;
            for &b in &buf {
                if (b as usize) < limit {
                    password.push(alphabet[b as usize % n]);
                    count += 1;
                    if count == rules.length {
                        break;
                    }
                }
            }
        }
        buf.fill(0);
        let complete = classes
            .iter()
            .all(|class| password.chars().any(|c| class.contains(&c)));
        let password = Secret::new(password);
        if complete {
            return Ok(password);
        }
        // `password` is dropped (and zeroed) here; draw again.
    }
}

/// Writes `secret` and a newline to a new file at `path`, created with mode
/// `0600` (owner read and write only) from the start, so the secret is never
/// readable by others, not even for a moment.
///
/// An existing file is refused (`ErrorKind::AlreadyExists`) unless
/// `overwrite`; then it is removed first (a symbolic link is removed, not
/// followed) and a new `0600` file takes its place.
pub fn write_secret_file(path: &Path, secret: &Secret, overwrite: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && overwrite => {
            std::fs::remove_file(path)?;
            options.open(path)?
        }
        other => other?,
    };
    let mut contents = Vec::with_capacity(secret.expose().len() + 1);
    contents.extend_from_slice(secret.expose().as_bytes());
    contents.push(b'\n');
    let written = file.write_all(&contents).and_then(|()| file.sync_all());
    contents.fill(0);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_counts(p: &str, symbols: &str) -> [usize; 4] {
        let mut counts = [0; 4];
        for c in p.chars() {
            let i = if c.is_ascii_lowercase() {
                0
            } else if c.is_ascii_uppercase() {
                1
            } else if c.is_ascii_digit() {
                2
            } else {
                assert!(symbols.contains(c), "{c:?} is not in {symbols:?}");
                3
            };
            counts[i] += 1;
        }
        counts
    }

    #[test]
    fn default_password_has_every_class_and_only_unreserved_characters() {
        for _ in 0..200 {
            let p = generate_password(&PasswordRules::default()).unwrap();
            let p = p.expose();
            assert_eq!(p.len(), DEFAULT_PASSWORD_LENGTH);
            assert!(
                class_counts(p, DEFAULT_SYMBOLS).iter().all(|&n| n > 0),
                "{p}"
            );
            assert!(p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)));
            assert!(!p.contains(['/', '@', '"', '\'', ' ', ':', '%', '#', '?', '\\']));
        }
        assert!(PasswordRules::default().entropy_bits() > 140.0);
        assert!(PasswordRules::default().notes().is_empty());
    }

    #[test]
    fn passwords_differ() {
        let a = generate_password(&PasswordRules::default()).unwrap();
        let b = generate_password(&PasswordRules::default()).unwrap();
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn no_symbols_and_custom_symbols() {
        let rules = PasswordRules {
            length: 16,
            symbols: String::new(),
        };
        for _ in 0..100 {
            let p = generate_password(&rules).unwrap();
            let counts = class_counts(p.expose(), "");
            assert!(counts[..3].iter().all(|&n| n > 0) && counts[3] == 0);
        }
        let rules = PasswordRules {
            length: 16,
            symbols: "!!".into(),
        };
        for _ in 0..100 {
            let p = generate_password(&rules).unwrap();
            assert!(class_counts(p.expose(), "!").iter().all(|&n| n > 0));
        }
        let rules = PasswordRules {
            length: 40,
            symbols: "@/".into(),
        };
        assert_eq!(rules.notes().len(), 2, "{:?}", rules.notes());
    }

    #[test]
    fn rules_are_checked() {
        let short = PasswordRules {
            length: 15,
            ..Default::default()
        };
        let e = generate_password(&short).unwrap_err();
        assert_eq!(e, GenerateError::TooShort { length: 15 });
        assert!(e.to_string().contains("at least 16"), "{e}");
        let long = PasswordRules {
            length: MAX_PASSWORD_LENGTH + 1,
            ..Default::default()
        };
        assert!(matches!(
            generate_password(&long),
            Err(GenerateError::TooLong { .. })
        ));
        for bad in ["a", "7", " ", "\t", "é", "-\n"] {
            let rules = PasswordRules {
                length: 20,
                symbols: bad.into(),
            };
            assert!(
                matches!(
                    generate_password(&rules),
                    Err(GenerateError::InvalidSymbol { .. })
                ),
                "{bad:?}"
            );
        }
        let long_ok = PasswordRules {
            length: MAX_PASSWORD_LENGTH,
            ..Default::default()
        };
        assert_eq!(
            generate_password(&long_ok).unwrap().expose().len(),
            MAX_PASSWORD_LENGTH
        );
    }

    #[test]
    fn bytes_above_the_last_full_multiple_are_rejected() {
        // Alphabet of 66: limit = 256 - 256 % 66 = 198. Feed bytes that would
        // be biased (198..=255) and check they are skipped, then a valid run.
        let rules = PasswordRules::default();
        let mut calls = 0;
        let mut source = |buf: &mut [u8]| {
            calls += 1;
            if calls == 1 {
                buf.fill(255);
            } else {
                // lower 'a' (0), upper 'A' (26), digit '0' (52), symbol '-' (62), then 'a'…
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = [0, 26, 52, 62][i % 4] + 66 * ((i / 4) % 3) as u8;
                }
            }
            Ok(())
        };
        let p = generate_with(&rules, &mut source).unwrap();
        assert_eq!(p.expose(), "aA0-".repeat(6));
        assert_eq!(calls, 2);
    }

    #[test]
    fn characters_are_close_to_uniform() {
        // 66 symbols, 200 passwords of 64 characters = 12,800 draws, about
        // 194 per character: each count must fall well within ±50%.
        let rules = PasswordRules {
            length: 64,
            ..Default::default()
        };
        let mut counts = std::collections::HashMap::new();
        for _ in 0..200 {
            for c in generate_password(&rules).unwrap().expose().chars() {
                *counts.entry(c).or_insert(0usize) += 1;
            }
        }
        assert_eq!(counts.len(), 66);
        for (c, n) in counts {
            assert!((97..=291).contains(&n), "{c:?} drawn {n} times");
        }
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_are_0600_and_not_overwritten_by_default() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        let secret = Secret::new("s3cret");
        write_secret_file(&path, &secret, false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "s3cret\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let e = write_secret_file(&path, &Secret::new("other"), false).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "s3cret\n");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_secret_file(&path, &Secret::new("other"), true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "other\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an overwritten file is 0600 too");

        // A symbolic link is replaced, never followed.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert_eq!(
            write_secret_file(&link, &secret, false).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
        write_secret_file(&link, &secret, true).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
