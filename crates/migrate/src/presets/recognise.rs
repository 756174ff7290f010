//! Finding an application's data by its preset's rules: [`AppData::locate`]
//! for `--preset` (the data directory or the database file itself), and
//! [`recognise`] for a directory given without one.

use super::format::Preset;
use crate::error::{MigrateError, MigrateErrorKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An application's data, found by its preset.
#[derive(Debug, Clone)]
pub struct AppData {
    /// The preset that found it.
    pub preset: Arc<Preset>,
    /// The data directory.
    pub dir: PathBuf,
    /// The SQLite database.
    pub database: PathBuf,
    /// The preset's stores that exist, by name.
    pub stores: BTreeMap<String, PathBuf>,
}

impl AppData {
    /// Accept the data directory or the database file itself (`--preset`).
    pub fn locate(preset: Arc<Preset>, source: &Path) -> Result<AppData, MigrateError> {
        let (dir, database) = if source.is_dir() {
            (source.to_path_buf(), find_database(&preset, source))
        } else {
            let dir = source.parent().map(Path::to_path_buf).unwrap_or_default();
            (dir, Some(source.to_path_buf()).filter(|p| p.is_file()))
        };
        let Some(database) = database else {
            let shown = if source.is_dir() {
                source.join(&preset.data.database[0])
            } else {
                source.to_path_buf()
            };
            let directory = preset
                .data
                .directory
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            return Err(MigrateError::new(
                MigrateErrorKind::Usage,
                format!(
                    "{}: no {} database here; give {}'s data directory{directory} or its {}",
                    shown.display(),
                    preset.title,
                    preset.title,
                    preset.data.database.join(" or ")
                ),
            ));
        };
        if let Some(problem) = database_problem(&preset, &database) {
            return Err(MigrateError::new(
                MigrateErrorKind::Usage,
                format!(
                    "{}: is not {}'s database ({problem}), which the {} preset requires: give the file itself as SOURCE, without --preset, to move it as an SQLite database",
                    database.display(),
                    preset.title,
                    preset.name
                ),
            ));
        }
        let stores = preset
            .stores
            .iter()
            .map(|(name, store)| (name.clone(), dir.join(&store.path)))
            .filter(|(_, path)| path.exists())
            .collect();
        Ok(AppData {
            preset,
            dir,
            database,
            stores,
        })
    }

    /// The store `name` when it exists (and holds its marker file, if the
    /// preset names one).
    pub fn store(&self, name: &str) -> Option<&Path> {
        let path = self.stores.get(name)?;
        let marker = self.preset.stores.get(name)?.marker.as_deref();
        marker
            .is_none_or(|m| path.join(m).is_file())
            .then_some(path.as_path())
    }

    /// The store `name` when it exists, whether or not it holds its marker.
    pub fn store_dir(&self, name: &str) -> Option<&Path> {
        self.stores.get(name).map(PathBuf::as_path)
    }

    /// What was found, as `webui.db, vector_db/, uploads/`.
    pub fn parts(&self) -> String {
        let mut parts = vec![self
            .database
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()];
        for (name, store) in &self.preset.stores {
            if let Some(path) = self.store(name) {
                let slash = if path.is_dir() { "/" } else { "" };
                parts.push(format!("{}{slash}", store.path));
            }
        }
        parts.join(", ")
    }
}

/// The first file in `dir` that the preset's database names or globs match.
fn find_database(preset: &Preset, dir: &Path) -> Option<PathBuf> {
    for pattern in &preset.data.database {
        if !pattern.contains(['*', '?']) {
            let path = dir.join(pattern);
            if path.is_file() {
                return Some(path);
            }
            continue;
        }
        let mut matches: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| glob_matches(pattern, &e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        matches.sort();
        if let Some(first) = matches.into_iter().next() {
            return Some(first);
        }
    }
    None
}

/// `*` (any run of characters) and `?` (one character) against a file name.
pub(crate) fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == '?' || *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// How a directory measures up to one preset.
#[derive(Debug)]
pub enum Fit {
    /// Everything the preset looks for is there.
    Whole(AppData),
    /// The database file is there but something else is not: what.
    Partial {
        /// The preset.
        preset: Arc<Preset>,
        /// The database file found.
        database: PathBuf,
        /// What is missing (`it has no auth, user table`, `no config file`)
        /// or `it cannot be read: …`.
        missing: String,
        /// The database is not the application's (it lacks tables or
        /// cannot be read).
        lacks_tables: bool,
    },
}

impl Fit {
    /// The preset measured against.
    pub fn preset(&self) -> &Preset {
        match self {
            Fit::Whole(app) => &app.preset,
            Fit::Partial { preset, .. } => preset,
        }
    }
}

/// Measure `dir` against every preset whose database file is in it.
pub fn recognise(dir: &Path, presets: &[Arc<Preset>]) -> Result<Vec<Fit>, MigrateError> {
    let mut fits = Vec::new();
    for preset in presets {
        let Some(database) = find_database(preset, dir) else {
            continue;
        };
        fits.push(measure(preset.clone(), dir, database)?);
    }
    Ok(fits)
}

fn measure(preset: Arc<Preset>, dir: &Path, database: PathBuf) -> Result<Fit, MigrateError> {
    if let Some(problem) = database_problem(&preset, &database) {
        return Ok(Fit::Partial {
            preset,
            database,
            missing: problem,
            lacks_tables: true,
        });
    }
    let missing: Vec<String> = preset
        .data
        .files
        .iter()
        .filter(|f| !dir.join(f).is_file())
        .map(|f| format!("no {f} file"))
        .chain(
            preset
                .data
                .directories
                .iter()
                .filter(|d| !dir.join(d).is_dir())
                .map(|d| format!("no {d}/ directory")),
        )
        .collect();
    if !missing.is_empty() {
        return Ok(Fit::Partial {
            preset,
            database,
            missing: missing.join(", "),
            lacks_tables: false,
        });
    }
    Ok(Fit::Whole(AppData::locate(preset, dir)?))
}

/// Why `database` is not the preset's application's, if it is not: it
/// cannot be read as SQLite, or it lacks a table the preset requires.
fn database_problem(preset: &Preset, database: &Path) -> Option<String> {
    let tables: Vec<&str> = preset.data.tables.iter().map(String::as_str).collect();
    if let Err(e) = pgharbor_sqlite::open::check_file(database) {
        return Some(format!("it cannot be read: {e}"));
    }
    match missing_tables(database, &tables) {
        Ok(missing) if missing.is_empty() => None,
        Ok(missing) => Some(format!("it has no {} table", missing.join(", "))),
        Err(e) => Some(format!("it cannot be read: {e}")),
    }
}

/// The tables of `names` that the SQLite database at `path` lacks (opened
/// read-only, nothing written).
pub(crate) fn missing_tables(path: &Path, names: &[&str]) -> rusqlite::Result<Vec<String>> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut missing = Vec::new();
    for name in names {
        let found: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
            [name],
            |row| row.get(0),
        )?;
        if !found {
            missing.push((*name).to_string());
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs_match_stars_and_single_characters() {
        assert!(glob_matches("*.db", "home-assistant_v2.db"));
        assert!(glob_matches("langflow.db", "langflow.db"));
        assert!(glob_matches("data?.sqlite", "data1.sqlite"));
        assert!(!glob_matches("data?.sqlite", "data12.sqlite"));
        assert!(!glob_matches("*.db", "notes.txt"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
    }
}
