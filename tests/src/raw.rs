//! Raw Ethernet frames inside a pod (AF_PACKET), for EtherTypes no socket API speaks (PTP,
//! eCPRI, PPPoE, MPLS, LLDP...) and for frames with a source MAC that is not the pod's own.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::Lab;

/// A packet socket bound to one interface of a pod, receiving every frame it sees.
pub struct RawSocket {
    fd: OwnedFd,
    ifindex: i32,
}

fn ifindex(ifname: &str) -> i32 {
    let name = std::ffi::CString::new(ifname).expect("interface name without NUL");
    // SAFETY: a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
    assert_ne!(
        i,
        0,
        "no interface {ifname}: {}",
        std::io::Error::last_os_error()
    );
    i as i32
}

fn address(ifindex: i32) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut a: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    a.sll_family = libc::AF_PACKET as u16;
    a.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    a.sll_ifindex = ifindex;
    a.sll_halen = 6;
    a
}

impl RawSocket {
    /// Opens a socket on `ifname` inside `pod`'s network namespace; it stays in that namespace.
    pub fn open(lab: &Lab, pod: &str, ifname: &str) -> RawSocket {
        let ifname = ifname.to_string();
        lab.in_pod(pod, move || {
            let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
            // SAFETY: plain socket call; the result is checked.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto) };
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: fd is a fresh descriptor owned by nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let ifindex = ifindex(&ifname);
            let a = address(ifindex);
            // SAFETY: a valid sockaddr_ll and its length.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&a as *const libc::sockaddr_ll).cast(),
                    size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(rc, 0, "bind {ifname}: {}", std::io::Error::last_os_error());
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 50_000,
            };
            // SAFETY: a valid timeval and its length.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    size_of::<libc::timeval>() as u32,
                )
            };
            assert_eq!(rc, 0, "SO_RCVTIMEO: {}", std::io::Error::last_os_error());
            RawSocket { fd, ifindex }
        })
    }

    /// Sends one whole frame (header included) as given, padded to the Ethernet minimum.
    pub fn send(&self, frame: &[u8]) {
        let mut f = frame.to_vec();
        f.resize(f.len().max(60), 0);
        let a = address(self.ifindex);
        // SAFETY: a valid buffer, sockaddr_ll and lengths.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                f.as_ptr().cast(),
                f.len(),
                0,
                (&a as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(
            n,
            f.len() as isize,
            "sendto: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Every frame received within `wait` (outgoing copies included: filter by content).
    pub fn frames(&self, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            // SAFETY: a valid buffer and its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 {
                got.push(buf[..n as usize].to_vec());
            }
        }
        got
    }
}

/// An Ethernet frame: destination, source, EtherType, payload.
pub fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    assert_eq!(parts.len(), 6, "MAC {s:?}");
    for (b, p) in m.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).unwrap_or_else(|_| panic!("MAC {s:?}"));
    }
    m
}
