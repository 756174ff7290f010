//! LZF decompression, for the few RDB strings whose content pgharbor needs
//! (keys, aux fields, function code); values are copied compressed.

/// Decompresses `input` into exactly `len` bytes; `None` when the data is
/// not valid LZF or does not decompress to `len` bytes.
pub(crate) fn decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let literal = input.get(i..i + ctrl + 1)?;
            out.extend_from_slice(literal);
            i += ctrl + 1;
        } else {
            let mut run = ctrl >> 5;
            if run == 7 {
                run += usize::from(*input.get(i)?);
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            for k in 0..run + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::decompress;

    #[test]
    fn literals_and_back_references() {
        // "abcabcabc": a literal run of 3, then a back reference of 6 bytes at distance 3.
        let data = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(decompress(&data, 9).unwrap(), b"abcabcabc");
        assert!(decompress(&data, 8).is_none());
        assert!(decompress(&[5, b'a'], 6).is_none());
    }
}
