//! Password verifiers computed on the client, so that a plain password never
//! travels in SQL text or lands in a server log (what libpq's
//! `PQencryptPasswordConn` does), and compared with what the server stores.
//!
//! SCRAM-SHA-256 follows RFC 5802 and RFC 7677 as PostgreSQL stores it:
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, with
//! `SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, iterations)`,
//! `StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key"))` and
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use pgharbor_conn::Secret;
use sha2::{Digest, Sha256};

/// The iteration count of new verifiers (PostgreSQL's default).
pub const SCRAM_ITERATIONS: u32 = 4096;
const SALT_LEN: usize = 16;

/// A new SCRAM-SHA-256 verifier for `password`, with a random salt and
/// [`SCRAM_ITERATIONS`]. The result is password-equivalent for an attacker
/// who can brute-force it, so it is returned as a [`Secret`] too.
///
/// ```
/// use pgharbor_apply::password::{scram_sha_256, verifier_matches};
/// use pgharbor_conn::Secret;
///
/// let pw = Secret::new("correct horse");
/// let verifier = scram_sha_256(&pw).unwrap();
/// assert!(verifier.expose().starts_with("SCRAM-SHA-256$4096:"));
/// assert_eq!(verifier_matches(verifier.expose(), "app", &pw), Some(true));
/// assert_eq!(verifier_matches(verifier.expose(), "app", &Secret::new("wrong")), Some(false));
/// ```
pub fn scram_sha_256(password: &Secret) -> Result<Secret, getrandom::Error> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt)?;
    Ok(Secret::new(scram_with(password, &salt, SCRAM_ITERATIONS)))
}

/// Whether `stored` (a `pg_authid.rolpassword` value of role `role`) is the
/// verifier of `password`: `Some(true)` or `Some(false)` for SCRAM-SHA-256
/// and MD5 verifiers, `None` for anything else (no password, an unknown
/// format), which callers treat as "must be set".
pub fn verifier_matches(stored: &str, role: &str, password: &Secret) -> Option<bool> {
    if let Some(rest) = stored.strip_prefix("SCRAM-SHA-256$") {
        let (iterations, salt) = parse_scram(rest)?;
        return Some(scram_with(password, &salt, iterations) == stored);
    }
    let hex = stored.strip_prefix("md5")?;
    (hex.len() == 32).then(|| md5_hex(password, role) == hex)
}

/// The iteration count and salt of the `<iterations>:<salt>$…` part.
fn parse_scram(rest: &str) -> Option<(u32, Vec<u8>)> {
    let (params, _keys) = rest.split_once('$')?;
    let (iterations, salt) = params.split_once(':')?;
    let iterations = iterations.parse().ok().filter(|i| *i > 0)?;
    Some((iterations, STANDARD.decode(salt).ok()?))
}

fn scram_with(password: &Secret, salt: &[u8], iterations: u32) -> String {
    let prepared = saslprep(password.expose());
    let salted = hi(&prepared, salt, iterations);
    let stored_key = Sha256::digest(hmac(&salted, b"Client Key"));
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

/// SASLprep (RFC 4013) when the password allows it; otherwise the raw
/// bytes, as PostgreSQL and libpq do.
fn saslprep(password: &str) -> Vec<u8> {
    match stringprep::saslprep(password) {
        Ok(prepared) => prepared.into_owned().into_bytes(),
        Err(_) => password.as_bytes().to_vec(),
    }
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// PBKDF2-HMAC-SHA-256 with one output block (RFC 5802's `Hi`).
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = salt.to_vec();
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut previous = hmac(password, &block);
    let mut result = previous;
    for _ in 1..iterations {
        previous = hmac(password, &previous);
        result.iter_mut().zip(previous).for_each(|(r, p)| *r ^= p);
    }
    result
}

fn md5_hex(password: &Secret, role: &str) -> String {
    let mut md5 = Md5::new();
    md5.update(password.expose().as_bytes());
    md5.update(role.as_bytes());
    md5.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil", salt
        // W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations: the client proof there
        // derives from this StoredKey/ServerKey pair.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = scram_with(&Secret::new("pencil"), &salt, 4096);
        assert_eq!(
            verifier,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
             WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:\
             wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn md5_verifiers() {
        // SELECT 'md5' || md5('secret' || 'app')
        let stored = "md56a422f785c9e20873908ce25d1736ae2";
        assert_eq!(
            verifier_matches(stored, "app", &Secret::new("secret")),
            Some(true)
        );
        assert_eq!(
            verifier_matches(stored, "other", &Secret::new("secret")),
            Some(false)
        );
        assert_eq!(verifier_matches("", "app", &Secret::new("secret")), None);
        assert_eq!(
            verifier_matches("SCRAM-SHA-256$x", "app", &Secret::new("s")),
            None
        );
    }
}
