//! TLS for the listeners (rustls, `ring` provider): a PEM certificate chain and key, HTTP/2 and
//! HTTP/1.1 offered by ALPN, optional client certificates (mTLS) against a CA file, and
//! reloading — `reload()` reads the files again and swaps the configuration that new
//! connections use, while open connections keep theirs (the binary calls it on SIGHUP).
//!
//! A certificate that is expired or not yet valid is refused when loaded, with a message that
//! says which; on reload the previous configuration stays in use.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Where the certificate, key and (for mTLS) client CA are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// The TLS configuration of a listener, reloadable.
pub struct Tls {
    files: TlsFiles,
    acceptor: RwLock<TlsAcceptor>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

fn certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(path, &format!("not a PEM certificate file ({e})")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, &format!("a certificate does not parse ({e})")))?;
    if certs.is_empty() {
        return Err(invalid(path, "holds no certificate"));
    }
    Ok(certs)
}

/// Seconds since the epoch "now", for validity checks.
fn now_secs() -> i64 {
    use strongroom_core::Clock;
    strongroom_core::SystemClock.now_ms() / 1000
}

fn build(files: &TlsFiles) -> io::Result<TlsAcceptor> {
    let chain = certificates(&files.cert)?;
    match certificate_validity(&chain[0]) {
        Some((not_before, not_after)) => {
            let now = now_secs();
            if now > not_after {
                return Err(invalid(&files.cert, "the certificate has expired"));
            }
            if now < not_before {
                return Err(invalid(&files.cert, "the certificate is not valid yet"));
            }
        }
        None => {
            return Err(invalid(
                &files.cert,
                "the certificate's validity does not parse",
            ))
        }
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| invalid(&files.key, &format!("not a PEM private key ({e})")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| invalid(ca, &format!("not a usable CA certificate ({e})")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| invalid(ca, &format!("cannot verify clients with it ({e})")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| invalid(&files.key, &format!("does not match the certificate ({e})")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Tls {
    /// Loads the files; refuses an expired or not-yet-valid certificate.
    pub fn load(files: TlsFiles) -> io::Result<Self> {
        let acceptor = build(&files)?;
        Ok(Self {
            files,
            acceptor: RwLock::new(acceptor),
        })
    }

    /// Reads the files again; new connections use them, open ones keep what they have. On an
    /// error the previous configuration stays.
    pub fn reload(&self) -> io::Result<()> {
        let acceptor = build(&self.files)?;
        *self.acceptor.write() = acceptor;
        Ok(())
    }

    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.read().clone()
    }
}

/// (notBefore, notAfter) of a DER certificate, in seconds since the epoch.
pub fn certificate_validity(der: &[u8]) -> Option<(i64, i64)> {
    let (cert, _) = tlv(der, 0x30)?;
    let (tbs, _) = tlv(cert, 0x30)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest, 0xa0)?.1;
    }
    rest = tlv(rest, 0x02)?.1; // serialNumber
    rest = tlv(rest, 0x30)?.1; // signature algorithm
    rest = tlv(rest, 0x30)?.1; // issuer
    let (validity, _) = tlv(rest, 0x30)?;
    let (before, after_rest) = time(validity)?;
    let (after, _) = time(after_rest)?;
    Some((before, after))
}

/// One DER element of tag `tag` at the start of `data`: (contents, what follows).
fn tlv(data: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = data.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (&rest[..len], &rest[len..]))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) at the start of `data`.
fn time(data: &[u8]) -> Option<(i64, &[u8])> {
    let (tag, year_digits) = match data.first()? {
        0x17 => (0x17, 2),
        0x18 => (0x18, 4),
        _ => return None,
    };
    let (text, rest) = tlv(data, tag)?;
    let text = std::str::from_utf8(text).ok()?;
    let text = text.strip_suffix('Z')?;
    if text.len() != year_digits + 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |from: usize, len: usize| text[from..from + len].parse::<i64>().ok();
    let mut year = num(0, year_digits)?;
    if year_digits == 2 {
        year += if year < 50 { 2000 } else { 1900 };
    }
    let at = year_digits;
    let (month, day) = (num(at, 2)?, num(at + 2, 2)?);
    let (hour, minute, second) = (num(at + 4, 2)?, num(at + 6, 2)?, num(at + 8, 2)?);
    let date = time::Date::from_calendar_date(
        year as i32,
        time::Month::try_from(month as u8).ok()?,
        day as u8,
    )
    .ok()?;
    let t = time::Time::from_hms(hour as u8, minute as u8, second as u8).ok()?;
    Some((
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_of_generated_certificates() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 2);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (before, after) = certificate_validity(cert.der()).unwrap();
        assert_eq!(before, 1_577_923_200);
        assert_eq!(after, 2_524_521_600);
        // After 2049: GeneralizedTime.
        params.not_after = rcgen::date_time_ymd(2051, 6, 1);
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(certificate_validity(cert.der()).unwrap().1, 2_569_190_400);
        assert!(certificate_validity(b"\x30\x03\x02\x01\x00").is_none());
        assert!(certificate_validity(&[]).is_none());
    }
}
