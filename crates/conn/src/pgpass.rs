//! The password file (`~/.pgpass`, `PGPASSFILE`, `passfile=`), read as libpq
//! reads it.

use crate::secret::Secret;
use std::path::Path;

/// One field of a password-file line: `*` or a literal value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Field {
    Any,
    Exact(String),
}

impl Field {
    fn matches(&self, value: &str) -> bool {
        match self {
            Field::Any => true,
            Field::Exact(v) => v == value,
        }
    }
}

/// A parsed line: `hostname:port:database:username:password`.
#[derive(Clone)]
pub(crate) struct PgPassEntry {
    fields: [Field; 4],
    password: Secret,
}

impl std::fmt::Debug for PgPassEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPassEntry")
            .field("fields", &self.fields)
            .field("password", &self.password)
            .finish()
    }
}

/// The outcome of reading a password file.
#[derive(Debug)]
pub(crate) enum Loaded {
    /// The file does not exist or cannot be read: silently no passwords.
    Missing,
    /// The file was ignored for the given reason (libpq prints a warning).
    Ignored(String),
    /// The entries, in file order.
    Entries(Vec<PgPassEntry>),
}

/// Reads and parses a password file, refusing it (like libpq) if it is not a
/// plain file or if group or others have any access to it.
pub(crate) fn load(path: &Path) -> Loaded {
    let Ok(meta) = std::fs::metadata(path) else {
        return Loaded::Missing;
    };
    if !meta.is_file() {
        return Loaded::Ignored(format!(
            "password file \"{}\" is not a plain file",
            path.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Loaded::Ignored(format!(
                "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                path.display()
            ));
        }
    }
    match std::fs::read(path) {
        Ok(bytes) => Loaded::Entries(parse(&String::from_utf8_lossy(&bytes))),
        Err(_) => Loaded::Missing,
    }
}

/// Splits off one field: up to the next unescaped `:`, with `\x` read as `x`.
/// Returns the unescaped field, whether it was exactly `*`, and the rest after
/// the `:` (None when the line ended first).
fn next_field(s: &str) -> (String, bool, Option<&str>) {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, next)) = chars.next() {
                    out.push(next);
                }
            }
            ':' => {
                let wildcard = &s[..i] == "*";
                return (out, wildcard, Some(&s[i + 1..]));
            }
            _ => out.push(c),
        }
    }
    (out, s == "*", None)
}

/// Parses password-file text. Lines starting with `#` and blank lines are
/// skipped, as are lines with fewer than five fields.
pub(crate) fn parse(content: &str) -> Vec<PgPassEntry> {
    let mut entries = Vec::new();
    for line in content.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut rest = line;
        let mut fields = Vec::with_capacity(4);
        let mut complete = true;
        for _ in 0..4 {
            let (value, wildcard, after) = next_field(rest);
            match after {
                Some(after) => {
                    fields.push(if wildcard {
                        Field::Any
                    } else {
                        Field::Exact(value)
                    });
                    rest = after;
                }
                None => {
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            continue;
        }
        // The password ends at the next unescaped ':' (libpq ignores the rest).
        let (password, _, _) = next_field(rest);
        let fields: [Field; 4] = match fields.try_into() {
            Ok(f) => f,
            Err(_) => continue,
        };
        entries.push(PgPassEntry {
            fields,
            password: Secret::new(password),
        });
    }
    entries
}

/// The password of the first entry matching the connection. `host` must
/// already be `localhost` for a default-socket connection. The first matching
/// line wins even when its password is empty, which means "no password".
pub(crate) fn lookup<'a>(
    entries: &'a [PgPassEntry],
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<&'a Secret> {
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    entries
        .iter()
        .find(|e| e.fields.iter().zip(wanted).all(|(f, v)| f.matches(v)))
        .map(|e| &e.password)
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw<'a>(
        entries: &'a [PgPassEntry],
        host: &str,
        port: u16,
        db: &str,
        user: &str,
    ) -> Option<&'a str> {
        lookup(entries, host, port, db, user).map(Secret::expose)
    }

    #[test]
    fn first_match_wins_with_wildcards() {
        let entries = parse(
            "# comment line\n\
             \n\
             db.example:5432:shop:alice:alice-pw\n\
             *:5432:*:alice:alice-any\n\
             localhost:*:*:*:local-any\n\
             *:*:*:*:fallback\n",
        );
        assert_eq!(entries.len(), 4);
        assert_eq!(
            pw(&entries, "db.example", 5432, "shop", "alice"),
            Some("alice-pw")
        );
        assert_eq!(
            pw(&entries, "db.example", 5432, "other", "alice"),
            Some("alice-any")
        );
        assert_eq!(
            pw(&entries, "localhost", 6000, "x", "bob"),
            Some("local-any")
        );
        assert_eq!(
            pw(&entries, "elsewhere", 6000, "x", "bob"),
            Some("fallback")
        );
    }

    #[test]
    fn no_match() {
        let entries = parse("h:5432:db:u:pw\n");
        assert_eq!(pw(&entries, "h", 5433, "db", "u"), None);
        assert_eq!(pw(&entries, "H", 5432, "db", "u"), None, "case-sensitive");
        assert_eq!(pw(&entries, "h", 5432, "db", "U"), None);
    }

    #[test]
    fn escapes() {
        let entries = parse(
            "/var/run/my\\:sock:5432:db:u:p\\:a\\\\ss\n\
             h:5432:d\\\\b:u:second\n\
             h:5432:db:u:pw:ignored-after-colon\n\
             h:5432:\\*:u:literal-star\n",
        );
        assert_eq!(
            pw(&entries, "/var/run/my:sock", 5432, "db", "u"),
            Some("p:a\\ss")
        );
        assert_eq!(pw(&entries, "h", 5432, "d\\b", "u"), Some("second"));
        assert_eq!(pw(&entries, "h", 5432, "db", "u"), Some("pw"));
        assert_eq!(pw(&entries, "h", 5432, "*", "u"), Some("literal-star"));
        assert_eq!(
            pw(&entries, "h", 5432, "x", "u"),
            None,
            "\\* is not a wildcard"
        );
    }

    #[test]
    fn short_lines_crlf_and_empty_passwords() {
        let entries = parse("h:5432:db:u\r\nh:5432:db:v:\r\nh:5432:db:w:pw\r\n");
        assert_eq!(entries.len(), 2, "the four-field line is skipped");
        assert_eq!(pw(&entries, "h", 5432, "db", "u"), None);
        assert_eq!(
            pw(&entries, "h", 5432, "db", "v"),
            None,
            "empty password means none"
        );
        assert_eq!(
            pw(&entries, "h", 5432, "db", "w"),
            Some("pw"),
            "\\r stripped"
        );
    }

    #[test]
    fn debug_redacts_password() {
        let entries = parse("h:5432:db:u:topsecretpw\n");
        let dbg = format!("{entries:?}");
        assert!(!dbg.contains("topsecretpw"), "{dbg}");
        assert!(dbg.contains("[REDACTED]"));
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:pw\n").unwrap();

        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(
                matches!(load(&path), Loaded::Entries(e) if e.len() == 1),
                "{mode:o}"
            );
        }
        for mode in [0o640, 0o604, 0o644, 0o660, 0o610, 0o601] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            match load(&path) {
                Loaded::Ignored(reason) => {
                    assert!(reason.contains("group or world access"), "{reason}");
                    assert!(reason.contains("0600"), "{reason}");
                }
                other => panic!("mode {mode:o}: {other:?}"),
            }
        }
        assert!(matches!(load(&dir.path().join("missing")), Loaded::Missing));
        assert!(matches!(load(dir.path()), Loaded::Ignored(r) if r.contains("not a plain file")));
    }
}
