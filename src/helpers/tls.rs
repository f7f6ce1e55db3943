//! TLS client settings for the helpers: the public web roots plus the CA the operator
//! names (`manager.ca_cert`), or only the CA a widget call names (`certificate`, which
//! like Node's `ca` option replaces the default roots).
//!
//! A certificate named there may also be the server's own self-signed certificate
//! (`openssl req -x509`, the usual way a manager is set up by hand). Node, through
//! OpenSSL, trusts such a certificate directly, within its validity dates; webpki
//! refuses a CA certificate as a server's, so [`TrustNamedCertificates`] accepts exactly
//! those certificates itself, unless they have expired or are not valid yet.

use std::sync::Arc;

use actix_tls::connect::Resolver;
use delegate::delegate;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::config::Config;

#[derive(Debug)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// Which certificates a client trusts.
#[derive(Clone, Copy)]
pub enum Trust<'a> {
    /// The web PKI roots built into wbe.
    WebRoots,
    /// The web roots and the PEM certificates given.
    WebRootsAnd(&'a [u8]),
    /// Only the PEM certificates given.
    Only(&'a [u8]),
}

/// The trust anchors for `trust`, and the certificates it names (trusted also as a
/// server's own certificate, see [`TrustNamedCertificates`]).
fn anchors(trust: Trust) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), TlsError> {
    let web_roots = || RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let (mut roots, pem) = match trust {
        Trust::WebRoots => return Ok((web_roots(), Vec::new())),
        Trust::WebRootsAnd(pem) => (web_roots(), pem),
        Trust::Only(pem) => (RootCertStore::empty(), pem),
    };
    let mut named = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| TlsError(format!("invalid PEM certificate: {e}")))?;
        roots.add(cert.clone()).map_err(|e| TlsError(format!("unusable CA certificate: {e}")))?;
        named.push(cert);
    }
    if named.is_empty() {
        return Err(TlsError("no PEM certificate found".into()));
    }
    Ok((roots, named))
}

/// A client configuration trusting what `trust` says. HTTP/1.1 only: the helpers make one
/// plain request per call.
pub fn client_config(trust: Trust) -> Result<Arc<ClientConfig>, TlsError> {
    let (roots, named) = anchors(trust)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError(format!("TLS setup failed: {e}")))?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(TrustNamedCertificates { webpki, named }))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The web PKI's verdict, except that a server presenting one of the certificates the
/// operator or the widget named is trusted as OpenSSL trusts it: for that host name only.
#[derive(Debug)]
struct TrustNamedCertificates {
    webpki: Arc<WebPkiServerVerifier>,
    named: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for TrustNamedCertificates {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        // webpki checks a certificate's dates before anything else, so an error about
        // them is about the named certificate itself and stands.
        let dates_wrong = matches!(
            &verdict,
            Err(rustls::Error::InvalidCertificate(
                CertificateError::Expired
                    | CertificateError::ExpiredContext { .. }
                    | CertificateError::NotValidYet
                    | CertificateError::NotValidYetContext { .. }
            ))
        );
        if verdict.is_err() && !dates_wrong && self.named.iter().any(|named| named.as_ref() == end_entity.as_ref()) {
            rustls::client::verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }
        verdict
    }

    // Signatures are checked as webpki checks them, whatever certificate was trusted.
    delegate! {
        to self.webpki {
            fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error>;
            fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error>;
            fn supported_verify_schemes(&self) -> Vec<SignatureScheme>;
        }
    }
}

/// The client configuration for talking to the manager: web roots plus `manager.ca_cert`.
pub fn manager_client_config(config: &Config) -> Result<Arc<ClientConfig>, TlsError> {
    let Some(path) = &config.manager.ca_cert else { return client_config(Trust::WebRoots) };
    let ca = std::fs::read(path).map_err(|e| TlsError(format!("cannot read manager.ca_cert {}: {e}", path.display())))?;
    client_config(Trust::WebRootsAnd(&ca)).map_err(|e| TlsError(format!("manager.ca_cert: {e}")))
}

/// Whether a client follows redirects itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// awc's own following (up to 10): for the manager and its auth check, whose
    /// redirects stay the operator's business.
    Follow,
    /// Left to the caller, which must judge every target (helper.Request's host policy).
    Return,
}

/// An awc client using `tls` and `resolver` for host names, with no default timeout
/// (each call sets its own).
pub fn http_client(tls: Arc<ClientConfig>, resolver: Resolver, redirects: Redirects) -> awc::Client {
    let tcp = actix_tls::connect::Connector::new(resolver).service();
    let builder = awc::Client::builder()
        .connector(awc::Connector::new().connector(tcp).rustls_0_23(tls))
        .disable_timeout();
    match redirects {
        Redirects::Follow => builder.finish(),
        Redirects::Return => builder.disable_redirects().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &[u8] = include_bytes!("testdata/ca.pem");

    #[test]
    fn rejects_text_that_holds_no_certificate() {
        assert!(client_config(Trust::Only(b"not a certificate")).is_err());
        assert!(client_config(Trust::WebRootsAnd(b"")).is_err());
        assert!(client_config(Trust::WebRoots).is_ok());
    }

    #[test]
    fn a_named_ca_is_added_to_the_web_roots_or_replaces_them() {
        let web = webpki_roots::TLS_SERVER_ROOTS.len();
        let (roots, named) = anchors(Trust::WebRootsAnd(CA)).unwrap();
        assert_eq!((roots.len(), named.len()), (web + 1, 1));
        let (roots, named) = anchors(Trust::Only(CA)).unwrap();
        assert_eq!((roots.len(), named.len()), (1, 1));
    }
}
