//! `sctp-monitor top`: the live view. A thread polls the agent's HTTP JSON
//! API (`client`) every interval and hands the answers to the UI thread,
//! which keeps the view's state (`state`), draws it (`ui`) and reads keys
//! (`input`). The terminal is restored on exit, on error and on panic
//! (`ratatui::init` installs a panic hook that restores it first).

pub mod client;
pub mod input;
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

fn poller(url: ApiUrl, interval: Duration, tx: mpsc::Sender<Msg>) {
    let mut since = 0u64;
    let mut n = 0u64;
    loop {
        let t0 = Instant::now();
        let msg = match client::poll(&url, since, n % 5 == 0) {
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

pub fn run(opts: TopOptions) -> anyhow::Result<()> {
    let url = ApiUrl::parse(&opts.connect)?;
    let shown = if opts.connect.contains("://") { opts.connect.clone() } else { format!("http://{}", opts.connect) };
    let (tx, rx) = mpsc::channel();
    let interval = opts.interval.max(Duration::from_millis(100));
    std::thread::Builder::new().name("top-poll".into()).spawn(move || poller(url, interval, tx))?;
    let mut app = App::new(shown);
    let mut terminal = ratatui::init();
    let result = (|| -> anyhow::Result<()> {
        loop {
            loop {
                match rx.try_recv() {
                    Ok(Msg::Snap(s)) => app.apply(*s, Instant::now()),
                    Ok(Msg::Err(e)) => app.failed(e),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => anyhow::bail!("the polling thread stopped"),
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
