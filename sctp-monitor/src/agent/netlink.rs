//! XDP programs attached through netlink (`ip link set dev X xdp ...`, old
//! loaders): they outlive the process that attached them, unlike bpf_link
//! attachments. The agent asks rtnetlink which program an interface runs and
//! removes a stale one of its own.

use std::io;

// rtnetlink constants (linux/rtnetlink.h, linux/if_link.h).
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const IFLA_XDP: u16 = 43;
const NLA_F_NESTED: u16 = 1 << 15;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_PROG_ID: u16 = 4;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_HW_PROG_ID: u16 = 7;
/// `XDP_ATTACHED_*`.
pub const XDP_ATTACHED_NONE: u8 = 0;
pub const XDP_ATTACHED_DRV: u8 = 1;
pub const XDP_ATTACHED_SKB: u8 = 2;
pub const XDP_ATTACHED_HW: u8 = 3;
pub const XDP_ATTACHED_MULTI: u8 = 4;
/// `XDP_FLAGS_*`.
const XDP_FLAGS_SKB_MODE: u32 = 2;
const XDP_FLAGS_DRV_MODE: u32 = 4;

/// What an interface's XDP hook holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpState {
    /// `XDP_ATTACHED_*`.
    pub attached: u8,
    pub prog_id: u32,
    pub drv_prog_id: u32,
    pub skb_prog_id: u32,
}

impl XdpState {
    /// `(program id, XDP_FLAGS_*_MODE)` of every attached program.
    pub fn programs(&self) -> Vec<(u32, u32)> {
        let mut v = Vec::new();
        if self.drv_prog_id != 0 {
            v.push((self.drv_prog_id, XDP_FLAGS_DRV_MODE));
        }
        if self.skb_prog_id != 0 {
            v.push((self.skb_prog_id, XDP_FLAGS_SKB_MODE));
        }
        if v.is_empty() && self.prog_id != 0 {
            let mode = if self.attached == XDP_ATTACHED_SKB { XDP_FLAGS_SKB_MODE } else { XDP_FLAGS_DRV_MODE };
            v.push((self.prog_id, mode));
        }
        v
    }
}

struct Sock(libc::c_int);

impl Drop for Sock {
    fn drop(&mut self) {
        // SAFETY: our fd.
        unsafe { libc::close(self.0) };
    }
}

fn open() -> io::Result<Sock> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Sock(fd))
}

fn push_attr(buf: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = 4 + value.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(value);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// nlmsghdr + ifinfomsg for `ifindex`, then `attrs`.
fn message(ty: u16, flags: u16, ifindex: u32, attrs: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + attrs.len());
    let len = 16 + 16 + attrs.len();
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid
    // ifinfomsg: family, pad, type, index, flags, change
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    m.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(attrs);
    m
}

fn roundtrip(msg: &[u8]) -> io::Result<Vec<u8>> {
    let s = open()?;
    // SAFETY: valid buffer.
    let n = unsafe { libc::send(s.0, msg.as_ptr().cast(), msg.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid buffer.
    let n = unsafe { libc::recv(s.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

/// Walks netlink attributes: `(type without flags, value)`.
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16_at(b, 0).unwrap_or(0) as usize;
        let ty = u16_at(b, 2).unwrap_or(0) & !NLA_F_NESTED;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((ty, &b[4..len]));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

/// Error code of an NLMSG_ERROR reply (0 = ACK), if the reply is one.
fn nl_error(reply: &[u8]) -> Option<i32> {
    if u16_at(reply, 4)? != NLMSG_ERROR {
        return None;
    }
    Some(i32::from_ne_bytes(reply.get(16..20)?.try_into().ok()?))
}

/// The XDP state of `ifindex`.
pub fn xdp_state(ifindex: u32) -> io::Result<XdpState> {
    let reply = roundtrip(&message(RTM_GETLINK, 0, ifindex, &[]))?;
    if let Some(e) = nl_error(&reply)
        && e != 0
    {
        return Err(io::Error::from_raw_os_error(-e));
    }
    if u16_at(&reply, 4).unwrap_or(NLMSG_DONE) != RTM_NEWLINK {
        return Ok(XdpState::default());
    }
    let len = (u32_at(&reply, 0).unwrap_or(0) as usize).min(reply.len());
    let mut st = XdpState::default();
    for (t, v) in attrs(reply.get(32..len).unwrap_or(&[])) {
        if t != IFLA_XDP {
            continue;
        }
        for (xt, xv) in attrs(v) {
            let val = u32_at(xv, 0).unwrap_or(0);
            match xt {
                IFLA_XDP_ATTACHED => st.attached = xv.first().copied().unwrap_or(0),
                IFLA_XDP_PROG_ID => st.prog_id = val,
                IFLA_XDP_DRV_PROG_ID => st.drv_prog_id = val,
                IFLA_XDP_SKB_PROG_ID => st.skb_prog_id = val,
                IFLA_XDP_HW_PROG_ID => {}
                _ => {}
            }
        }
    }
    Ok(st)
}

/// Attaches program `fd` (or detaches, with -1) through netlink in the mode
/// given by `mode_flags` (`XDP_FLAGS_*_MODE`). Fails with EBUSY when a
/// bpf_link owns the hook.
pub fn xdp_set(ifindex: u32, fd: i32, mode_flags: u32) -> io::Result<()> {
    let mut inner = Vec::new();
    push_attr(&mut inner, IFLA_XDP_FD, &fd.to_ne_bytes());
    push_attr(&mut inner, IFLA_XDP_FLAGS, &mode_flags.to_ne_bytes());
    let mut outer = Vec::new();
    push_attr(&mut outer, IFLA_XDP | NLA_F_NESTED, &inner);
    let reply = roundtrip(&message(RTM_SETLINK, NLM_F_ACK, ifindex, &outer))?;
    match nl_error(&reply) {
        Some(0) | None => Ok(()),
        Some(e) => Err(io::Error::from_raw_os_error(-e)),
    }
}

/// The mode flag to pass to [`xdp_set`] for generic (SKB) mode.
pub const SKB_MODE: u32 = XDP_FLAGS_SKB_MODE;
/// The mode flag for native (driver) mode.
pub const DRV_MODE: u32 = XDP_FLAGS_DRV_MODE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_walk_stops_on_bad_lengths() {
        let mut b = Vec::new();
        push_attr(&mut b, 1, &[1, 2, 3]);
        push_attr(&mut b, 2 | NLA_F_NESTED, &[9, 9, 9, 9]);
        b.extend_from_slice(&[2, 0, 7, 0]); // length 2: bad
        let a = attrs(&b);
        assert_eq!(a, vec![(1, &[1u8, 2, 3][..]), (2, &[9u8, 9, 9, 9][..])]);
    }

    #[test]
    fn programs_of_a_state() {
        let s = XdpState { attached: XDP_ATTACHED_SKB, prog_id: 7, drv_prog_id: 0, skb_prog_id: 0 };
        assert_eq!(s.programs(), vec![(7, SKB_MODE)]);
        let m = XdpState { attached: XDP_ATTACHED_MULTI, prog_id: 0, drv_prog_id: 3, skb_prog_id: 4 };
        assert_eq!(m.programs(), vec![(3, DRV_MODE), (4, SKB_MODE)]);
    }

    #[test]
    fn loopback_has_no_xdp_program_or_we_can_tell() {
        // Works unprivileged: RTM_GETLINK is allowed for everyone.
        let st = xdp_state(1).expect("RTM_GETLINK on lo");
        let _ = st.programs();
    }
}
