//! `top --iface`: the agent inside the view's process. It is the same agent
//! as `sctp-monitor run` (`crate::agent::run_embedded`: same loading,
//! attaching, pipeline and answers), on its own thread with its own tokio
//! runtime. The view asks it the same API queries the HTTP listener would
//! (`crate::sinks::http::route`), over the agent's query channel instead of a
//! socket, so the documents the view reads are byte for byte the HTTP ones
//! and no port is opened unless `--metrics` asks for one.

use std::{sync::mpsc as std_mpsc, thread::JoinHandle};

use anyhow::{Context as _, anyhow, bail};
use tokio::sync::{mpsc, oneshot};

use super::client::Api;
use crate::agent::{self, AgentOptions, Embedding};
use crate::sinks::http::{self, Asked};

/// The running agent: stopping it detaches every program.
pub struct InProcessAgent {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The agent's API, without HTTP.
pub struct InProcessApi {
    queries: mpsc::Sender<Asked>,
}

/// Starts the agent and returns once its programs are attached, or with the
/// reason it could not start (privileges, interface names, kernel).
pub fn start(opts: AgentOptions) -> anyhow::Result<(InProcessAgent, InProcessApi)> {
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let thread = std::thread::Builder::new().name("agent".into()).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(agent::run_embedded(opts, Some(Embedding { ready: ready_tx, stop: stop_rx })))
    })?;
    let mut handle = InProcessAgent { stop: Some(stop_tx), thread: Some(thread) };
    match ready_rx.recv() {
        Ok(queries) => Ok((handle, InProcessApi { queries })),
        // The agent returned before it was ready: its error says why.
        Err(_) => Err(handle.stop().err().unwrap_or_else(|| anyhow!("the agent stopped while starting"))),
    }
}

impl InProcessAgent {
    /// The agent has stopped by itself (a signal, an error, a panic).
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the agent (detaching every program) and returns how it ended.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| anyhow!("the agent panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for InProcessAgent {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            log::error!("{e:#}");
        }
    }
}

impl Api for InProcessApi {
    fn get(&self, path: &str) -> anyhow::Result<String> {
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let query = http::route(p, q, "").map_err(|(code, msg)| anyhow!("{path}: {code} {msg}"))?;
        let (tx, rx) = oneshot::channel();
        self.queries.blocking_send(Asked { query, reply: tx }).map_err(|_| anyhow!("the agent has stopped"))?;
        let (status, _, body) = rx.blocking_recv().context("the agent has stopped")?;
        if status != 200 {
            bail!("GET {path}: {status}: {}", body.trim());
        }
        Ok(body)
    }
}
