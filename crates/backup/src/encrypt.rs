//! age encryption: [`Encryption`] for backups, [`Decryption`] for restores.
//! Files are standard age files (`age -d` decrypts them).

use std::io::{BufRead, Read};

use age::secrecy::SecretString;
use pgharbor_conn::Secret;

use crate::error::{BackupError, BackupErrorKind, Result};
use crate::manifest::EncryptionKind;

/// How to encrypt a backup's files.
#[derive(Clone)]
pub enum Encryption {
    /// To age x25519 recipients (public keys `age1…`); any one of the
    /// matching identities decrypts.
    Recipients(Vec<String>),
    /// With a passphrase (age's scrypt recipient).
    Passphrase(Secret),
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encryption::Recipients(r) => f.debug_tuple("Recipients").field(r).finish(),
            Encryption::Passphrase(_) => f.write_str("Passphrase([REDACTED])"),
        }
    }
}

/// How to decrypt an encrypted backup's files.
#[derive(Clone)]
pub enum Decryption {
    /// age identities: `AGE-SECRET-KEY-1…` lines (an identity file's
    /// content; `#` comments and blank lines are skipped).
    Identities(Secret),
    /// The passphrase the backup was encrypted with.
    Passphrase(Secret),
}

impl std::fmt::Debug for Decryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decryption::Identities(_) => f.write_str("Identities([REDACTED])"),
            Decryption::Passphrase(_) => f.write_str("Passphrase([REDACTED])"),
        }
    }
}

fn encryption_error(message: impl Into<String>) -> BackupError {
    BackupError::new(BackupErrorKind::Encryption, message)
}

impl Encryption {
    /// What the manifest records.
    pub(crate) fn kind(&self) -> EncryptionKind {
        match self {
            Encryption::Recipients(_) => EncryptionKind::AgeX25519,
            Encryption::Passphrase(_) => EncryptionKind::AgePassphrase,
        }
    }

    /// Checks the recipients before anything is dumped.
    pub(crate) fn validate(&self) -> Result<()> {
        self.encryptor().map(|_| ())
    }

    /// A fresh age encryptor (one per file).
    pub(crate) fn encryptor(&self) -> Result<age::Encryptor> {
        match self {
            Encryption::Passphrase(p) => {
                if p.is_empty() {
                    return Err(encryption_error("the encryption passphrase is empty"));
                }
                Ok(age::Encryptor::with_user_passphrase(SecretString::from(
                    p.expose().to_owned(),
                )))
            }
            Encryption::Recipients(keys) => {
                let mut recipients = Vec::with_capacity(keys.len());
                for key in keys {
                    let r: age::x25519::Recipient = key.trim().parse().map_err(|_| {
                        BackupError::new(
                            BackupErrorKind::InvalidInput,
                            format!("'{key}' is not an age x25519 recipient (a public key age1…)"),
                        )
                    })?;
                    recipients.push(r);
                }
                age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                    .map_err(|e| encryption_error("age").caused_by(e))
            }
        }
    }
}

impl Decryption {
    /// Wraps `input` (an age file) in a decrypting reader.
    pub(crate) fn decrypt<R: BufRead + Send + 'static>(
        &self,
        input: R,
    ) -> Result<Box<dyn Read + Send>> {
        let decryptor = age::Decryptor::new_buffered(input)
            .map_err(|e| encryption_error("not a readable age file").caused_by(e))?;
        let identities: Vec<Box<dyn age::Identity>> = match self {
            Decryption::Passphrase(p) => {
                vec![Box::new(age::scrypt::Identity::new(SecretString::from(
                    p.expose().to_owned(),
                )))]
            }
            Decryption::Identities(text) => parse_identities(text)?,
        };
        let reader = decryptor
            .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| {
                let worded = format!("{e}; check the identity or passphrase");
                encryption_error("decryption failed")
                    .caused_by(pgharbor_conn::Explained::new(worded, e))
            })?;
        Ok(Box::new(reader))
    }
}

fn parse_identities(text: &Secret) -> Result<Vec<Box<dyn age::Identity>>> {
    let mut out: Vec<Box<dyn age::Identity>> = Vec::new();
    for (n, line) in text.expose().lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let identity: age::x25519::Identity = line.parse().map_err(|_| {
            BackupError::new(
                BackupErrorKind::InvalidInput,
                format!(
                    "line {} of the age identities is not an identity (AGE-SECRET-KEY-1…)",
                    n + 1
                ),
            )
        })?;
        out.push(Box::new(identity));
    }
    if out.is_empty() {
        return Err(BackupError::new(
            BackupErrorKind::InvalidInput,
            "no age identity (AGE-SECRET-KEY-1…) was given",
        ));
    }
    Ok(out)
}
