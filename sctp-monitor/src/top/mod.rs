//! `sctp-monitor top`: the live view. A thread polls the agent's JSON API
//! (`client`) every interval and hands the answers to the UI thread, which
//! keeps the view's state (`state`), draws it (`ui`) and reads keys
//! (`input`). The agent is either another process, reached over HTTP
//! (`--connect`), or runs inside this one (`--iface`, `inproc`), its log
//! shown in the event pane (`logpipe`). The terminal is restored on exit, on
//! error and on panic (`ratatui::init` installs a panic hook that restores it
//! first); an in-process agent is stopped, detaching its programs, in every
//! one of those cases.

pub mod client;
pub mod inproc;
pub mod input;
pub mod logpipe;
pub mod state;
pub mod ui;

use std::{
    sync::mpsc,
    time::{Duration, Instant},
};

use ratatui::crossterm::event::{self, Event};

use self::{client::ApiUrl, state::App};

pub struct TopOptions {
    /// The agent's API, e.g. `http://127.0.0.1:9108`.
    pub connect: String,
    pub interval: Duration,
}

enum Msg {
    Snap(Box<client::Snapshot>),
    Err(String),
}

fn poller(api: Box<dyn client::Api>, interval: Duration, tx: mpsc::Sender<Msg>) {
    let mut since = 0u64;
    let mut n = 0u64;
    loop {
        let t0 = Instant::now();
        let msg = match client::poll(api.as_ref(), since, n.is_multiple_of(5)) {
            Ok(s) => {
                since = s.events.next;
                Msg::Snap(Box::new(s))
            }
            Err(e) => Msg::Err(format!("{e:#}")),
        };
        n += 1;
        if tx.send(msg).is_err() {
            return;
        }
        std::thread::sleep(interval.saturating_sub(t0.elapsed()));
    }
}

/// The view draws on stdout and reads keys from the terminal.
fn ensure_terminal() -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "the live view needs a terminal (stdin and stdout are not both one); for machine-readable \
             output use `sctp-monitor run` (JSON Lines) or the agent's API"
        );
    }
    Ok(())
}

/// `top --connect URL`: the view of an agent running elsewhere.
pub fn run(opts: TopOptions) -> anyhow::Result<()> {
    ensure_terminal()?;
    let url = ApiUrl::parse(&opts.connect)?;
    let shown = if opts.connect.contains("://") { opts.connect.clone() } else { format!("http://{}", opts.connect) };
    view(App::new(shown), Box::new(url), opts.interval, None)
}

/// What the view shows in place of a URL when the agent runs inside it.
pub const IN_PROCESS: &str = "in-process";

/// `top --iface IF...`: starts the agent in this process, shows it, and
/// stops it when the view ends. The logger must be `logpipe`'s: the agent's
/// log goes to the event pane, and to stderr when it cannot start and once
/// the terminal is restored.
pub fn run_with_agent(opts: crate::agent::AgentOptions, interval: Duration) -> anyhow::Result<()> {
    ensure_terminal()?;
    let capture = LogCapture::on();
    // Dropped (stopped) before `capture` also when unwinding.
    let (mut agent, api) = inproc::start(opts)?;
    let shown = view(App::new(IN_PROCESS.into()), Box::new(api), interval, Some(&agent));
    if agent.finished() {
        logpipe::reprint_recent();
    }
    drop(capture);
    let stopped = agent.stop();
    shown.and(stopped)
}

/// Turns `logpipe`'s capture off when dropped (also while unwinding), so the
/// lines of the agent stopping reach stderr.
struct LogCapture;

impl LogCapture {
    fn on() -> LogCapture {
        logpipe::capture(true);
        LogCapture
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        logpipe::capture(false);
    }
}

fn view(
    mut app: App,
    api: Box<dyn client::Api>,
    interval: Duration,
    agent: Option<&inproc::InProcessAgent>,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel();
    let interval = interval.max(Duration::from_millis(100));
    std::thread::Builder::new().name("top-poll".into()).spawn(move || poller(api, interval, tx))?;
    let mut terminal = ratatui::try_init().map_err(|e| {
        ratatui::restore();
        anyhow::anyhow!("cannot set up the terminal: {e}")
    })?;
    let result = (|| -> anyhow::Result<()> {
        loop {
            loop {
                match rx.try_recv() {
                    Ok(Msg::Snap(s)) => app.apply(*s, Instant::now()),
                    Ok(Msg::Err(e)) => app.failed(e),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        anyhow::bail!("the polling thread stopped")
                    }
                }
            }
            if agent.is_some_and(|a| a.finished()) {
                // A signal or an error stopped it; its last lines go to stderr.
                return Ok(());
            }
            if agent.is_some() {
                for line in logpipe::take() {
                    app.agent_log(line);
                }
            }
            terminal.draw(|f| ui::draw(f, &app))?;
            if event::poll(Duration::from_millis(200))? {
                match event::read()? {
                    Event::Key(k) => input::handle_key(&mut app, k),
                    Event::Resize(..) => terminal.autoresize()?,
                    _ => {}
                }
            }
            if app.quit {
                return Ok(());
            }
        }
    })();
    ratatui::restore();
    result
}
