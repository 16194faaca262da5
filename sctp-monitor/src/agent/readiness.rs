//! `/readyz`: ready means attached. 200 when every requested interface has
//! both programs, 503 naming the missing ones and why, so an orchestrator
//! sends no traffic expectations to (and a rollout does not proceed past)
//! an agent that monitors less than it was asked to.
//!
//! Requested interfaces: those named with `-i`; without `-i`, every
//! interface that is up except loopback (at least one must be attached;
//! an interface refused because another tool's XDP program holds it is
//! listed under `refused` and does not keep the agent unready). An
//! attached interface counts only when the device of that name is still
//! the one the programs were attached to (same ifindex) and the kernel
//! shows our XDP program on it (rtnetlink); the tcx egress link dies with
//! the device and is held by this process.
//!
//! `/healthz` is liveness: it answers 200 whenever the agent's loop runs,
//! whatever the interfaces.

use serde::Serialize;

/// What the kernel and the agent say about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    /// The ifindex the programs were attached to, if attached.
    pub attached_ifindex: Option<u32>,
    /// The ifindex the name has now, if it exists.
    pub current_ifindex: Option<u32>,
    /// Our XDP program is on `attached_ifindex` (rtnetlink).
    pub xdp_ours: bool,
    /// Why the agent refused it (another tool's program...).
    pub refused: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Missing {
    pub interface: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReadyDoc {
    pub ready: bool,
    /// `named` (-i) or `automatic`.
    pub mode: &'static str,
    /// Interfaces with both programs.
    pub attached: Vec<String>,
    pub missing: Vec<Missing>,
    /// Automatic mode: interfaces left alone on purpose (listed, not
    /// counted as missing).
    pub refused: Vec<Missing>,
}

impl ReadyDoc {
    /// HTTP status: 200 ready, 503 not.
    pub fn status(&self) -> u16 {
        if self.ready { 200 } else { 503 }
    }
}

/// Decides readiness from what was seen of each requested interface.
pub fn evaluate(named: bool, seen: &[Seen]) -> ReadyDoc {
    let mut doc = ReadyDoc {
        ready: false,
        mode: if named { "named" } else { "automatic" },
        attached: Vec::new(),
        missing: Vec::new(),
        refused: Vec::new(),
    };
    for s in seen {
        let why = match (s.attached_ifindex, s.current_ifindex) {
            (Some(a), Some(c)) if a == c && s.xdp_ours => {
                doc.attached.push(s.name.clone());
                continue;
            }
            (Some(_), Some(_)) if s.current_ifindex != s.attached_ifindex => {
                "the device was replaced (new ifindex) and is not attached yet".to_string()
            }
            (Some(_), Some(_)) => "its XDP program is not on the device any more".to_string(),
            (Some(_), None) => "the interface is gone".to_string(),
            (None, None) => "the interface does not exist".to_string(),
            (None, Some(_)) => match &s.refused {
                Some(r) if !named => {
                    doc.refused.push(Missing { interface: s.name.clone(), reason: r.clone() });
                    continue;
                }
                Some(r) => format!("refused: {r}"),
                None => "not attached yet".to_string(),
            },
        };
        doc.missing.push(Missing { interface: s.name.clone(), reason: why });
    }
    if !named && doc.attached.is_empty() && doc.missing.is_empty() {
        doc.missing.push(Missing {
            interface: "*".into(),
            reason: "no interface is up besides loopback (or every one was refused)".into(),
        });
    }
    doc.ready = doc.missing.is_empty();
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, attached: Option<u32>, current: Option<u32>, ours: bool) -> Seen {
        Seen { name: name.into(), attached_ifindex: attached, current_ifindex: current, xdp_ours: ours, refused: None }
    }

    #[test]
    fn named_interfaces_are_ready_only_all_together() {
        let ok = evaluate(true, &[seen("a", Some(4), Some(4), true), seen("b", Some(5), Some(5), true)]);
        assert!(ok.ready && ok.status() == 200 && ok.attached == ["a", "b"], "{ok:?}");
        let cases = [
            (seen("b", Some(5), None, false), "gone"),
            (seen("b", Some(5), Some(9), false), "replaced"),
            (seen("b", Some(5), Some(5), false), "XDP program"),
            (seen("b", None, Some(9), false), "not attached"),
            (seen("b", None, None, false), "does not exist"),
        ];
        for (b, why) in cases {
            let d = evaluate(true, &[seen("a", Some(4), Some(4), true), b]);
            assert_eq!(d.status(), 503);
            assert_eq!(d.missing.len(), 1);
            assert_eq!(d.missing[0].interface, "b");
            assert!(d.missing[0].reason.contains(why), "{d:?}");
        }
    }

    #[test]
    fn automatic_mode_lists_refused_interfaces_and_needs_one_attached() {
        let mut other = seen("cilium", None, Some(7), false);
        other.refused = Some("another XDP program".into());
        let d = evaluate(false, &[seen("eth0", Some(2), Some(2), true), other.clone()]);
        assert!(d.ready && d.refused.len() == 1, "{d:?}");
        let none = evaluate(false, &[other.clone()]);
        assert!(!none.ready && none.missing[0].interface == "*", "{none:?}");
        other.name = "eth1".into();
        let named = evaluate(true, &[other]);
        assert!(!named.ready && named.missing[0].reason.starts_with("refused"), "{named:?}");
    }
}
