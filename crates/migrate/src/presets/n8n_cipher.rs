//! n8n's credential cipher (its `Cipher` class, crypto-js compatible), for
//! decrypting only: a value is base64 of OpenSSL's `Salted__` header, an
//! 8-byte salt and AES-256-CBC ciphertext (PKCS#7 padding); the 32-byte key
//! and 16-byte IV come from OpenSSL's `EVP_BytesToKey` with MD5 and one
//! iteration over the instance's encryption key and the salt.

use base64::Engine;
use cbc::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use md5::{Digest, Md5};
use std::fmt;

/// OpenSSL's header in front of the salt.
const SALTED: &[u8; 8] = b"Salted__";
/// AES's block size.
const BLOCK: usize = 16;

type Aes256CbcDecryptor = cbc::Decryptor<aes::Aes256>;

/// An instance's encryption key, ready to decrypt its credentials. Its
/// Debug output never shows the key.
pub struct CredentialCipher {
    /// The key as n8n hashes it: `Buffer.from(key, 'binary')`.
    password: Vec<u8>,
}

impl fmt::Debug for CredentialCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialCipher([REDACTED])")
    }
}

/// Why one credential does not decrypt (never its content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecryptError {
    /// The stored value is not base64.
    NotBase64,
    /// The value does not start with `Salted__` and a salt.
    NoSaltHeader,
    /// The ciphertext is empty or not whole AES blocks (a cut value).
    Truncated,
    /// The padding is wrong after decrypting: another key, or a changed value.
    BadPadding,
    /// The plaintext is not JSON: another key, or a changed value.
    NotJson,
}

impl fmt::Display for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecryptError::NotBase64 => "not base64",
            DecryptError::NoSaltHeader => "no OpenSSL \"Salted__\" header",
            DecryptError::Truncated => "ciphertext cut short",
            DecryptError::BadPadding => "wrong padding after decrypting",
            DecryptError::NotJson => "decrypts to something that is not JSON",
        })
    }
}

impl CredentialCipher {
    /// The cipher for the encryption key `key`, encoded as n8n encodes it
    /// (Node's `binary`: the low byte of each UTF-16 code unit).
    pub fn new(key: &str) -> CredentialCipher {
        CredentialCipher {
            password: key.encode_utf16().map(|unit| unit as u8).collect(),
        }
    }

    /// Whether `stored` (a `credentials_entity.data` value) decrypts to JSON,
    /// as n8n needs it to; the plaintext is dropped at once.
    pub fn check(&self, stored: &str) -> Result<(), DecryptError> {
        let plaintext = self.decrypt(stored)?;
        serde_json::from_slice::<serde::de::IgnoredAny>(&plaintext)
            .map(|_| ())
            .map_err(|_| DecryptError::NotJson)
    }

    /// The plaintext of `stored`.
    fn decrypt(&self, stored: &str) -> Result<Vec<u8>, DecryptError> {
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(stored.trim())
            .map_err(|_| DecryptError::NotBase64)?;
        if raw.len() < SALTED.len() + 8 || &raw[..SALTED.len()] != SALTED {
            return Err(DecryptError::NoSaltHeader);
        }
        let salt: [u8; 8] = raw[8..16].try_into().expect("8 bytes");
        let ciphertext = &mut raw[16..];
        if ciphertext.is_empty() || ciphertext.len() % BLOCK != 0 {
            return Err(DecryptError::Truncated);
        }
        let (key, iv) = evp_bytes_to_key(&self.password, &salt);
        let plaintext = Aes256CbcDecryptor::new(&key.into(), &iv.into())
            .decrypt_padded_mut::<Pkcs7>(ciphertext)
            .map_err(|_| DecryptError::BadPadding)?;
        Ok(plaintext.to_vec())
    }
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration: `D1 = MD5(password
/// ‖ salt)`, `Di = MD5(Di-1 ‖ password ‖ salt)`; the key is the first 32
/// bytes of `D1 ‖ D2 ‖ D3`, the IV the next 16.
fn evp_bytes_to_key(password: &[u8], salt: &[u8; 8]) -> ([u8; 32], [u8; 16]) {
    let mut material = [0u8; 48];
    for at in (0..material.len()).step_by(16) {
        let mut md5 = Md5::new();
        md5.update(&material[at.saturating_sub(16)..at]);
        md5.update(password);
        md5.update(salt);
        material[at..at + 16].copy_from_slice(&md5.finalize());
    }
    let key: [u8; 32] = material[..32].try_into().expect("32 bytes");
    let iv: [u8; 16] = material[32..].try_into().expect("16 bytes");
    (key, iv)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The TEST key in `fixtures/n8n/data/config` (never a real instance's).
    pub(in crate::presets) const FIXTURE_KEY: &str = "pgharbor-n8n-fixture-TEST-key-not-a-secret";
    /// Credential `4NW7zjpdQdG6vU9a` of `fixtures/n8n/data/database.sqlite`,
    /// encrypted by n8n 2.8.4 itself with `FIXTURE_KEY`.
    pub(in crate::presets) const FIXTURE_ROW: &str = "U2FsdGVkX1/y+NHC7VOoSRV9+t1mnQGEyLJabd32PuhCUU77LC3iMvJHixBmjsbpGtw2Rn1isMIuQJD3hHqG4+7uGEkVRUdGrAB0XZ3tPfc=";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    }

    #[test]
    fn evp_bytes_to_key_gives_what_openssl_derives() {
        // `openssl enc -aes-256-cbc -k password -S 0102030405060708 -P -md md5`
        let (key, iv) = evp_bytes_to_key(b"password", &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            hex(&key),
            "E7B0971E52CA5CC8D0539FB3412F6316F7BA2E6EE293D9F3457B99436B51CE02"
        );
        assert_eq!(hex(&iv), "8D450E2ED75A84A923D4EAC9FE49226B");
    }

    #[test]
    fn a_credential_n8n_encrypted_decrypts_with_its_key_to_its_json() {
        let plaintext = CredentialCipher::new(FIXTURE_KEY)
            .decrypt(FIXTURE_ROW)
            .unwrap();
        assert_eq!(
            String::from_utf8(plaintext).unwrap(),
            r#"{"user":"svc-i15nmo","password":"pw-ab4evTDUOmU51s1kDHax"}"#
        );
        assert_eq!(
            CredentialCipher::new(FIXTURE_KEY).check(FIXTURE_ROW),
            Ok(())
        );
    }

    #[test]
    fn another_key_is_refused() {
        let refused = CredentialCipher::new("another-key").check(FIXTURE_ROW);
        assert!(
            matches!(
                refused,
                Err(DecryptError::BadPadding | DecryptError::NotJson)
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn a_key_outside_ascii_is_hashed_as_node_s_binary_encoding() {
        // Encrypted by Node's crypto with n8n's key derivation,
        // `Buffer.from('clé-ünïcode-€', 'binary')` (€ is U+20AC: byte 0xAC).
        let stored = "U2FsdGVkX18AESIzRFVmd4zH+1UzKqDKd+mpm2STijM=";
        let plaintext = CredentialCipher::new("clé-ünïcode-€")
            .decrypt(stored)
            .unwrap();
        assert_eq!(plaintext, br#"{"apiKey":"k"}"#);
    }

    #[test]
    fn damaged_values_are_named_by_what_is_wrong() {
        let cipher = CredentialCipher::new(FIXTURE_KEY);
        assert_eq!(cipher.check("not base64!"), Err(DecryptError::NotBase64));
        let unsalted = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        assert_eq!(cipher.check(&unsalted), Err(DecryptError::NoSaltHeader));
        let cut = &FIXTURE_ROW[..FIXTURE_ROW.len() - 8];
        assert_eq!(cipher.check(cut), Err(DecryptError::Truncated));
        let header_only = base64::engine::general_purpose::STANDARD.encode(b"Salted__12345678");
        assert_eq!(cipher.check(&header_only), Err(DecryptError::Truncated));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", CredentialCipher::new(FIXTURE_KEY));
        assert!(!shown.contains("fixture"), "{shown}");
    }
}
