//! The benchmark's floor: a UDP server that does no DNS work at all.
//!
//! `reflector ADDR:PORT [THREADS]`
//!
//! Each thread owns one blocking UDP socket (with more than one thread, all
//! bound to the same address with `SO_REUSEPORT`, so the kernel spreads the
//! clients over them) and loops: `recvmmsg` up to 32 datagrams, turn every
//! datagram that looks like a query into a header-only NOERROR response in
//! place, send them all back with one `sendmmsg`. What a DNS server spends
//! per answer above this loop's CPU time is the cost of its DNS work and
//! of its own I/O design; the loop itself is the least any UDP server on
//! this kernel can spend (bench/README.md, "The floor").
//!
//! The response keeps the query's ID, opcode, RD, question and additional
//! section (an EDNS OPT stays as it is), so it is exactly as long as the
//! query: no lookup, no name compression, no copy.

use std::io;
use std::mem;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::ptr;
use std::thread;

use socket2::{Domain, Protocol, Socket, Type};

/// Datagrams per `recvmmsg` / `sendmmsg`.
const BATCH: usize = 32;
/// Larger than any query dnsperf or dig sends; a longer datagram is dropped
/// (MSG_TRUNC) rather than answered with a cut-off copy.
const BUF_LEN: usize = 4096;
const HEADER_LEN: usize = 12;
/// SO_RCVBUF asked for, the same as Outpost's UDP sockets (src/udp.rs).
const RECV_BUFFER: usize = 4 << 20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let usage = || {
        eprintln!("usage: reflector ADDR:PORT [THREADS]");
        ExitCode::from(2)
    };
    let (addr, threads) = match args.as_slice() {
        [_, addr] => (addr, "1"),
        [_, addr, threads] => (addr, threads.as_str()),
        _ => return usage(),
    };
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("reflector: `{addr}` is not an ADDR:PORT");
        return usage();
    };
    let threads = match threads.parse::<usize>() {
        Ok(n) if n >= 1 => n,
        _ => {
            eprintln!("reflector: THREADS `{threads}` is not a positive number");
            return usage();
        }
    };
    // Every socket is bound before any thread starts, so a port clash ends
    // the process at once instead of leaving a half-served port.
    let mut sockets = Vec::with_capacity(threads);
    for _ in 0..threads {
        match bind(addr, threads > 1) {
            Ok(s) => sockets.push(s),
            Err(e) => {
                eprintln!("reflector: cannot bind UDP {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let last = sockets.pop().expect("at least one socket");
    for (i, sock) in sockets.into_iter().enumerate() {
        thread::Builder::new()
            .name(format!("reflector-{i}"))
            .spawn(move || {
                let e = reflect(&sock);
                eprintln!("reflector: UDP {addr}: {e}");
                std::process::exit(1);
            })
            .expect("spawn a reflector thread");
    }
    let e = reflect(&last);
    eprintln!("reflector: UDP {addr}: {e}");
    ExitCode::FAILURE
}

fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    // As Outpost's UDP sockets: with 1,600 queries outstanding, the
    // default 208 KiB queue overflows whenever the thread is descheduled,
    // and a floor that drops queries is no floor. The kernel caps it at
    // net.core.rmem_max, which is no reason to stop.
    let _ = sock.set_recv_buffer_size(RECV_BUFFER);
    // As Outpost's too: IPv4 datagrams with DF set, which spares the
    // kernel drawing an IP ID for each, so the floor stays the floor.
    outpost::udp::dont_fragment(&sock, addr)?;
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// Turns a query into its response in place; false if the datagram is no
/// query (too short for a header, or already a response: answering those
/// could loop two reflectors into each other).
fn make_response(msg: &mut [u8]) -> bool {
    if msg.len() < HEADER_LEN || msg[2] & 0x80 != 0 {
        return false;
    }
    // QR set; opcode and RD kept; AA and TC clear.
    msg[2] = 0x80 | (msg[2] & 0x79);
    // RA, Z, AD, CD clear; RCODE NOERROR.
    msg[3] = 0;
    // ANCOUNT and NSCOUNT 0; QDCOUNT and ARCOUNT (the OPT) as they were.
    msg[6..10].fill(0);
    true
}

/// Serves `sock` until a system call fails for a reason other than a
/// signal; returns that error.
fn reflect(sock: &UdpSocket) -> io::Error {
    let fd = sock.as_raw_fd();
    // A boxed slice, not a Vec: indexing it borrows one buffer, not the
    // whole collection, so the pointers the headers hold into the other
    // buffers stay valid while one is rewritten.
    let mut bufs = vec![[0u8; BUF_LEN]; BATCH].into_boxed_slice();
    // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs of
    // integers and raw pointers, for which all-zero bytes are a valid value.
    let (mut addrs, mut in_iov, mut out_iov, mut in_msgs, mut out_msgs) = unsafe {
        (
            [mem::zeroed::<libc::sockaddr_storage>(); BATCH],
            [mem::zeroed::<libc::iovec>(); BATCH],
            [mem::zeroed::<libc::iovec>(); BATCH],
            [mem::zeroed::<libc::mmsghdr>(); BATCH],
            [mem::zeroed::<libc::mmsghdr>(); BATCH],
        )
    };
    loop {
        // Rebuilt every time: the kernel overwrites msg_namelen, and the
        // pointers are taken afresh after the buffers were last borrowed.
        for i in 0..BATCH {
            in_iov[i] = libc::iovec {
                iov_base: bufs[i].as_mut_ptr().cast(),
                iov_len: BUF_LEN,
            };
            let h = &mut in_msgs[i].msg_hdr;
            h.msg_name = ptr::from_mut(&mut addrs[i]).cast();
            h.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut in_iov[i];
            h.msg_iovlen = 1;
            h.msg_control = ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            in_msgs[i].msg_len = 0;
        }
        // SAFETY: in_msgs holds BATCH headers, each pointing at one iovec
        // over a live BUF_LEN-byte buffer and at a sockaddr_storage whose
        // size msg_namelen gives; all of them outlive the call. A null
        // timeout blocks until the first datagram, and MSG_WAITFORONE
        // returns with what has arrived by then.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                in_msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return e;
        }
        let mut ready = 0;
        for i in 0..n as usize {
            let received = &in_msgs[i];
            if received.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                continue;
            }
            let len = received.msg_len as usize;
            let namelen = received.msg_hdr.msg_namelen;
            if !make_response(&mut bufs[i][..len]) {
                continue;
            }
            out_iov[ready] = libc::iovec {
                iov_base: bufs[i].as_mut_ptr().cast(),
                iov_len: len,
            };
            let h = &mut out_msgs[ready].msg_hdr;
            h.msg_name = ptr::from_mut(&mut addrs[i]).cast();
            h.msg_namelen = namelen;
            h.msg_iov = &mut out_iov[ready];
            h.msg_iovlen = 1;
            h.msg_control = ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            ready += 1;
        }
        let mut sent = 0;
        while sent < ready {
            // SAFETY: out_msgs[sent..ready] are headers built above, each
            // pointing at one iovec over the first `len` bytes of a live
            // buffer and at the source address recvmmsg filled in, with its
            // length; nothing else touches them until the call returns.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    out_msgs.as_mut_ptr().add(sent),
                    (ready - sent) as libc::c_uint,
                    0,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // sendmmsg reports an error only when the first datagram
                // of the call failed (an unreachable source, a full
                // buffer): a UDP server drops that one answer and goes on.
                sent += 1;
                continue;
            }
            sent += r as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::make_response;

    #[test]
    fn query_becomes_header_only_noerror_of_the_same_size() {
        // ID 0xbeef, RD, AD, QD 1, AN 1, NS 1, AR 1, then question and OPT.
        let mut msg = vec![
            0xbe, 0xef, 0x01, 0x20, 0, 1, 0, 1, 0, 1, 0, 1, 1, b'a', 0, 0, 1, 0, 1, 0, 0, 41, 4,
            0xd0, 0, 0, 0, 0, 0, 0,
        ];
        let query = msg.clone();
        assert!(make_response(&mut msg));
        assert_eq!(msg.len(), query.len());
        assert_eq!(
            &msg[..12],
            &[0xbe, 0xef, 0x81, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(&msg[12..], &query[12..]);
    }

    #[test]
    fn responses_and_runts_are_not_answered() {
        let mut response = [0x12, 0x34, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        assert!(!make_response(&mut response));
        let mut runt = [0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0];
        assert!(!make_response(&mut runt));
    }
}
