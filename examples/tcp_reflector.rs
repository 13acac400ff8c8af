//! The benchmark's floor over TCP: a DNS-over-TCP server that does no DNS
//! work at all.
//!
//! `tcp_reflector ADDR:PORT [THREADS]`
//!
//! Each thread owns a listening socket (with more than one thread, all
//! bound to the same address with `SO_REUSEPORT`, so the kernel spreads the
//! connections over them) and an epoll instance, and loops: wait for
//! readiness, `accept` what is pending, and on each readable connection
//! `read` what has arrived, turn every complete 2-octet-framed query into a
//! header-only NOERROR response in place (as `examples/reflector.rs` does
//! for UDP: ID, opcode, RD, question and additional section kept, so the
//! response is as long as the query), and send them all back with one
//! `write`. That is the least a TCP DNS server that answers several
//! pipelined queries per read can spend on this kernel; what a server
//! spends above it is its DNS work and its own design (bench/README.md,
//! "The floor").

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::process::ExitCode;
use std::thread;

use socket2::{Domain, Protocol, Socket, Type};

const HEADER_LEN: usize = 12;
/// Room for a few hundred pipelined queries per read.
const BUF_LEN: usize = 64 * 1024;
const EVENTS: usize = 64;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let usage = || {
        eprintln!("usage: tcp_reflector ADDR:PORT [THREADS]");
        ExitCode::from(2)
    };
    let (addr, threads) = match args.as_slice() {
        [_, addr] => (addr, "1"),
        [_, addr, threads] => (addr, threads.as_str()),
        _ => return usage(),
    };
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("tcp_reflector: `{addr}` is not an ADDR:PORT");
        return usage();
    };
    let threads = match threads.parse::<usize>() {
        Ok(n) if n >= 1 => n,
        _ => {
            eprintln!("tcp_reflector: THREADS `{threads}` is not a positive number");
            return usage();
        }
    };
    let mut listeners = Vec::with_capacity(threads);
    for _ in 0..threads {
        match listen(addr, threads > 1) {
            Ok(s) => listeners.push(s),
            Err(e) => {
                eprintln!("tcp_reflector: cannot listen on TCP {addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let last = listeners.pop().expect("at least one listener");
    for (i, l) in listeners.into_iter().enumerate() {
        thread::Builder::new()
            .name(format!("tcp-reflector-{i}"))
            .spawn(move || {
                let e = serve(l);
                eprintln!("tcp_reflector: TCP {addr}: {e}");
                std::process::exit(1);
            })
            .expect("spawn a reflector thread");
    }
    let e = serve(last);
    eprintln!("tcp_reflector: TCP {addr}: {e}");
    ExitCode::FAILURE
}

fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    sock.set_nonblocking(true)?;
    Ok(sock)
}

/// Turns one query into its response in place; false if it is no query.
fn make_response(msg: &mut [u8]) -> bool {
    if msg.len() < HEADER_LEN || msg[2] & 0x80 != 0 {
        return false;
    }
    msg[2] = 0x80 | (msg[2] & 0x79);
    msg[3] = 0;
    msg[6..10].fill(0);
    true
}

/// One connection's unparsed input.
struct Conn {
    sock: Socket,
    buf: Vec<u8>,
    len: usize,
}

fn epoll_ctl(ep: RawFd, op: libc::c_int, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: a valid epoll fd, a valid fd, an event of ours.
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Serves one listener until a system call fails for a reason other than
/// a signal or a closed connection; returns that error.
fn serve(listener: Socket) -> io::Error {
    // SAFETY: epoll_create1 with no flags.
    let ep = unsafe { libc::epoll_create1(0) };
    if ep < 0 {
        return io::Error::last_os_error();
    }
    const LISTENER: u64 = u64::MAX;
    if let Err(e) = epoll_ctl(ep, libc::EPOLL_CTL_ADD, listener.as_raw_fd(), LISTENER) {
        return e;
    }
    let mut conns: Vec<Option<Conn>> = Vec::new();
    // SAFETY: epoll_event is plain data.
    let mut events: [libc::epoll_event; EVENTS] = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: the buffer holds EVENTS events.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), EVENTS as libc::c_int, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return e;
        }
        for ev in &events[..n as usize] {
            let token = ev.u64;
            if token == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((sock, _)) => {
                            let _ = sock.set_tcp_nodelay(true);
                            let fd = sock.as_raw_fd();
                            let slot =
                                conns.iter().position(Option::is_none).unwrap_or_else(|| {
                                    conns.push(None);
                                    conns.len() - 1
                                });
                            if epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, slot as u64).is_ok() {
                                conns[slot] = Some(Conn {
                                    sock,
                                    buf: vec![0; BUF_LEN],
                                    len: 0,
                                });
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        // Out of descriptors or the like: drop this round.
                        Err(_) => break,
                    }
                }
                continue;
            }
            let slot = token as usize;
            let keep = match conns.get_mut(slot).and_then(Option::as_mut) {
                Some(conn) => reflect(conn),
                None => continue,
            };
            if !keep && let Some(conn) = conns[slot].take() {
                let fd = conn.sock.into_raw_fd();
                // SAFETY: closing the descriptor we own; epoll forgets it.
                unsafe {
                    libc::close(fd);
                }
            }
        }
    }
}

/// Reads what a connection sent, answers its complete queries with one
/// write; false when the connection is done.
fn reflect(conn: &mut Conn) -> bool {
    let fd = conn.sock.as_raw_fd();
    // SAFETY: reading into the free part of our buffer.
    let n = unsafe {
        libc::read(
            fd,
            conn.buf[conn.len..].as_mut_ptr().cast(),
            conn.buf.len() - conn.len,
        )
    };
    if n <= 0 {
        return n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock;
    }
    conn.len += n as usize;
    let mut at = 0;
    let mut end = 0;
    while conn.len - at >= 2 {
        let len = u16::from_be_bytes([conn.buf[at], conn.buf[at + 1]]) as usize;
        if conn.len - at - 2 < len {
            break;
        }
        let frame = at..at + 2 + len;
        at += 2 + len;
        if make_response(&mut conn.buf[frame.start + 2..frame.end]) {
            // Responses are as long as their queries: compact in place.
            conn.buf.copy_within(frame.clone(), end);
            end += frame.len();
        }
    }
    let mut sent = 0;
    while sent < end {
        // SAFETY: writing the first `end` octets of our buffer; the socket
        // blocks (it was accepted without O_NONBLOCK), as a floor may.
        let w = unsafe { libc::write(fd, conn.buf[sent..end].as_ptr().cast(), end - sent) };
        if w < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        sent += w as usize;
    }
    conn.buf.copy_within(at..conn.len, 0);
    conn.len -= at;
    if conn.len == conn.buf.len() {
        // A frame longer than the buffer: no DNS query is.
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn pipelined_queries_come_back_as_responses() {
        let l = listen("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let addr = l.local_addr().unwrap().as_socket().unwrap();
        thread::spawn(move || serve(l));
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let query = [
            0xbe, 0xef, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1,
        ];
        let mut batch = Vec::new();
        for _ in 0..3 {
            batch.extend_from_slice(&(query.len() as u16).to_be_bytes());
            batch.extend_from_slice(&query);
        }
        // A response among them is dropped.
        let mut response = query;
        response[2] |= 0x80;
        batch.extend_from_slice(&(response.len() as u16).to_be_bytes());
        batch.extend_from_slice(&response);
        s.write_all(&batch).unwrap();
        let mut got = vec![0u8; 3 * (2 + query.len())];
        s.read_exact(&mut got).unwrap();
        for k in 0..3 {
            let m = &got[k * (2 + query.len()) + 2..(k + 1) * (2 + query.len())];
            assert_eq!(&m[..4], &[0xbe, 0xef, 0x81, 0x00]);
            assert_eq!(&m[12..], &query[12..]);
        }
    }
}
