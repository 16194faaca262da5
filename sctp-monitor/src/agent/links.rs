//! Link state of the monitored interfaces, as rtnetlink announces it
//! (`RTMGRP_LINK`): a thread reads the kernel's link messages and sends each
//! change of an interface's carrier (`IFF_LOWER_UP`, cleared too when the
//! interface is set down) to the agent's loop, which takes the paths through
//! an interface that went down down at once.

use std::io;

use tokio::sync::mpsc;

const RTMGRP_LINK: u32 = 1;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x1_0000;

/// A change of an interface's link: `(ifindex, up)`.
pub type LinkChange = (u32, bool);

/// Starts the watcher thread; changes arrive on the returned channel.
pub fn watch() -> io::Result<mpsc::UnboundedReceiver<LinkChange>> {
    // SAFETY: plain syscalls on our own socket and a local sockaddr.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    sa.nl_groups = RTMGRP_LINK;
    // SAFETY: a valid sockaddr_nl of its size.
    let r = unsafe { libc::bind(fd, (&raw const sa).cast(), size_of::<libc::sockaddr_nl>() as libc::socklen_t) };
    if r < 0 {
        let e = io::Error::last_os_error();
        // SAFETY: our fd.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new().name("links".into()).spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut last: Vec<LinkChange> = Vec::new();
        loop {
            // SAFETY: a valid buffer of its length.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            for change in parse(&buf[..n as usize]) {
                match last.iter_mut().find(|(i, _)| *i == change.0) {
                    Some(l) if l.1 == change.1 => continue,
                    Some(l) => l.1 = change.1,
                    None => last.push(change),
                }
                if tx.send(change).is_err() {
                    // SAFETY: our fd.
                    unsafe { libc::close(fd) };
                    return;
                }
            }
        }
    })?;
    Ok(rx)
}

/// The link changes in one datagram of rtnetlink messages.
pub fn parse(mut b: &[u8]) -> Vec<LinkChange> {
    let mut out = Vec::new();
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        if len < 16 || len > b.len() {
            break;
        }
        // ifinfomsg after the 16-byte header: family, pad, type, index, flags.
        if (ty == RTM_NEWLINK || ty == RTM_DELLINK) && len >= 32 {
            let index = i32::from_ne_bytes([b[20], b[21], b[22], b[23]]) as u32;
            let flags = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
            let up = ty == RTM_NEWLINK && flags & IFF_UP != 0 && flags & IFF_LOWER_UP != 0;
            out.push((index, up));
        }
        b = &b[len.next_multiple_of(4).min(b.len())..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, index: i32, flags: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&32u32.to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[0, 0, 1, 0]);
        m.extend_from_slice(&index.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m
    }

    #[test]
    fn carrier_and_admin_state_make_the_link_state() {
        let mut d = msg(RTM_NEWLINK, 7, IFF_UP | IFF_LOWER_UP);
        d.extend(msg(RTM_NEWLINK, 8, IFF_UP));
        d.extend(msg(RTM_NEWLINK, 9, IFF_LOWER_UP));
        d.extend(msg(RTM_DELLINK, 10, IFF_UP | IFF_LOWER_UP));
        assert_eq!(parse(&d), vec![(7, true), (8, false), (9, false), (10, false)]);
        assert_eq!(parse(&d[..20]), vec![], "a cut message is ignored");
    }
}
