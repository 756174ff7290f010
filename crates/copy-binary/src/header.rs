//! The header that opens a binary COPY stream and the trailer that ends it.
//!
//! The header is the 11-byte [`SIGNATURE`], a 32-bit flags word and the
//! 32-bit length of a header extension that follows (skipped: PostgreSQL
//! defines none). Flags in bits 16-31 are critical: a reader that does not
//! know one must stop, as the format asks.

use crate::error::{CopyError, CopyErrorKind, Cut};
use crate::row::Scan;

/// The signature every binary COPY stream starts with.
pub const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The header pgharbor sends: the signature, no flags, no extension.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The trailer: a field count of -1.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// Signature, flags and extension length.
const FIXED_LENGTH: usize = 19;

/// The flags a reader must understand or refuse.
const CRITICAL_FLAGS: u32 = 0xffff_0000;

/// The header at the start of `buf` (which starts at stream offset
/// `offset`): its whole length once complete, else how many bytes are needed.
pub(crate) fn scan(buf: &[u8], offset: u64) -> Result<Scan<usize>, CopyError> {
    if let Some(at) = buf.iter().zip(SIGNATURE).position(|(a, b)| a != b) {
        return Err(CopyError::new(offset + at as u64, CopyErrorKind::Signature));
    }
    let Some(fixed) = buf.get(..FIXED_LENGTH) else {
        return Ok(partial(FIXED_LENGTH, buf.len()));
    };
    let flags = u32::from_be_bytes([fixed[11], fixed[12], fixed[13], fixed[14]]);
    if flags & CRITICAL_FLAGS != 0 {
        return Err(CopyError::new(
            offset + 11,
            CopyErrorKind::CriticalFlags { flags },
        ));
    }
    let extension = u32::from_be_bytes([fixed[15], fixed[16], fixed[17], fixed[18]]);
    let length = FIXED_LENGTH + extension as usize;
    if buf.len() < length {
        return Ok(partial(length, buf.len()));
    }
    Ok(Scan::Complete(length))
}

fn partial(needed: usize, available: usize) -> Scan<usize> {
    Scan::Partial {
        total: needed,
        cut: Cut::Header { needed, available },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_the_signature_without_flags_or_extension() {
        assert_eq!(&HEADER[..SIGNATURE.len()], SIGNATURE);
        assert_eq!(scan(HEADER, 0).unwrap(), Scan::Complete(19));
    }

    #[test]
    fn a_short_header_says_how_much_it_needs() {
        assert_eq!(
            scan(&HEADER[..7], 0).unwrap(),
            Scan::Partial {
                total: 19,
                cut: Cut::Header {
                    needed: 19,
                    available: 7
                }
            }
        );
    }

    #[test]
    fn the_extension_is_skipped_once_complete() {
        let mut header = SIGNATURE.to_vec();
        header.extend_from_slice(&0u32.to_be_bytes());
        header.extend_from_slice(&3u32.to_be_bytes());
        header.extend_from_slice(b"ext");
        assert_eq!(scan(&header, 0).unwrap(), Scan::Complete(22));
        assert!(matches!(
            scan(&header[..20], 0).unwrap(),
            Scan::Partial { total: 22, .. }
        ));
    }

    #[test]
    fn a_wrong_signature_is_named_where_it_differs() {
        let err = scan(b"PGCOPY\r\n", 0).unwrap_err();
        assert_eq!(err.kind(), &CopyErrorKind::Signature);
        assert_eq!(err.offset(), 6);
        let text = scan(b"id\tname\n", 0).unwrap_err().to_string();
        assert!(
            text.contains("not binary COPY data") && text.contains("at byte 0"),
            "{text}"
        );
    }

    #[test]
    fn unknown_critical_flags_are_refused() {
        let mut header = HEADER.to_vec();
        header[12] = 1;
        let err = scan(&header, 0).unwrap_err();
        assert_eq!(
            err.kind(),
            &CopyErrorKind::CriticalFlags { flags: 0x0001_0000 }
        );
        assert_eq!(err.offset(), 11);
        header[12] = 0;
        header[13] = 1;
        assert_eq!(
            scan(&header, 0).unwrap(),
            Scan::Complete(19),
            "bits 0-15 may be ignored"
        );
    }
}
