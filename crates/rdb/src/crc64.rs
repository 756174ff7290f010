//! The CRC64 Redis puts at the end of RDB files and `DUMP` payloads: the
//! Jones polynomial (`0xad93d23594c935a9`), reflected, initial value 0, no
//! final XOR (`crc64` in Redis's `crc64.c`). Computed eight bytes at a time.

/// The Jones polynomial, bit-reversed for the reflected algorithm.
const POLY: u64 = 0xad93d23594c935a9_u64.reverse_bits();

const TABLES: [[u64; 256]; 8] = tables();

const fn tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = t[0][(prev & 0xff) as usize] ^ (prev >> 8);
            i += 1;
        }
        k += 1;
    }
    t
}

/// Continues the CRC64 `crc` over `data` (start with 0).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = crc ^ u64::from_le_bytes(word);
        crc = (0..8).fold(0, |acc, k| {
            acc ^ TABLES[7 - k][((x >> (8 * k)) & 0xff) as usize]
        });
    }
    for &b in chunks.remainder() {
        crc = TABLES[0][((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::crc64;

    #[test]
    fn check_value() {
        // The check value Redis's own crc64 test uses.
        assert_eq!(crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
        let text = b"This is a test of the emergency broadcast system.";
        let split = crc64(crc64(0, &text[..13]), &text[13..]);
        assert_eq!(split, crc64(0, text));
    }
}
