//! TLS for the Flight server and client (tonic over rustls, the `tls` feature).
//!
//! A server serves TLS with its certificate chain and private key, in PEM
//! ([`ServerTls`]); with a client CA it also asks every client for a certificate signed by
//! that CA (mutual TLS). A client trusts the CA it is given ([`ClientTls`]), may present its
//! own certificate, and connects to `grpc+tls://host:port` (or `https://`). pyarrow connects
//! with `flight.connect("grpc+tls://host:port", tls_root_certs=ca_pem)` (and
//! `cert_chain=`/`private_key=` for mutual TLS).

use std::path::Path;

use crate::error::{Error, Result};

/// A Flight server's TLS settings.
#[derive(Clone)]
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub struct ServerTls {
    pub(crate) cert: Vec<u8>,
    pub(crate) key: Vec<u8>,
    pub(crate) client_ca: Option<Vec<u8>>,
}

impl ServerTls {
    /// TLS with this certificate chain and private key, both PEM.
    pub fn new(cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            cert: cert_pem.into(),
            key: key_pem.into(),
            client_ca: None,
        }
    }

    /// TLS with the certificate chain and key in these PEM files.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a file cannot be read.
    pub fn from_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::new(std::fs::read(cert)?, std::fs::read(key)?))
    }

    /// Mutual TLS: clients must present a certificate signed by this CA (PEM).
    #[must_use]
    pub fn with_client_ca(mut self, ca_pem: impl Into<Vec<u8>>) -> Self {
        self.client_ca = Some(ca_pem.into());
        self
    }

    #[cfg(feature = "tls")]
    pub(crate) fn config(&self) -> tonic::transport::ServerTlsConfig {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let mut c = ServerTlsConfig::new().identity(Identity::from_pem(&self.cert, &self.key));
        if let Some(ca) = &self.client_ca {
            c = c.client_ca_root(Certificate::from_pem(ca));
        }
        c
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("mutual", &self.client_ca.is_some())
            .finish_non_exhaustive()
    }
}

/// A Flight client's TLS settings.
#[derive(Clone, Default)]
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub struct ClientTls {
    pub(crate) ca: Option<Vec<u8>>,
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) domain: Option<String>,
}

impl ClientTls {
    /// Trust the server certificates this CA (PEM) signed.
    #[must_use]
    pub fn with_ca(mut self, ca_pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(ca_pem.into());
        self
    }

    /// Present this certificate chain and key (PEM), for mutual TLS.
    #[must_use]
    pub fn with_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Check the server's certificate for this name instead of the URL's host.
    #[must_use]
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Reads the CA (and optionally an identity) from PEM files.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a file cannot be read.
    pub fn from_ca_file(ca: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::default().with_ca(std::fs::read(ca)?))
    }

    #[cfg(feature = "tls")]
    pub(crate) fn config(&self) -> Result<tonic::transport::ClientTlsConfig> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let Some(ca) = &self.ca else {
            return Err(Error::InvalidOption {
                option: "tls",
                reason: "a TLS client needs the CA to trust (ClientTls::with_ca)".into(),
            });
        };
        let mut c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let Some((cert, key)) = &self.identity {
            c = c.identity(Identity::from_pem(cert, key));
        }
        if let Some(d) = &self.domain {
            c = c.domain_name(d.clone());
        }
        Ok(c)
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.ca.is_some())
            .field("identity", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

/// The error for TLS asked of a build without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) fn unsupported() -> Error {
    Error::InvalidOption {
        option: "tls",
        reason: "this build of tickertable has no TLS (enable the `tls` feature)".into(),
    }
}
