//! What messages say about a certificate: subject, issuer, the names a host
//! is matched against, validity dates, and dates written for people.

use std::net::IpAddr;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

/// The parts of a certificate that messages mention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertInfo {
    pub(crate) subject: String,
    pub(crate) issuer: String,
    /// `DNS:name` and `IP:addr` subjectAltName entries.
    pub(crate) alt_names: Vec<String>,
    /// The subject's common names.
    pub(crate) common_names: Vec<String>,
    pub(crate) not_before: u64,
    pub(crate) not_after: u64,
}

impl CertInfo {
    pub(crate) fn parse(der: &[u8]) -> Option<CertInfo> {
        let cert = Certificate::from_der(der).ok()?;
        let tbs = &cert.tbs_certificate;
        let mut alt_names = Vec::new();
        if let Ok(Some((_, san))) = tbs.get::<SubjectAltName>() {
            for name in san.0 {
                match name {
                    GeneralName::DnsName(d) => alt_names.push(format!("DNS:{}", d.as_str())),
                    GeneralName::IpAddress(ip) => {
                        let b = ip.as_bytes();
                        let addr = match b.len() {
                            4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
                            _ => None,
                        };
                        if let Some(addr) = addr {
                            alt_names.push(format!("IP:{addr}"));
                        }
                    }
                    _ => {}
                }
            }
        }
        let common_names = tbs
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .filter(|atv| atv.oid == x509_cert::der::oid::db::rfc4519::CN)
            .filter_map(|atv| atv.to_string().strip_prefix("CN=").map(str::to_owned))
            .collect();
        Some(CertInfo {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            alt_names,
            common_names,
            not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
        })
    }

    /// The names a host is matched against, for messages: the
    /// subjectAltName entries, or the common name when there are none.
    pub(crate) fn names_for_message(&self) -> String {
        if !self.alt_names.is_empty() {
            return self.alt_names.join(", ");
        }
        if self.common_names.is_empty() {
            return "no host names at all (no subjectAltName, no common name)".to_owned();
        }
        let cns: Vec<String> = self
            .common_names
            .iter()
            .map(|c| format!("CN={c}"))
            .collect();
        format!("{} (no subjectAltName)", cns.join(", "))
    }
}

/// `2024-05-01 12:00:00 UTC` for seconds since the Unix epoch.
pub(crate) fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn cert_info_reads_names_and_dates() {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pg.test");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let info = CertInfo::parse(cert.der()).unwrap();
        assert_eq!(info.alt_names, vec!["DNS:localhost", "IP:127.0.0.1"]);
        assert_eq!(info.common_names, vec!["pg.test"]);
        assert!(info.subject.contains("CN=pg.test"), "{}", info.subject);
        assert!(info.not_after > info.not_before);
        assert_eq!(info.names_for_message(), "DNS:localhost, IP:127.0.0.1");
    }
}
