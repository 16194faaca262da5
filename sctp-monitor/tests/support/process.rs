//! Child processes and scratch directories of the tests that run the real
//! agent (and peers): killed and removed on drop, kept for reading when the
//! test failed.

use std::{
    fs,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

/// A child process, killed and reaped on drop.
pub struct Proc {
    /// `None` once reaped.
    pub child: Option<Child>,
    /// What it is, for messages.
    pub what: String,
}

impl Proc {
    pub fn spawn(mut cmd: Command, what: &str) -> Proc {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Proc { child: Some(child), what: what.to_string() }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for exit (and reaps), at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                self.child = None;
                return st;
            }
            assert!(Instant::now() < deadline, "{} did not exit within {timeout:?}", self.what);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status (at most 10 s).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(10))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A directory removed on drop (kept when the test failed, for reading).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("sctpmon-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `bytes` to the file `name` in the directory; its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, bytes).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test outputs kept in {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Polls `f` until it returns a value; panics naming `what` after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a command is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The JSON objects of a JSON Lines file (unparsable lines skipped).
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// A child's output lines (the agent's log), collected for assertions.
pub type Lines = Arc<Mutex<Vec<String>>>;

/// Collects the lines of `r` as they come, echoing them to stderr under `who`.
pub fn collect_lines(r: impl Read + Send + 'static, who: &str) -> Lines {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (l, who) = (lines.clone(), who.to_string());
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            eprintln!("  {who}: {line}");
            l.lock().unwrap().push(line);
        }
    });
    lines
}

/// The usrsctp peer (`tests/peer/sctp_peer.c`), built once per test binary
/// into cargo's test scratch directory (built aside, then renamed, so a
/// concurrent build never runs a half-written file).
pub fn peer_binary() -> PathBuf {
    static PEER: OnceLock<PathBuf> = OnceLock::new();
    PEER.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/sctp_peer.c");
        // Cargo's scratch directory of integration tests; benches and
        // examples that include this module use the system's.
        let dir = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let out = dir.join("sctp_peer");
        let tmp = out.with_extension(std::process::id().to_string());
        assert!(Path::new("/usr/include/usrsctp.h").exists(), "usrsctp.h missing: run `cargo xtask setup --tests`");
        let st = Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(&tmp)
            .arg(&src)
            .args(["-lusrsctp", "-lpthread"])
            .status()
            .expect("gcc (run `cargo xtask setup --tests`)");
        assert!(st.success(), "building the usrsctp peer failed");
        fs::rename(&tmp, &out).expect("rename the peer binary");
        out
    })
    .clone()
}
