//! Parsing a DEST string into a [`Location`], and checking object names.

use std::fmt;
use std::path::PathBuf;

use crate::error::{ObjstoreError, ObjstoreErrorKind, Result};

/// Where a destination's objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A local directory (absolute).
    Local(PathBuf),
    /// `s3://bucket/prefix`.
    S3 { bucket: String, prefix: String },
    /// `az://container/prefix`.
    Azure { container: String, prefix: String },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, root, prefix) = match self {
            Location::Local(path) => return write!(f, "{}", path.display()),
            Location::S3 { bucket, prefix } => ("s3", bucket, prefix),
            Location::Azure { container, prefix } => ("az", container, prefix),
        };
        write!(f, "{scheme}://{root}")?;
        if !prefix.is_empty() {
            write!(f, "/{prefix}")?;
        }
        Ok(())
    }
}

impl Location {
    /// Parses a DEST: a path, `file:///abs/path`, `s3://bucket[/prefix]`
    /// or `az://container[/prefix]` (also `azure://`).
    pub(crate) fn parse(dest: &str) -> Result<Location> {
        let trimmed = dest.trim();
        if trimmed.is_empty() {
            return Err(ObjstoreError::invalid(
                dest,
                "it is empty; give a directory, file:///path, s3://bucket/prefix or az://container/prefix",
            ));
        }
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return local_path(dest, trimmed);
        };
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        if trimmed.len() != scheme.len() + 3 + rest.len() {
            return Err(ObjstoreError::invalid(
                &mask(dest),
                "query strings and fragments are not supported (credentials come from the environment)",
            ));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "file" => file_url(dest, rest),
            "s3" | "s3a" => {
                let (bucket, prefix) = split_root(dest, rest, "bucket")?;
                check_bucket(dest, &bucket)?;
                Ok(Location::S3 { bucket, prefix })
            }
            "az" | "azure" => {
                let (container, prefix) = split_root(dest, rest, "container")?;
                check_container(dest, &container)?;
                Ok(Location::Azure { container, prefix })
            }
            other => Err(ObjstoreError::invalid(
                &mask(dest),
                format!(
                    "unsupported scheme '{other}://'; use a directory, file:///path, \
                     s3://bucket/prefix or az://container/prefix"
                ),
            )),
        }
    }
}

fn local_path(dest: &str, path: &str) -> Result<Location> {
    let absolute = std::path::absolute(path)
        .map_err(|e| ObjstoreError::invalid(dest, format!("cannot make the path absolute: {e}")))?;
    Ok(Location::Local(absolute))
}

fn file_url(dest: &str, rest: &str) -> Result<Location> {
    let path = if let Some(path) = rest.strip_prefix("localhost/") {
        format!("/{path}")
    } else if rest.starts_with('/') {
        rest.to_owned()
    } else {
        return Err(ObjstoreError::invalid(
            dest,
            "file:// URLs need an absolute path after the two slashes, e.g. file:///var/backups",
        ));
    };
    let decoded = percent_decode(&path)
        .ok_or_else(|| ObjstoreError::invalid(dest, "bad percent-encoding in the path"))?;
    local_path(dest, &decoded)
}

/// Splits `root/prefix/…` into the root (bucket, container) and a clean prefix.
fn split_root(dest: &str, rest: &str, what: &str) -> Result<(String, String)> {
    let (root, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if root.contains('@') {
        return Err(ObjstoreError::invalid(
            &mask(dest),
            "credentials in the URL are not supported; set them in the environment \
             (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_ACCOUNT/AZURE_STORAGE_KEY, …)",
        ));
    }
    if root.is_empty() {
        return Err(ObjstoreError::invalid(
            dest,
            format!("the {what} name is missing"),
        ));
    }
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        check_name(prefix).map_err(|problem| {
            ObjstoreError::invalid(dest, format!("the prefix '{prefix}' {problem}"))
        })?;
    }
    Ok((root.to_owned(), prefix.to_owned()))
}

/// S3 bucket naming rules: 3–63 characters, lowercase letters, digits, `.`
/// and `-`, beginning and ending with a letter or digit.
fn check_bucket(dest: &str, bucket: &str) -> Result<()> {
    let chars_ok = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if (3..=63).contains(&bucket.len()) && chars_ok && ends_ok {
        return Ok(());
    }
    Err(ObjstoreError::invalid(
        dest,
        format!(
            "'{bucket}' is not a valid S3 bucket name (3-63 characters: lowercase letters, \
             digits, '.' and '-', beginning and ending with a letter or digit)"
        ),
    ))
}

/// Azure container naming rules: 3–63 characters, lowercase letters,
/// digits and single `-`, beginning and ending with a letter or digit.
fn check_container(dest: &str, container: &str) -> Result<()> {
    let chars_ok = container
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ends_ok = container.starts_with(|c: char| c.is_ascii_alphanumeric())
        && container.ends_with(|c: char| c.is_ascii_alphanumeric());
    if (3..=63).contains(&container.len()) && chars_ok && ends_ok && !container.contains("--") {
        return Ok(());
    }
    Err(ObjstoreError::invalid(
        dest,
        format!(
            "'{container}' is not a valid Azure container name (3-63 characters: lowercase \
             letters, digits and single '-', beginning and ending with a letter or digit)"
        ),
    ))
}

/// Checks an object name (or prefix): relative, `/`-separated, no empty,
/// `.` or `..` segments, only [`name_char`]s. Returns the problem.
pub(crate) fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.starts_with('/') {
        return Err("must be relative (no leading '/')");
    }
    if !name.chars().all(name_char) {
        return Err("may contain only letters, digits, spaces and - _ . : + = , @ /");
    }
    for segment in name.split('/') {
        match segment {
            "" => return Err("has an empty path segment ('//' or a trailing '/')"),
            "." | ".." => return Err("has a '.' or '..' segment"),
            _ => {}
        }
    }
    Ok(())
}

/// Characters allowed in object names: none that object stores' clients
/// percent-encode, so names read back from a listing are the names written.
fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '+' | '=' | ',' | '@' | ' ' | '/')
}

/// Checks an object name for an operation, as an [`ObjstoreErrorKind::InvalidName`] error.
pub(crate) fn valid_name(dest: &Location, name: &str) -> Result<()> {
    check_name(name).map_err(|problem| {
        ObjstoreError::new(
            ObjstoreErrorKind::InvalidName,
            format!("backup destination {dest}: the object name '{name}' {problem}"),
        )
    })
}

/// Checks a listing prefix: empty (everything) or a valid name; a trailing
/// `/` is allowed and dropped.
pub(crate) fn valid_prefix<'a>(dest: &Location, prefix: &'a str) -> Result<&'a str> {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    if !prefix.is_empty() {
        valid_name(dest, prefix)?;
    }
    Ok(prefix)
}

/// `scheme://user:****@…` for a DEST that carries credentials.
fn mask(dest: &str) -> String {
    let Some((scheme, rest)) = dest.split_once("://") else {
        return dest.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let host = match authority.rfind('@') {
        Some(at) => format!("****@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let dropped = if rest.contains(['?', '#']) {
        "?…"
    } else {
        ""
    };
    format!("{scheme}://{host}{path}{dropped}")
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_userinfo_and_queries() {
        assert_eq!(mask("s3://AK:SECRET@bucket/p"), "s3://****@bucket/p");
        assert_eq!(mask("az://c/p?sig=SECRET"), "az://c/p?…");
        assert_eq!(percent_decode("/a%20b"), Some("/a b".to_owned()));
        assert_eq!(percent_decode("/a%2"), None);
    }

    #[test]
    fn names() {
        assert!(check_name("a/b.dump").is_ok());
        assert!(check_name("a//b").is_err());
        assert!(check_name("a/../b").is_err());
        assert!(check_name("/a").is_err());
        assert!(check_name("a/").is_err());
        assert!(check_name("a\nb").is_err());
    }
}
