//! The CA certificate(s) a `rediss` client trusts instead of the public
//! webpki roots.

use std::fmt;
use std::path::PathBuf;

use fencelock_core::{Error, Result};

/// Where the CA certificate(s) that verify the server come from.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum CaSource {
    /// A PEM file, read when the client is built.
    File(PathBuf),
    /// PEM bytes given directly.
    Pem(Vec<u8>),
}

impl fmt::Debug for CaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaSource::File(p) => f.debug_tuple("File").field(p).finish(),
            CaSource::Pem(b) => write!(f, "Pem(<{} bytes>)", b.len()),
        }
    }
}

impl CaSource {
    /// The root certificates for redis-rs, checked: the PEM must hold at
    /// least one certificate that rustls accepts as a trust anchor.
    pub(crate) fn load(&self) -> Result<redis::TlsCertificates> {
        let (what, pem) = match self {
            CaSource::File(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::invalid_config(format!(
                        "cannot read the TLS CA file {}: {e}",
                        path.display()
                    ))
                })?;
                (format!("the TLS CA file {}", path.display()), pem)
            }
            CaSource::Pem(pem) => ("the TLS CA PEM".to_string(), pem.clone()),
        };
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::invalid_config(format!(
                "{what} holds no PEM certificate (no \"-----BEGIN CERTIFICATE-----\" block)"
            )));
        }
        let certs = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        };
        // redis-rs parses the PEM into a root store here; a malformed one fails now, not at connect.
        redis::Client::build_with_tls("rediss://127.0.0.1:6379", certs.clone()).map_err(|e| {
            Error::invalid_config(format!("{what} is not a usable CA certificate: {e}"))
                .with_source(e)
        })?;
        Ok(certs)
    }
}
