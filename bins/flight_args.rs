//! The Flight security options every tickertable binary takes, on both sides of the wire.
//!
//! A token is read from `--token-file` (its first line) or the `TICKERTABLE_TOKEN`
//! environment variable; `--token` works too but shows in `ps`, so prefer the other two.
//! TLS takes PEM files: a server's `--tls-cert` and `--tls-key` (and `--tls-client-ca` for
//! mutual TLS), a client's `--tls-ca` (and `--tls-cert`/`--tls-key` to present an identity).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tickertable::flight::{ClientTls, FlightOptions, ServerTls};

/// The environment variable holding the token, for servers and clients alike.
pub const TOKEN_ENV: &str = "TICKERTABLE_TOKEN";

/// A server's authentication and TLS options.
#[allow(clippy::doc_markdown)] // the field docs are `--help` text, shown as written
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Require `authorization: Bearer <TOKEN>` (or Basic `user:<TOKEN>`) from Flight clients.
    /// Shows in `ps`: prefer --token-file or the TICKERTABLE_TOKEN environment variable.
    #[arg(long, env = TOKEN_ENV, hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Read the token from the first line of this file.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Serve over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: require client certificates signed by this CA (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

impl ServeArgs {
    /// `options` with the token and TLS these arguments ask for.
    ///
    /// # Errors
    ///
    /// If a file cannot be read or the token file is empty.
    pub fn apply(&self, mut options: FlightOptions) -> Result<FlightOptions> {
        if let Some(token) = &self.token {
            options = options.with_token(token.clone());
        }
        if let Some(path) = &self.token_file {
            options = options
                .with_token_file(path)
                .with_context(|| format!("reading the token file {}", path.display()))?;
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let mut tls = ServerTls::from_files(cert, key).with_context(|| {
                format!("reading TLS files {} and {}", cert.display(), key.display())
            })?;
            if let Some(ca) = &self.tls_client_ca {
                tls = tls.with_client_ca(read(ca)?);
            }
            options = options.with_tls(tls);
        }
        Ok(options)
    }

    /// Whether clients need a token.
    pub fn wants_token(&self) -> bool {
        self.token.is_some() || self.token_file.is_some()
    }

    /// Whether the server speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls_cert.is_some()
    }
}

/// A client's authentication and TLS options.
#[allow(clippy::doc_markdown)] // the field docs are `--help` text, shown as written
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientArgs {
    /// The bearer token the server wants. Shows in `ps`: prefer --token-file or the
    /// TICKERTABLE_TOKEN environment variable.
    #[arg(long, env = TOKEN_ENV, hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Read the token from the first line of this file.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// For `grpc+tls://` URLs: trust servers whose certificate this CA signed (PEM).
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// Mutual TLS: present this certificate (PEM); needs --tls-key and --tls-ca.
    #[arg(long, value_name = "PEM", requires = "tls_key", requires = "tls_ca")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ClientArgs {
    /// The token, from the command line, the environment or the token file.
    ///
    /// # Errors
    ///
    /// If the token file cannot be read or holds no token.
    pub fn token(&self) -> Result<Option<String>> {
        if let Some(t) = &self.token {
            return Ok(Some(t.clone()));
        }
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the token file {}", path.display()))?;
        let token = text.lines().next().unwrap_or("").trim();
        anyhow::ensure!(
            !token.is_empty(),
            "the token file {} is empty",
            path.display()
        );
        Ok(Some(token.to_owned()))
    }

    /// The TLS settings, if a CA was given.
    ///
    /// # Errors
    ///
    /// If a file cannot be read.
    pub fn tls(&self) -> Result<Option<ClientTls>> {
        let Some(ca) = &self.tls_ca else {
            return Ok(None);
        };
        let mut tls = ClientTls::default().with_ca(read(ca)?);
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            tls = tls.with_identity(read(cert)?, read(key)?);
        }
        Ok(Some(tls))
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
