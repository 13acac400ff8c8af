//! The hickory `RequestHandler`: queries answered from the store.
//!
//! hickory parses the request (and answers FORMERR itself when it cannot) and
//! encodes the response; everything in between is ours: zone selection, the
//! lookup, EDNS, and truncation by whole RRsets.

use std::sync::Arc;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::debug;

use crate::metrics::{Events, QueryCounters};
use crate::store::Store;
use crate::zone::key::WireName;
use crate::zone::{Answer, Item};

/// The largest UDP answer we send, whatever the client offers: the DNS Flag
/// Day 2020 value, which avoids IP fragmentation.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Extended DNS Error option code (RFC 8914) and the "Zone expired" info code.
const EDE_OPTION: u16 = 15;
const EDE_ZONE_EXPIRED: u16 = 24;

#[derive(Clone)]
pub struct Handler {
    store: Arc<Store>,
    events: Arc<Events>,
}

impl Handler {
    pub fn new(store: Arc<Store>, events: Arc<Events>) -> Self {
        Handler { store, events }
    }
}

/// What the section lengths of an answer are cut to so that it fits.
struct Fit {
    answer: usize,
    authority: usize,
    additional: usize,
    truncated: bool,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let meta = &request.metadata;
        let mut out = Metadata::response_from_request(meta);
        let builder = MessageResponseBuilder::from_message_request(request);

        let mut edns_out = request.edns.as_ref().map(|e| {
            let mut o = Edns::new();
            o.set_max_payload(MAX_UDP_PAYLOAD);
            o.set_dnssec_ok(e.flags().dnssec_ok);
            o
        });
        // RFC 6891 §6.1.3: only version 0 exists.
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            out.response_code = ResponseCode::BADVERS;
            return send_empty(
                builder,
                out,
                edns_out.as_ref(),
                &mut response_handle,
                &self.events.unmatched,
            )
            .await;
        }
        match meta.op_code {
            OpCode::Query => {}
            OpCode::Notify => {
                // NOTIFY handling arrives with the secondary machinery.
                out.response_code = ResponseCode::Refused;
                return send_empty(
                    builder,
                    out,
                    edns_out.as_ref(),
                    &mut response_handle,
                    &self.events.unmatched,
                )
                .await;
            }
            _ => {
                out.response_code = ResponseCode::NotImp;
                return send_empty(
                    builder,
                    out,
                    edns_out.as_ref(),
                    &mut response_handle,
                    &self.events.unmatched,
                )
                .await;
            }
        }
        let queries = request.queries.queries();
        if queries.len() != 1 {
            out.response_code = ResponseCode::FormErr;
            return send_empty(
                builder,
                out,
                edns_out.as_ref(),
                &mut response_handle,
                &self.events.unmatched,
            )
            .await;
        }
        let query = queries[0].original();
        let qtype = query.query_type();
        let qname = query.name();
        if query.query_class() != DNSClass::IN
            || matches!(qtype, RecordType::AXFR | RecordType::IXFR)
        {
            out.response_code = ResponseCode::Refused;
            return send_empty(
                builder,
                out,
                edns_out.as_ref(),
                &mut response_handle,
                &self.events.unmatched,
            )
            .await;
        }

        let wire = WireName::from_name(qname);
        let table = self.store.table();
        let Some(entry) = table.find(&wire) else {
            out.response_code = ResponseCode::Refused;
            return send_empty(
                builder,
                out,
                edns_out.as_ref(),
                &mut response_handle,
                &self.events.unmatched,
            )
            .await;
        };
        let guard = entry.load();
        let zone = match guard.as_ref() {
            Some(zone) if !entry.is_expired() => zone,
            _ => {
                // Never loaded, or expired with on_expire = servfail.
                out.response_code = ResponseCode::ServFail;
                if entry.is_expired()
                    && let Some(e) = edns_out.as_mut()
                {
                    e.options_mut().insert(EdnsOption::Unknown(
                        EDE_OPTION,
                        EDE_ZONE_EXPIRED.to_be_bytes().to_vec(),
                    ));
                }
                return send_empty(
                    builder,
                    out,
                    edns_out.as_ref(),
                    &mut response_handle,
                    &entry.counters,
                )
                .await;
            }
        };

        let tcp = request.protocol() != Protocol::Udp;
        let answer = zone.lookup_dnssec(
            qname,
            qtype,
            tcp,
            edns_out.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        );
        out.authoritative = answer.authoritative;
        out.response_code = answer.rcode();

        let limit = if tcp {
            u16::MAX
        } else {
            request
                .edns
                .as_ref()
                .map_or(512, |e| e.max_payload().clamp(512, MAX_UDP_PAYLOAD))
        };
        let opt_len = edns_out.as_ref().map_or(0, opt_size);
        let fit = fit(
            &answer,
            request.queries.as_bytes(),
            limit as usize - opt_len,
        );
        out.truncation = fit.truncated;
        debug!(name = %qname, %qtype, rcode = %out.response_code, "query");

        let response = builder.build(
            out,
            answer.answer[..fit.answer]
                .iter()
                .flat_map(|i| answer.records(i)),
            answer.authority[..fit.authority]
                .iter()
                .flat_map(|i| answer.records(i)),
            std::iter::empty::<&Record>(),
            answer.additional[..fit.additional]
                .iter()
                .flat_map(|i| answer.records(i)),
        );
        let mut response = response;
        if let Some(e) = edns_out.as_ref() {
            response.set_edns(e);
        }
        match response_handle.send_response(response).await {
            Ok(info) => {
                entry.counters.record(u16::from(info.response_code));
                info
            }
            Err(e) => {
                debug!(error = %e, "sending response failed");
                failed(out)
            }
        }
    }
}

async fn send_empty<R: ResponseHandler>(
    builder: MessageResponseBuilder<'_>,
    meta: Metadata,
    edns: Option<&Edns>,
    response_handle: &mut R,
    counters: &QueryCounters,
) -> ResponseInfo {
    let mut response = builder.build_no_records(meta);
    if let Some(e) = edns {
        response.set_edns(e);
    }
    match response_handle.send_response(response).await {
        Ok(info) => {
            counters.record(u16::from(info.response_code));
            info
        }
        Err(e) => {
            debug!(error = %e, "sending response failed");
            failed(meta)
        }
    }
}

fn failed(mut meta: Metadata) -> ResponseInfo {
    meta.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata: meta,
        counts: HeaderCounts::default(),
    })
}

/// Size of the OPT record we add: root name, type, class, TTL, RDLENGTH, and
/// the options.
fn opt_size(edns: &Edns) -> usize {
    let options: usize = edns
        .options()
        .as_ref()
        .iter()
        .map(|(_, o)| 4 + option_len(o))
        .sum();
    11 + options
}

fn option_len(o: &EdnsOption) -> usize {
    match o {
        EdnsOption::Unknown(_, data) => data.len(),
        other => {
            let code: u16 = EdnsCode::from(other).into();
            // Only options we add are ever sized here.
            debug_assert!(false, "unexpected option {code}");
            0
        }
    }
}

fn item_upper_bound<'z>(answer: &Answer<'z>, item: &Item<'z>) -> usize {
    match item {
        Item::Set(s) => s.wire_len,
        _ => answer
            .records(item)
            .iter()
            .map(|r| r.name.len() + 1 + 10 + crate::rr::rdata_len(&r.data))
            .sum(),
    }
}

/// Decides how much of the answer goes out: whole RRsets only (RFC 2181
/// §9). A missing answer or authority RRset, or missing required glue, sets
/// TC; other additional data is just left out.
fn fit<'z>(answer: &Answer<'z>, question: &[u8], limit: usize) -> Fit {
    let all = Fit {
        answer: answer.answer.len(),
        authority: answer.authority.len(),
        additional: answer.additional.len(),
        truncated: false,
    };
    let upper: usize = 12
        + question.len()
        + answer
            .answer
            .iter()
            .chain(&answer.authority)
            .chain(&answer.additional)
            .map(|i| item_upper_bound(answer, i))
            .sum::<usize>();
    if upper <= limit {
        return all;
    }
    // Too big uncompressed: encode for real to see what fits. The question's
    // names are not offered for compression here, so the estimate can only be
    // larger than hickory's final encoding, never smaller.
    let mut buf = Vec::with_capacity(limit.min(4096));
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_max_size(limit.min(u16::MAX as usize) as u16);
    let fits = |enc: &mut BinEncoder<'_>, item: &Item<'z>| -> bool {
        answer.records(item).iter().all(|r| r.emit(enc).is_ok()) && enc.len() <= limit
    };
    if enc.emit_vec(&[0u8; 12]).is_err() || enc.emit_vec(question).is_err() {
        return Fit {
            answer: 0,
            authority: 0,
            additional: 0,
            truncated: true,
        };
    }
    let mut result = Fit {
        answer: 0,
        authority: 0,
        additional: 0,
        truncated: false,
    };
    for item in &answer.answer {
        if !fits(&mut enc, item) {
            result.truncated = true;
            return result;
        }
        result.answer += 1;
    }
    for item in &answer.authority {
        if !fits(&mut enc, item) {
            result.truncated = true;
            return result;
        }
        result.authority += 1;
    }
    for item in &answer.additional {
        if !fits(&mut enc, item) {
            result.truncated = result.additional < answer.required_additional;
            return result;
        }
        result.additional += 1;
    }
    result
}
