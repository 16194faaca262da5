//! The listener with a web configuration (`run --web-config`): TLS and
//! basic authentication, over real loopback TCP with certificates made
//! here (rcgen) and a rustls client.
//! - without a credential, or with a wrong password: 401 with
//!   `WWW-Authenticate: Basic`; the probes answer without one;
//! - client certificates: refused when client auth is required and the
//!   certificate is not the client CA's (or missing), accepted when it is;
//! - plain HTTP to the TLS port: a plain 400, never the metrics;
//! - the slow-client and size limits hold over TLS (a handshake that never
//!   finishes, trickled headers, an idle connection, a stalled reader,
//!   oversized headers and bodies, more connections than the limit);
//! - a rotated certificate (files rewritten in place) is served without a
//!   restart, and a broken rewrite keeps the previous one;
//! - bad configuration files stop `run` with a clear error;
//! - with root: the real agent behind TLS and basic auth, scraped by a
//!   real Prometheus server (`up` is 1 and the agent's series are there),
//!   curl with and without the credential; and the warning of a listener
//!   off loopback without a web configuration.
//!
//! The last needs root and prometheus and curl (`cargo xtask setup
//! --tests`); fixed namespace names, so run it under the shared lock:
//! `flock /tmp/sctpmon-kernel.lock cargo test -p sctp-monitor --test
//! listener_tls`.

mod support;

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use sctp_monitor::sinks::{
    http::{Limits, Security},
    tls::provider,
    webconfig::WebConfig,
};
use support::{
    NetNs,
    listener::{self, BIG},
    privileged,
    process::{Proc, TempDir, collect_lines, have, wait_until},
    veth,
};

const LIMITS: Limits = Limits {
    header_read_timeout: Duration::from_millis(1500),
    idle_timeout: Duration::from_millis(1500),
    max_connections: 4,
    max_header_bytes: 8192,
};

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

type Ca = CertifiedIssuer<'static, KeyPair>;

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("CA")
}

/// A certificate signed by `ca`: its PEM, its key's PEM, its DER.
struct Leaf {
    cert: String,
    key: String,
    der: CertificateDer<'static>,
}

fn leaf(ca: &Ca, name: &str, client: bool) -> Leaf {
    let mut p = CertificateParams::new(vec![name.to_string(), "127.0.0.1".to_string()]).expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages =
        vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
    let key = KeyPair::generate().expect("key");
    let cert = p.signed_by(&key, ca).expect("sign");
    Leaf { cert: cert.pem(), key: key.serialize_pem(), der: cert.der().clone() }
}

/// A server's files in `dir`: its certificate and key (by `ca`), the
/// client CA, and a web configuration with `tls_extra` under
/// `tls_server_config` and the test's user.
struct Server {
    dir: TempDir,
    ca: Ca,
    client_ca: Ca,
    cert: Leaf,
}

impl Server {
    fn new(tag: &str) -> Server {
        let dir = TempDir::new(tag);
        let (ca, client_ca) = (ca("server CA"), ca("client CA"));
        let cert = leaf(&ca, "localhost", false);
        dir.write("tls.crt", cert.cert.as_bytes());
        dir.write("tls.key", cert.key.as_bytes());
        dir.write("client-ca.crt", client_ca.pem().as_bytes());
        Server { dir, ca, client_ca, cert }
    }

    fn web_config(&self, tls_extra: &str) -> std::path::PathBuf {
        let hash = bcrypt::hash(PASSWORD, 6).expect("bcrypt");
        let text = format!(
            "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n{tls_extra}basic_auth_users:\n  {USER}: {hash}\n"
        );
        self.dir.write("web.yml", text.as_bytes())
    }

    /// The listener with this configuration.
    fn start(&self, tls_extra: &str) -> SocketAddr {
        let config = WebConfig::load(&self.web_config(tls_extra)).expect("web config");
        listener::start(LIMITS, Security::from_config(&config).expect("TLS files load"))
    }

    /// A client trusting the server's CA, with a certificate of `client`.
    fn client(&self, client: Option<&Leaf>) -> Arc<ClientConfig> {
        client_config(&self.ca, client)
    }
}

fn client_config(ca: &Ca, client: Option<&Leaf>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).expect("root");
    let b = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(match client {
        Some(l) => b
            .with_client_auth_cert(
                vec![l.der.clone()],
                PrivateKeyDer::from_pem_slice(l.key.as_bytes()).expect("client key"),
            )
            .expect("client cert"),
        None => b.with_no_client_auth(),
    })
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection with the handshake done.
fn tls_connect(addr: SocketAddr, cfg: &Arc<ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let conn = ClientConnection::new(cfg.clone(), ServerName::try_from("localhost").expect("name"))
        .map_err(std::io::Error::other)?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// Reads until the server closes (a close without close_notify counts, and
/// so does a reset or a broken pipe: rustls writes what it still has to
/// send before it reads).
fn read_all(s: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
                ) =>
            {
                return Ok(out);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sends `request` over TLS: the whole answer, or the error of the
/// handshake (or of the first read, where TLS 1.3 reports a refused client
/// certificate).
fn tls_request(addr: SocketAddr, cfg: &Arc<ClientConfig>, request: &str) -> std::io::Result<String> {
    let mut s = tls_connect(addr, cfg)?;
    // The server may answer and close before it read everything.
    let _ = s.write_all(request.as_bytes()).and_then(|_| s.flush());
    let raw = read_all(&mut s)?;
    if raw.is_empty() {
        return Err(std::io::Error::new(ErrorKind::ConnectionAborted, "closed without an answer"));
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

fn status(answer: &str) -> u16 {
    answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status line in {answer:.200}"))
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn get(path: &str, auth: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n")
}

#[test]
fn basic_authentication_over_tls() {
    let srv = Server::new("tls-auth");
    let addr = srv.start("");
    let c = srv.client(None);
    let answer = tls_request(addr, &c, &get("/metrics", "")).expect("TLS");
    assert_eq!(status(&answer), 401, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("www-authenticate: basic"), "{answer}");
    assert!(!answer.contains("Metrics"), "no metrics without a credential: {answer}");
    for (user, pw) in [(USER, "wrong"), ("nobody", PASSWORD), (USER, "")] {
        let answer = tls_request(addr, &c, &get("/api/associations", &basic(user, pw))).expect("TLS");
        assert_eq!(status(&answer), 401, "{user}:{pw}: {answer}");
    }
    for path in ["/metrics", "/api/associations", "/api/status"] {
        let answer = tls_request(addr, &c, &get(path, &basic(USER, PASSWORD))).expect("TLS");
        assert_eq!(status(&answer), 200, "{path}: {answer}");
    }
    assert!(tls_request(addr, &c, &get("/metrics", &basic(USER, PASSWORD))).unwrap().contains("Metrics"));
    // kubelet's probes carry no credential.
    for path in ["/healthz", "/readyz"] {
        assert_eq!(status(&tls_request(addr, &c, &get(path, "")).expect("TLS")), 200, "{path}");
    }
    // A client that does not trust the server's CA does not talk to it.
    let stranger = client_config(&ca("another CA"), None);
    let e = tls_request(addr, &stranger, &get("/metrics", &basic(USER, PASSWORD))).expect_err("untrusted server");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
}

#[test]
fn client_certificates_when_required_and_when_given() {
    let srv = Server::new("tls-mtls");
    let good = leaf(&srv.client_ca, "scraper", true);
    let bad = leaf(&ca("some other CA"), "intruder", true);
    let request = get("/metrics", &basic(USER, PASSWORD));

    let addr = srv.start("  client_ca_file: client-ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n");
    let answer = tls_request(addr, &srv.client(Some(&good)), &request).expect("the client CA's certificate");
    assert_eq!(status(&answer), 200, "{answer}");
    let e = tls_request(addr, &srv.client(Some(&bad)), &request).expect_err("a certificate of another CA");
    assert!(e.to_string().contains("UnknownCA"), "{e}");
    let e = tls_request(addr, &srv.client(None), &request).expect_err("no client certificate");
    assert!(e.to_string().contains("CertificateRequired"), "{e}");

    let addr = srv.start("  client_ca_file: client-ca.crt\n  client_auth_type: VerifyClientCertIfGiven\n");
    assert_eq!(status(&tls_request(addr, &srv.client(None), &request).expect("none given")), 200);
    assert_eq!(status(&tls_request(addr, &srv.client(Some(&good)), &request).expect("a good one")), 200);
    tls_request(addr, &srv.client(Some(&bad)), &request).expect_err("a bad one given");
}

#[test]
fn plain_http_to_the_tls_port_is_refused() {
    let srv = Server::new("tls-plain");
    let addr = srv.start("");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{}", get("/metrics", &basic(USER, PASSWORD))).unwrap();
    let answer = String::from_utf8_lossy(&read_all(&mut s).expect("answered and closed")).into_owned();
    assert_eq!(status(&answer), 400, "{answer}");
    assert!(answer.contains("speaks HTTPS"), "{answer}");
    assert!(!answer.contains("Metrics"));
}

#[test]
fn the_limits_hold_over_tls() {
    let srv = Server::new("tls-limits");
    let addr = srv.start("");
    let c = srv.client(None);
    let auth = basic(USER, PASSWORD);

    // A handshake that never finishes: one byte of a TLS record, then
    // nothing. Closed at the header read timeout.
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(&[0x16]).unwrap();
    let t = Instant::now();
    assert!(read_all(&mut raw).expect("closed").is_empty());
    assert!(t.elapsed() < LIMITS.header_read_timeout * 3, "closed after {:?}", t.elapsed());

    // Headers trickled over an established TLS connection, one byte every
    // 100 ms for three times the header timeout (the request is not whole
    // by then): the server must have closed it, so the read ends at once
    // rather than at its own short timeout.
    let mut s = tls_connect(addr, &c).expect("TLS");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: t\r\n{auth}X-Padding: {}\r\n\r\n", "a".repeat(60));
    let trickle = (LIMITS.header_read_timeout * 3).as_millis() as usize / 100;
    assert!(trickle < request.len());
    for b in &request.as_bytes()[..trickle] {
        if s.write_all(&[*b]).and_then(|_| s.flush()).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    s.sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let rest = read_all(&mut s).expect("the server closed the trickling connection");
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.is_empty() || status(&rest) == 408, "a trickled request was served: {rest:.200}");

    // An idle kept-alive connection is closed.
    let mut s = tls_connect(addr, &c).expect("TLS");
    write!(s, "GET /api/status HTTP/1.1\r\nHost: t\r\n{auth}\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).expect("answer");
    assert_eq!(status(&String::from_utf8_lossy(&buf[..n])), 200);
    let t = Instant::now();
    read_all(&mut s).expect("closed when idle");
    assert!(t.elapsed() < LIMITS.idle_timeout * 4, "idle connection kept {:?}", t.elapsed());

    // A reader that stops reading a large answer is dropped.
    let mut s = tls_connect(addr, &c).expect("TLS");
    write!(s, "{}", get("/api/events", &auth)).unwrap();
    let mut first = vec![0u8; 1024];
    s.read_exact(&mut first).expect("the answer starts");
    std::thread::sleep(LIMITS.idle_timeout * 3);
    let got = first.len() + read_all(&mut s).map(|r| r.len()).unwrap_or(0);
    assert!(got < BIG, "the whole {BIG}-byte answer arrived: the stalled reader was not dropped");

    // Sizes.
    let big = format!("GET /metrics HTTP/1.1\r\nHost: t\r\n{auth}X-Big: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(status(&tls_request(addr, &c, &big).expect("TLS")), 431);
    let body = format!("GET /metrics HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: 100000\r\n\r\n{}", "b".repeat(1000));
    assert_eq!(status(&tls_request(addr, &c, &body).expect("TLS")), 413);

    // Connections past the limit are closed; slots come back.
    let held: Vec<Tls> = (0..LIMITS.max_connections).map(|_| tls_connect(addr, &c).expect("TLS")).collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(tls_request(addr, &c, &get("/metrics", &auth)).is_err(), "a connection past the limit was served");
    drop(held);
    wait_until("a slot after the held connections closed", Duration::from_secs(10), || {
        tls_request(addr, &c, &get("/metrics", &auth)).ok().filter(|a| status(a) == 200)
    });
}

/// The certificate the server presents to a new connection.
fn served(addr: SocketAddr, c: &Arc<ClientConfig>) -> CertificateDer<'static> {
    let s = tls_connect(addr, c).expect("TLS");
    s.conn.peer_certificates().expect("a certificate")[0].clone().into_owned()
}

#[test]
fn a_rotated_certificate_is_served_without_a_restart() {
    let srv = Server::new("tls-rotate");
    let addr = srv.start("");
    let c = srv.client(None);
    assert_eq!(served(addr, &c), srv.cert.der);

    // Rewritten in place, key and certificate one after the other (as a
    // tool that is not careful would).
    let next = leaf(&srv.ca, "localhost", false);
    srv.dir.write("tls.key", next.key.as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    srv.dir.write("tls.crt", next.cert.as_bytes());
    wait_until("the new certificate to be served", Duration::from_secs(10), || {
        (served(addr, &c) == next.der).then_some(())
    });

    // As Kubernetes updates a Secret volume: new files, then a rename.
    let third = leaf(&srv.ca, "localhost", false);
    srv.dir.write("tls.key.new", third.key.as_bytes());
    srv.dir.write("tls.crt.new", third.cert.as_bytes());
    std::fs::rename(srv.dir.path("tls.key.new"), srv.dir.path("tls.key")).unwrap();
    std::fs::rename(srv.dir.path("tls.crt.new"), srv.dir.path("tls.crt")).unwrap();
    wait_until("the third certificate to be served", Duration::from_secs(10), || {
        (served(addr, &c) == third.der).then_some(())
    });

    // A broken file: the last good certificate stays.
    srv.dir.write("tls.crt", b"not a certificate\n");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(served(addr, &c), third.der, "a broken rewrite keeps the previous certificate");
    let answer = tls_request(addr, &c, &get("/metrics", &basic(USER, PASSWORD))).expect("still served");
    assert_eq!(status(&answer), 200);
}

/// `sctp-monitor run` with a web configuration file holding `text`: exit
/// code and stderr.
fn run_with(dir: &Path, text: &str) -> (Option<i32>, String) {
    let f = dir.join("web.yml");
    std::fs::write(&f, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sctp-monitor"))
        .args(["run", "--events", "off", "--metrics", "127.0.0.1:0", "--web-config"])
        .arg(&f)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_web_configurations_stop_run_with_a_clear_error() {
    let srv = Server::new("tls-bad");
    let d = &srv.dir.0;
    let (code, err) = run_with(d, "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  clientauth: x\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("web.yml") && err.contains("unknown field `clientauth`"), "{err}");
    let (code, err) = run_with(d, "basic_auth_users:\n  prometheus: hunter2\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a bcrypt hash"), "{err}");
    let (code, err) = run_with(
        d,
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  client_auth_type: RequireAnyClientCert\n",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("RequireAnyClientCert is not supported"), "{err}");
    let (code, err) = run_with(d, "tls_server_config:\n  cert_file: missing.crt\n  key_file: tls.key\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("missing.crt") && err.contains("No such file"), "{err}");
    // A key that is not the certificate's.
    let other = leaf(&srv.ca, "localhost", false);
    srv.dir.write("other.key", other.key.as_bytes());
    let (code, err) = run_with(d, "tls_server_config:\n  cert_file: tls.crt\n  key_file: other.key\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("other.key"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

const NS: &str = "sctpmon-tls";
const PORT: u16 = 9128;
const PROM_PORT: u16 = 9138;

/// An agent on one veth of `ns`, with `args`; its stderr lines.
fn agent(ns: &NetNs, args: &[&str]) -> (Proc, support::process::Lines) {
    let mut cmd = ns.cmd(env!("CARGO_BIN_EXE_sctp-monitor"));
    cmd.args(["run", "-i", "smtls1", "--events", "off", "--poll-interval-ms", "200"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn(cmd, "the agent");
    let lines = collect_lines(p.child.as_mut().unwrap().stderr.take().unwrap(), "agent");
    (p, lines)
}

#[test]
fn the_real_agent_behind_tls_and_basic_auth_is_scraped_by_prometheus() {
    if !privileged("the_real_agent_behind_tls_and_basic_auth_is_scraped_by_prometheus") {
        return;
    }
    for tool in ["prometheus", "curl"] {
        if !have(tool) {
            assert!(std::env::var_os("CI").is_none(), "{tool} not found: run `cargo xtask setup --tests`");
            eprintln!("SKIPPED: {tool} not found (cargo xtask setup --tests)");
            return;
        }
    }
    let a = NetNs::new(NS);
    let b = NetNs::new("sctpmon-tls-b");
    veth(&a, "smtls1", &b, "smtls1p");
    let srv = Server::new("tls-agent");

    // Off loopback without a web configuration: the warning says what is open.
    let (mut plain, log) = agent(&a, &["--metrics", &format!("0.0.0.0:{PORT}")]);
    let warning = wait_until("the warning about an open listener", Duration::from_secs(30), || {
        log.lock().unwrap().iter().find(|l| l.contains("not on loopback")).cloned()
    });
    for what in ["/metrics", "JSON API", "peers' addresses", "--web-config"] {
        assert!(warning.contains(what), "the warning names {what}: {warning}");
    }
    plain.stop();

    let web = srv.web_config("");
    let (mut agent, log) =
        agent(&a, &["--metrics", &format!("127.0.0.1:{PORT}"), "--web-config", web.to_str().unwrap()]);
    wait_until("the agent's listener", Duration::from_secs(30), || {
        log.lock().unwrap().iter().find(|l| l.contains(&format!("https://127.0.0.1:{PORT}/metrics"))).cloned()
    });
    assert!(!log.lock().unwrap().iter().any(|l| l.contains("not on loopback")));

    let ca_file = srv.dir.write("ca.crt", srv.ca.pem().as_bytes());
    let curl = |auth: Option<&str>, path: &str| -> (String, String) {
        let mut c = a.cmd("curl");
        c.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10", "--cacert"])
            .arg(&ca_file)
            .args(["--resolve", &format!("localhost:{PORT}:127.0.0.1")]);
        if let Some(u) = auth {
            c.args(["-u", u]);
        }
        let out = c.arg(format!("https://localhost:{PORT}{path}")).output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.to_string(), body.to_string())
    };
    let (code, _) = wait_until("the agent answers over TLS", Duration::from_secs(30), || {
        Some(curl(None, "/readyz")).filter(|(c, _)| c == "200")
    });
    assert_eq!(code, "200");
    assert_eq!(curl(None, "/api/associations").0, "401");
    assert_eq!(curl(Some(&format!("{USER}:nope")), "/api/associations").0, "401");
    let (code, body) = curl(Some(&format!("{USER}:{PASSWORD}")), "/api/associations");
    assert_eq!(code, "200", "{body}");
    serde_json::from_str::<serde_json::Value>(&body).expect("the associations document");

    // Prometheus scrapes it as its scrape config says: https, the CA,
    // basic auth.
    let prom = srv.dir.path("prom");
    std::fs::create_dir_all(prom.join("data")).unwrap();
    srv.dir.write("password", PASSWORD.as_bytes());
    let cfg = srv.dir.write(
        "prometheus.yml",
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sctp-monitor\n    scheme: https\n    \
             scrape_timeout: 900ms\n    tls_config:\n      ca_file: {ca}\n      server_name: localhost\n    \
             basic_auth:\n      username: {USER}\n      password_file: {pw}\n    static_configs:\n      \
             - targets: ['127.0.0.1:{PORT}']\n",
            ca = ca_file.display(),
            pw = srv.dir.path("password").display()
        )
        .as_bytes(),
    );
    let mut pc = a.cmd("prometheus");
    pc.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{PROM_PORT}"))
        .arg(format!("--storage.tsdb.path={}", prom.join("data").display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(prom.join("prometheus.log")).unwrap());
    let _prom = Proc::spawn(pc, "prometheus");
    let query = |q: &str| -> Option<serde_json::Value> {
        let path = format!("/api/v1/query?query={q}");
        let (code, body) = support::http::get(&a, "127.0.0.1", PROM_PORT, &path, None)?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    };
    let up = wait_until("Prometheus to scrape the agent (up == 1)", Duration::from_secs(60), || {
        query("up").filter(|v| v["data"]["result"][0]["value"][1] == "1")
    });
    eprintln!("up: {up}");
    let series = wait_until("the agent's series in Prometheus", Duration::from_secs(30), || {
        query("count(%7B__name__%3D~%22sctp_monitor_.%2B%22%7D)")
            .filter(|v| v["data"]["result"][0]["value"][1].is_string())
    });
    let n: u64 = series["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(n > 10, "sctp_monitor_ series scraped over TLS: {series}");
    let build = query("sctp_monitor_build_info").expect("query");
    assert_eq!(build["data"]["result"].as_array().map(Vec::len), Some(1), "{build}");
    assert!(agent.stop().success());
}
