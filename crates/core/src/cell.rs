//! Source values as they travel from a reader to the writer.

/// One value read from a source, borrowed from the reader's buffer.
///
/// This mirrors SQLite's storage classes; other sources map onto it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Real(f64),
    /// Text as raw bytes: normally UTF-8, but not guaranteed by the source.
    Text(&'a [u8]),
    /// Binary data.
    Blob(&'a [u8]),
    /// An embedding vector (from vector stores).
    Vector(&'a [f32]),
}

impl Cell<'_> {
    /// A short name of the storage class, used in reports and errors.
    pub fn class_name(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Int(_) => "integer",
            Cell::Real(_) => "real",
            Cell::Text(_) => "text",
            Cell::Blob(_) => "blob",
            Cell::Vector(_) => "vector",
        }
    }

    /// A printable, truncated rendering of the value for error messages.
    pub fn preview(&self) -> String {
        const MAX: usize = 60;
        match self {
            Cell::Null => "NULL".to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Real(f) => format!("{f:?}"),
            Cell::Text(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                let mut shown: String = text.chars().take(MAX).collect();
                shown = shown.escape_debug().to_string();
                if text.chars().count() > MAX {
                    shown.push('…');
                }
                format!("'{shown}'")
            }
            Cell::Blob(bytes) => {
                let hex: String = bytes
                    .iter()
                    .take(MAX / 2)
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let more = if bytes.len() > MAX / 2 { "…" } else { "" };
                format!("x'{hex}{more}' ({} bytes)", bytes.len())
            }
            Cell::Vector(values) => {
                let shown: Vec<String> = values.iter().take(4).map(|v| v.to_string()).collect();
                let more = if values.len() > 4 { ", …" } else { "" };
                format!("[{}{more}] ({} dimensions)", shown.join(", "), values.len())
            }
        }
    }
}
