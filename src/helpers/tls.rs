//! TLS client settings for the helpers: the public web roots, plus a CA the operator
//! (`manager.ca_cert`) or a widget call (`certificate`) names.

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::config::Config;

#[derive(Debug)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// A client configuration trusting the web PKI roots and every certificate in `extra_ca`
/// (PEM). HTTP/1.1 only: the helpers make one plain request per call.
pub fn client_config(extra_ca: Option<&[u8]>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(pem) = extra_ca {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| TlsError(format!("invalid PEM certificate: {e}")))?;
            roots.add(cert).map_err(|e| TlsError(format!("unusable CA certificate: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsError("no PEM certificate found".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client configuration for talking to the manager: web roots plus `manager.ca_cert`.
pub fn manager_client_config(config: &Config) -> Result<Arc<ClientConfig>, TlsError> {
    let ca = match &config.manager.ca_cert {
        Some(path) => Some(
            std::fs::read(path).map_err(|e| TlsError(format!("cannot read manager.ca_cert {}: {e}", path.display())))?,
        ),
        None => None,
    };
    client_config(ca.as_deref()).map_err(|e| TlsError(format!("manager.ca_cert: {e}")))
}

/// An awc client using `tls`, with no default timeout (each call sets its own).
pub fn http_client(tls: Arc<ClientConfig>) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(tls))
        .disable_timeout()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_text_that_holds_no_certificate() {
        assert!(client_config(Some(b"not a certificate")).is_err());
        assert!(client_config(None).is_ok());
    }
}
