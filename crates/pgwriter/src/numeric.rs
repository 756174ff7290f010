//! PostgreSQL's binary `numeric` format, produced exactly as the server sends it back.

use pgharbor_core::forms::Decimal;

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// Special values.
pub(crate) enum Special {
    NaN,
    PosInf,
    NegInf,
}

/// Append the binary form of a special value.
pub(crate) fn write_special(out: &mut Vec<u8>, special: Special) {
    let sign = match special {
        Special::NaN => NUMERIC_NAN,
        Special::PosInf => NUMERIC_PINF,
        Special::NegInf => NUMERIC_NINF,
    };
    for v in [0u16, 0, sign, 0] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Append the binary form of `d` with display scale `dscale` (≥ the digits
/// after the point in `d`), in the canonical form the server stores.
pub(crate) fn write_decimal(out: &mut Vec<u8>, d: &Decimal, dscale: u32) {
    let mut s: Vec<u8> = d.digits.clone();
    if d.exponent > 0 {
        s.extend(std::iter::repeat_n(b'0', d.exponent as usize));
    }
    let frac = (-d.exponent).max(0) as usize;
    if frac > s.len() {
        let mut padded = vec![b'0'; frac - s.len()];
        padded.extend_from_slice(&s);
        s = padded;
    }
    let mut int_len = s.len() - frac;
    let lpad = (4 - int_len % 4) % 4;
    let rpad = (4 - frac % 4) % 4;
    let mut aligned = vec![b'0'; lpad];
    aligned.extend_from_slice(&s);
    aligned.extend(std::iter::repeat_n(b'0', rpad));
    int_len += lpad;
    let mut groups: Vec<u16> = aligned
        .chunks(4)
        .map(|c| c.iter().fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0')))
        .collect();
    let mut weight = (int_len / 4) as i32 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let (sign, weight) = if groups.is_empty() {
        (NUMERIC_POS, 0)
    } else if d.negative {
        (NUMERIC_NEG, weight)
    } else {
        (NUMERIC_POS, weight)
    };
    out.extend_from_slice(&(groups.len() as u16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(dscale as u16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgharbor_core::forms::parse_decimal;

    fn enc(text: &str) -> Vec<u16> {
        let d = parse_decimal(text.as_bytes()).unwrap();
        let mut out = Vec::new();
        write_decimal(&mut out, &d, d.scale());
        out.chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn canonical_forms() {
        // ndigits, weight, sign, dscale, digits…
        assert_eq!(enc("0"), vec![0, 0, 0, 0]);
        assert_eq!(enc("0.00"), vec![0, 0, 0, 2]);
        assert_eq!(enc("1"), vec![1, 0, 0, 0, 1]);
        assert_eq!(enc("10000"), vec![1, 1, 0, 0, 1]);
        assert_eq!(enc("12345.678"), vec![3, 1, 0, 3, 1, 2345, 6780]);
        assert_eq!(enc("-0.0001"), vec![1, 0xFFFF, 0x4000, 4, 1]);
        assert_eq!(enc("1e2"), vec![1, 0, 0, 0, 100]);
        assert_eq!(enc("1.50"), vec![2, 0, 0, 2, 1, 5000]);
    }
}
