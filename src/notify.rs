//! NOTIFY out (RFC 1996): after each new serial, tell the downstream
//! secondaries in `notify`, TSIG-signed with the zone key when it has one,
//! retrying with backoff until each one answers.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::{Name, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::time::timeout;
use tracing::{info, warn};

use crate::config::ZoneConfig;
use crate::tsig::{self, Key, StreamVerifier, TsigError};
use crate::wire::{self, Message, MessageBuilder, Section, WireError};

/// Sends per target (RFC 1996 §3.6 asks for a small number of retries).
pub const ATTEMPTS: u32 = 5;
/// Wait for the first answer; doubled after each unanswered try.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);
/// An operator waiting at a prompt gets an answer within 7 s (1 + 2 + 4),
/// well inside the control endpoint's idle timeout.
const OPERATOR_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("zone {zone}: NOTIFY to {target}: {error}")]
    Io {
        zone: String,
        target: SocketAddr,
        error: std::io::Error,
    },
    #[error("zone {zone}: NOTIFY to {target}: no answer after {attempts} tries")]
    NoAnswer {
        zone: String,
        target: SocketAddr,
        attempts: u32,
    },
    #[error("zone {zone}: NOTIFY to {target}: answered {rcode}")]
    Rcode {
        zone: String,
        target: SocketAddr,
        rcode: String,
    },
    #[error("zone {zone}: NOTIFY to {target}: {error}")]
    Tsig {
        zone: String,
        target: SocketAddr,
        error: TsigError,
    },
    #[error("zone {zone}: NOTIFY to {target}: malformed answer: {error}")]
    Wire {
        zone: String,
        target: SocketAddr,
        error: WireError,
    },
}

/// The NOTIFY message for `zone`, with the new SOA in the answer section
/// so the secondary can skip its SOA query when already current (§3.7).
pub fn notify_message(id: u16, zone: &Name, soa: &Record) -> Result<Vec<u8>, WireError> {
    let mut b = MessageBuilder::new(id, wire::OPCODE_NOTIFY, wire::FLAG_AA);
    b.question(zone, RecordType::SOA, wire::CLASS_IN);
    b.record(Section::Answer, soa)?;
    b.finish()
}

/// Notifies every target of the zone now, all at once, and waits for each
/// to answer (an operator's `outpost notify`): per target, the tries it
/// took or why not.
pub async fn notify_all(
    config: &ZoneConfig,
    soa: &Record,
) -> Vec<(SocketAddr, Result<u32, String>)> {
    let handles: Vec<_> = config
        .notify
        .iter()
        .map(|&target| {
            let (zone, key, soa) = (config.name.clone(), config.key.clone(), soa.clone());
            let source = config.source_for(target);
            let h = tokio::spawn(async move {
                notify(
                    target,
                    &zone,
                    &soa,
                    key.as_ref(),
                    OPERATOR_ATTEMPTS,
                    FIRST_WAIT,
                    source,
                )
                .await
            });
            (target, h)
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for (target, h) in handles {
        let r = match h.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("zone {}: NOTIFY to {target}: {e}", config.name)),
        };
        out.push((target, r));
    }
    out
}

/// Notifies every target of the zone in the background.
pub fn spawn(config: &ZoneConfig, soa: &Record) {
    for &target in &config.notify {
        let zone = config.name.clone();
        let key = config.key.clone();
        let soa = soa.clone();
        let source = config.source_for(target);
        tokio::spawn(async move {
            let sent = notify(
                target,
                &zone,
                &soa,
                key.as_ref(),
                ATTEMPTS,
                FIRST_WAIT,
                source,
            );
            match sent.await {
                Ok(tries) => info!(zone = %zone, %target, tries, "NOTIFY answered"),
                Err(e) => warn!(zone = %zone, %target, "{e}"),
            }
        });
    }
}

/// Sends a NOTIFY to `target` until it answers (at most `attempts` times,
/// waiting `first_wait`, then twice as long each time). Returns the number
/// of tries it took; an answer other than NOERROR is an error.
pub async fn notify(
    target: SocketAddr,
    zone: &Name,
    soa: &Record,
    key: Option<&Key>,
    attempts: u32,
    first_wait: Duration,
    source: Option<std::net::IpAddr>,
) -> Result<u32, NotifyError> {
    let z = zone.to_string();
    let io = |error| NotifyError::Io {
        zone: z.clone(),
        target,
        error,
    };
    let sock = UdpSocket::bind(crate::xfr::client::local_addr(target, source))
        .await
        .map_err(io)?;
    sock.connect(target).await.map_err(io)?;
    let mut wait = first_wait;
    for attempt in 1..=attempts {
        // A fresh ID and signature per try: a late answer to an earlier try
        // is then ignored rather than mistaken for this one.
        let id: u16 = rand::random();
        let msg = notify_message(id, zone, soa).map_err(|error| NotifyError::Wire {
            zone: z.clone(),
            target,
            error,
        })?;
        let (bytes, mac) = match key {
            Some(k) => {
                let s = tsig::sign_request(&msg, k, tsig::now_secs()).map_err(|error| {
                    NotifyError::Tsig {
                        zone: z.clone(),
                        target,
                        error,
                    }
                })?;
                (s.bytes, Some(s.mac))
            }
            None => (msg, None),
        };
        sock.send(&bytes).await.map_err(io)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut buf = vec![0u8; 4096];
            let n = match timeout(
                deadline.saturating_duration_since(tokio::time::Instant::now()),
                sock.recv(&mut buf),
            )
            .await
            {
                Err(_) => break,
                // ICMP port unreachable shows up here: try again later.
                Ok(Err(_)) => {
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Ok(n)) => n,
            };
            buf.truncate(n);
            let Ok(reply) = Message::parse(&buf) else {
                continue;
            };
            if reply.header.id != id || !reply.header.is_response() {
                continue;
            }
            if let (Some(k), Some(mac)) = (key, &mac) {
                let mut v = StreamVerifier::new(k, mac);
                v.verify(&buf, &reply, tsig::now_secs())
                    .and_then(|()| v.finish())
                    .map_err(|error| NotifyError::Tsig {
                        zone: z.clone(),
                        target,
                        error,
                    })?;
            }
            let rcode = reply.rcode();
            if rcode != 0 {
                return Err(NotifyError::Rcode {
                    zone: z.clone(),
                    target,
                    rcode: wire::rcode_name(rcode),
                });
            }
            return Ok(attempt);
        }
        wait *= 2;
    }
    Err(NotifyError::NoAnswer {
        zone: z,
        target,
        attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rr;

    /// A target that ignores the first NOTIFY and answers the second:
    /// the retry gets through.
    #[tokio::test]
    async fn retries_until_answered() {
        let zone = Name::from_ascii("example.").unwrap();
        let mut w = Vec::new();
        wire::put_name(&mut w, &zone);
        wire::put_name(&mut w, &zone);
        w.extend_from_slice(&[0; 20]);
        let soa = rr::record(zone.clone(), RecordType::SOA, 60, &w).unwrap();
        let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = target.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut buf = vec![0u8; 512];
            let mut seen = 0;
            loop {
                let (len, peer) = target.recv_from(&mut buf).await.unwrap();
                let q = Message::parse(&buf[..len]).unwrap();
                assert_eq!(q.header.opcode(), wire::OPCODE_NOTIFY);
                seen += 1;
                if seen == 2 {
                    let mut b =
                        MessageBuilder::new(q.header.id, wire::OPCODE_NOTIFY, wire::FLAG_QR);
                    b.question(&zone, RecordType::SOA, wire::CLASS_IN);
                    target.send_to(&b.finish().unwrap(), peer).await.unwrap();
                    return seen;
                }
            }
        });
        let zone = Name::from_ascii("example.").unwrap();
        let tries = notify(addr, &zone, &soa, None, 3, Duration::from_millis(100), None)
            .await
            .unwrap();
        assert_eq!(tries, 2);
        assert_eq!(server.await.unwrap(), 2);
        // Nobody there at all: gives up after the given tries.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let e = notify(
            silent.local_addr().unwrap(),
            &zone,
            &soa,
            None,
            2,
            Duration::from_millis(50),
            None,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, NotifyError::NoAnswer { attempts: 2, .. }),
            "{e}"
        );
    }
}
