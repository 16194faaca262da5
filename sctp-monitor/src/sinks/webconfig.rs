//! `run --web-config FILE`: the web configuration file of the Prometheus
//! exporters (exporter-toolkit's format, as node-exporter's
//! `--web.config.file`), so that one file and one habit serve every
//! exporter on a node. The subset read here: `tls_server_config` (server
//! certificate and key, client CA and client authentication policy,
//! minimum TLS version) and `basic_auth_users` (bcrypt hashes). A key
//! outside that subset is refused by name, as exporter-toolkit refuses
//! unknown keys: a setting silently ignored would be a security setting
//! that does not hold.
//!
//! Relative file names are relative to the configuration file's directory
//! (as in exporter-toolkit). The file is read once, at start; the
//! certificate, key and client CA files it names are re-read when they
//! change (`super::tls`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, anyhow, bail};
use serde::Deserialize;

/// The file as written: every key exporter-toolkit knows, so that the ones
/// not supported here get their own message rather than "unknown field".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<serde_yaml::Value>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<serde_yaml::Value>,
    key: Option<serde_yaml::Value>,
    client_ca_file: Option<String>,
    client_ca: Option<serde_yaml::Value>,
    client_auth_type: Option<String>,
    client_allowed_sans: Option<serde_yaml::Value>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<serde_yaml::Value>,
    curve_preferences: Option<serde_yaml::Value>,
    prefer_server_cipher_suites: Option<serde_yaml::Value>,
}

/// Which client certificates the server asks for and checks (the names
/// are Go's `tls.ClientAuthType`, which exporter-toolkit uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    NoClientCert,
    /// A client certificate, when sent, must chain to the client CA.
    VerifyClientCertIfGiven,
    /// Every client must send a certificate that chains to the client CA.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn parse(s: &str) -> anyhow::Result<ClientAuth> {
        Ok(match s {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            // Both accept a certificate without checking it against the
            // client CA: no authentication at all, only its appearance.
            "RequestClientCert" | "RequireAnyClientCert" => bail!(
                "client_auth_type {s} is not supported: it accepts client certificates without verifying them; \
                 use RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file"
            ),
            _ => bail!(
                "client_auth_type {s:?} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
            ),
        })
    }
}

/// The lowest TLS version the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinVersion {
    Tls12,
    Tls13,
}

/// `tls_server_config`, checked, with absolute file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
    pub client_auth: ClientAuth,
    pub min_version: MinVersion,
}

/// The web configuration: TLS (when the file has `tls_server_config`) and
/// the basic-auth users (user name to bcrypt hash; empty: no
/// authentication).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebConfig {
    pub tls: Option<TlsFiles>,
    pub basic_auth_users: BTreeMap<String, String>,
}

impl WebConfig {
    /// Reads and checks the file; the error names the file and what is
    /// wrong in it.
    pub fn load(path: &Path) -> anyhow::Result<WebConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("--web-config {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        WebConfig::parse(&text, dir).with_context(|| format!("--web-config {}", path.display()))
    }

    /// Parses the YAML `text`; relative file names are taken from `dir`.
    pub fn parse(text: &str, dir: &Path) -> anyhow::Result<WebConfig> {
        // An empty file is a valid, empty configuration (as in
        // exporter-toolkit): plain HTTP, no authentication.
        let raw: RawFile = if text.trim().is_empty() {
            RawFile::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| anyhow!("{e}"))?
        };
        if raw.http_server_config.is_some() {
            bail!("http_server_config is not supported by sctp-monitor (it serves HTTP/1.1 only and sets no headers)");
        }
        let mut users = raw.basic_auth_users.unwrap_or_default();
        for (user, hash) in &mut users {
            if user.contains(':') {
                bail!("basic_auth_users: the user name {user:?} contains ':', which basic authentication cannot carry");
            }
            *hash = hash.trim().to_string();
            hash.parse::<bcrypt::HashParts>().map_err(|e| {
                anyhow!(
                    "basic_auth_users: the password of {user:?} is not a bcrypt hash ({e}); \
                     make one with `htpasswd -nBC 10 {user}` and keep the part after ':'"
                )
            })?;
        }
        let tls = raw.tls_server_config.map(|t| tls_files(t, dir)).transpose().context("tls_server_config")?;
        Ok(WebConfig { tls, basic_auth_users: users })
    }
}

fn tls_files(t: RawTls, dir: &Path) -> anyhow::Result<TlsFiles> {
    let unsupported = [
        ("cert", t.cert.is_some(), "put the certificate in a file and name it with cert_file"),
        ("key", t.key.is_some(), "put the key in a file and name it with key_file"),
        ("client_ca", t.client_ca.is_some(), "put the CA certificates in a file and name it with client_ca_file"),
        ("client_allowed_sans", t.client_allowed_sans.is_some(), "every certificate the client CA signed is accepted"),
        ("max_version", t.max_version.is_some(), "the highest version is TLS 1.3"),
        ("cipher_suites", t.cipher_suites.is_some(), "rustls offers only modern suites"),
        ("curve_preferences", t.curve_preferences.is_some(), "rustls chooses among modern groups"),
        ("prefer_server_cipher_suites", t.prefer_server_cipher_suites.is_some(), "rustls chooses"),
    ];
    if let Some((key, _, hint)) = unsupported.iter().find(|u| u.1) {
        bail!("{key} is not supported by sctp-monitor ({hint})");
    }
    let file = |f: Option<String>| f.filter(|f| !f.is_empty()).map(|f| dir.join(f));
    let (cert_file, key_file) = match (file(t.cert_file), file(t.key_file)) {
        (Some(c), Some(k)) => (c, k),
        (None, _) => bail!("cert_file is required (the server's certificate chain, PEM)"),
        (_, None) => bail!("key_file is required (the server's private key, PEM)"),
    };
    let client_ca_file = file(t.client_ca_file);
    let client_auth = ClientAuth::parse(t.client_auth_type.as_deref().unwrap_or(""))?;
    match (client_auth, &client_ca_file) {
        (ClientAuth::NoClientCert, Some(_)) => {
            bail!("client_ca_file is set but client_auth_type is NoClientCert: set client_auth_type too")
        }
        (ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert, None) => {
            bail!("client_auth_type {client_auth:?} needs client_ca_file (the CA that signs the clients' certificates)")
        }
        _ => {}
    }
    let min_version = match t.min_version.as_deref() {
        None | Some("") | Some("TLS12") => MinVersion::Tls12,
        Some("TLS13") => MinVersion::Tls13,
        Some(v @ ("TLS10" | "TLS11")) => bail!("min_version {v} is not supported: the lowest is TLS12"),
        Some(v) => bail!("min_version {v:?} is not one of TLS12, TLS13"),
    };
    Ok(TlsFiles { cert_file, key_file, client_ca_file, client_auth, min_version })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real bcrypt hash (of "secret", cost 4).
    fn hash() -> String {
        bcrypt::hash("secret", 4).unwrap()
    }

    fn err(text: &str) -> String {
        format!("{:#}", WebConfig::parse(text, Path::new("/etc/sm")).unwrap_err())
    }

    #[test]
    fn a_full_configuration() {
        let text = format!(
            "tls_server_config:\n  cert_file: tls.crt\n  key_file: /keys/tls.key\n  client_ca_file: ca.crt\n  \
             client_auth_type: RequireAndVerifyClientCert\n  min_version: TLS13\nbasic_auth_users:\n  prometheus: '{}'\n",
            hash()
        );
        let c = WebConfig::parse(&text, Path::new("/etc/sm")).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert_file, Path::new("/etc/sm/tls.crt"), "relative to the file's directory");
        assert_eq!(tls.key_file, Path::new("/keys/tls.key"));
        assert_eq!(tls.client_ca_file.as_deref(), Some(Path::new("/etc/sm/ca.crt")));
        assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(tls.min_version, MinVersion::Tls13);
        assert_eq!(c.basic_auth_users.len(), 1);
    }

    #[test]
    fn empty_and_auth_only_files() {
        assert_eq!(WebConfig::parse("", Path::new("/")).unwrap(), WebConfig::default());
        let c = WebConfig::parse(&format!("basic_auth_users:\n  u: {}\n", hash()), Path::new("/")).unwrap();
        assert!(c.tls.is_none());
        assert!(c.basic_auth_users.contains_key("u"));
    }

    #[test]
    fn bad_files_get_a_clear_error() {
        assert!(
            err("tls_server_config:\n  cert_file: a\n  key_file: b\n  clent_auth_type: x\n")
                .contains("clent_auth_type")
        );
        assert!(err("tls_server_confg: {}\n").contains("unknown field `tls_server_confg`"));
        assert!(err("tls_server_config:\n  key_file: b\n").contains("cert_file is required"));
        assert!(err("tls_server_config:\n  cert_file: a\n").contains("key_file is required"));
        let e = err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n");
        assert!(e.contains("not supported") && e.contains("without verifying"), "{e}");
        let e = err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Sometimes\n");
        assert!(e.contains("\"Sometimes\" is not one of"), "{e}");
        let e =
            err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n");
        assert!(e.contains("needs client_ca_file"), "{e}");
        let e = err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n");
        assert!(e.contains("client_auth_type is NoClientCert"), "{e}");
        assert!(
            err("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n")
                .contains("lowest is TLS12")
        );
        assert!(
            err("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n").contains("cipher_suites")
        );
        assert!(err("http_server_config:\n  http2: false\n").contains("http_server_config is not supported"));
        let e = err("basic_auth_users:\n  prometheus: plaintext\n");
        assert!(e.contains("not a bcrypt hash") && e.contains("htpasswd"), "{e}");
        assert!(err("basic_auth_users:\n  'a:b': x\n").contains("contains ':'"));
        assert!(err("basic_auth_users: [1, 2]\n").contains("basic_auth_users"));
    }
}
