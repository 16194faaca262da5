//! The listener's TLS (rustls, ring provider): a server configuration built
//! from the files of `tls_server_config` and rebuilt when they change, so
//! that a rotated certificate (cert-manager renews it, Kubernetes swaps the
//! Secret's files) is served without restarting the agent.
//!
//! Each new connection asks [`TlsFiles::current`] for the configuration;
//! the files' metadata (modification time, size, inode: a Secret volume
//! swaps a symlink) is looked at at most once per [`CHECK_EVERY`], and the
//! files are read again only when it changed. A change that does not load
//! (a key that does not match the new certificate, a half-written file) is
//! logged and the previous configuration is kept: the listener never goes
//! without a certificate once it had one.

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, anyhow, bail};
use rustls::{
    RootCertStore, ServerConfig,
    crypto::{CryptoProvider, ring},
    server::WebPkiClientVerifier,
    version::{TLS12, TLS13},
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::webconfig::{ClientAuth, MinVersion, TlsFiles};

/// How often the files are looked at, at most.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(p: &Path) -> Option<Stamp> {
    let m = fs::metadata(p).ok()?;
    Some(Stamp { modified: m.modified().ok(), len: m.len(), inode: m.ino() })
}

struct State {
    config: Arc<ServerConfig>,
    stamps: Vec<Option<Stamp>>,
    checked: Instant,
}

/// The TLS configuration of the listener, re-read when its files change.
pub struct Reloading {
    files: TlsFiles,
    state: Mutex<State>,
}

impl Reloading {
    /// Loads the files; an error here (missing file, no certificate in it,
    /// a key that does not match) stops the agent at start.
    pub fn new(files: TlsFiles) -> anyhow::Result<Reloading> {
        let stamps = files_of(&files).iter().map(|p| stamp(p)).collect();
        let config = Arc::new(build(&files)?);
        Ok(Reloading { files, state: Mutex::new(State { config, stamps, checked: Instant::now() }) })
    }

    /// The configuration for a new connection: the files' current one, or
    /// the last that loaded.
    pub fn current(&self) -> Arc<ServerConfig> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.checked.elapsed() < CHECK_EVERY {
            return st.config.clone();
        }
        st.checked = Instant::now();
        let stamps: Vec<Option<Stamp>> = files_of(&self.files).iter().map(|p| stamp(p)).collect();
        if stamps != st.stamps {
            match build(&self.files) {
                Ok(c) => {
                    log::info!("metrics listener: TLS files changed, serving the new certificate");
                    st.config = Arc::new(c);
                    st.stamps = stamps;
                }
                // Keep the stamps: the next check tries again, so a file
                // written in two steps loads once it is whole.
                Err(e) => {
                    log::warn!("metrics listener: TLS files changed but do not load, keeping the previous: {e:#}")
                }
            }
        }
        st.config.clone()
    }
}

fn files_of(f: &TlsFiles) -> Vec<&Path> {
    [Some(f.cert_file.as_path()), Some(f.key_file.as_path()), f.client_ca_file.as_deref()]
        .into_iter()
        .flatten()
        .collect()
}

/// rustls on *ring*: it builds with a C compiler alone, where aws-lc-rs
/// needs cmake. rustls marks it deprecated for its lack of post-quantum key
/// exchange, which an exporter's scrape does not need (its clients,
/// Prometheus and curl, negotiate X25519 or P-256 with it).
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn certs(p: &PathBuf, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = fs::read(p).with_context(|| format!("{what} {}", p.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{what} {}: {e}", p.display()))?;
    if certs.is_empty() {
        bail!("{what} {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it", p.display());
    }
    Ok(certs)
}

/// The server configuration of `files`, read now.
pub fn build(files: &TlsFiles) -> anyhow::Result<ServerConfig> {
    let chain = certs(&files.cert_file, "cert_file")?;
    let key_bytes = fs::read(&files.key_file).with_context(|| format!("key_file {}", files.key_file.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| anyhow!("key_file {}: no PEM private key in it ({e})", files.key_file.display()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match files.min_version {
        MinVersion::Tls12 => &[&TLS13, &TLS12],
        MinVersion::Tls13 => &[&TLS13],
    };
    let builder =
        ServerConfig::builder_with_provider(provider()).with_protocol_versions(versions).context("TLS versions")?;
    let builder = match (&files.client_ca_file, files.client_auth) {
        (Some(ca), auth @ (ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert)) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca, "client_ca_file")? {
                roots.add(c).map_err(|e| anyhow!("client_ca_file {}: {e}", ca.display()))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let v = if auth == ClientAuth::VerifyClientCertIfGiven { v.allow_unauthenticated() } else { v };
            builder.with_client_cert_verifier(v.build().context("client_ca_file")?)
        }
        _ => builder.with_no_client_auth(),
    };
    // No ALPN: the listener speaks HTTP/1.1 only, which a client assumes
    // when the server names no protocol.
    builder
        .with_single_cert(chain, key)
        .map_err(|e| anyhow!("cert_file {} and key_file {}: {e}", files.cert_file.display(), files.key_file.display()))
}
