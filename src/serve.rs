//! The request handler for what the fast path does not take: queries it
//! leaves (TSIG-signed, unusual EDNS, other classes and opcodes), NOTIFY
//! in, and zone transfers out.
//!
//! hickory parses these requests and encodes their single-message
//! responses; everything in between is ours: TSIG, zone selection, the
//! lookup, EDNS, and truncation by whole RRsets. Signed replies go through
//! [`crate::xfr::out`]; transfers are written by its [`MessageWriter`] and
//! streamed over the connection with back-pressure.

use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::config::{CookieConfig, IdentityConfig};
use crate::cookie::{self, Cookies};
use crate::metrics::{Events, QueryCounters};
use crate::ratelog;
use crate::refresh::timers::{UnixTime, serial_gt};
use crate::refresh::{Refresher, ZoneRuntime};
use crate::store::Store;
use crate::tcp::Sink;
use crate::tsig::{self, Key, StreamSigner};
use crate::wire;
use crate::xfr::out::{self, Content, MessageWriter, OptOut, Signer};
use crate::zone::key::WireName;
use crate::zone::{Answer, Item};

/// The largest UDP answer we send, whatever the client offers: the DNS Flag
/// Day 2020 value, which avoids IP fragmentation.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Extended DNS Error option code (RFC 8914) and the code sent with the
/// SERVFAIL of an expired zone: 24, "Invalid Data", the closest of the
/// registered codes, with an EXTRA-TEXT saying what is invalid about it.
pub const EDE_OPTION: u16 = 15;
pub const EDE_ZONE_EXPIRED: u16 = 24;
/// The EDE option's data for an expired zone: info code 24, then the
/// EXTRA-TEXT "zone expired".
pub const EDE_ZONE_EXPIRED_DATA: &[u8] = b"\x00\x18zone expired";

/// The size limit of a UDP answer: 512 without EDNS (RFC 1035 §4.2.1),
/// else the client's EDNS payload size clamped to [512, 1232].
pub fn udp_limit(edns_payload: Option<u16>) -> u16 {
    edns_payload.map_or(512, |p| p.clamp(512, MAX_UDP_PAYLOAD))
}

/// EDNS option code of NSID (RFC 5001).
pub const NSID_OPTION: u16 = 3;

/// What the handler says about itself, and the cookie secrets: shared by
/// the hickory path and the UDP fast path.
pub struct QueryOptions {
    pub cookies: Cookies,
    pub identity: IdentityConfig,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            cookies: Cookies::new(&CookieConfig::default()),
            identity: IdentityConfig::default(),
        }
    }
}

#[derive(Clone)]
pub struct Handler {
    store: Arc<Store>,
    events: Arc<Events>,
    options: Arc<QueryOptions>,
    /// The secondary side: zone configs, timers, history, SOA checks.
    /// `None` serves the store alone (no NOTIFY, no transfers out).
    refresher: Option<Arc<Refresher>>,
    /// Every configured TSIG key, for verifying signed requests.
    /// Shared by every clone, so that a reload's keys reach every
    /// listener at once.
    keys: Arc<arc_swap::ArcSwap<Vec<Key>>>,
    /// One permit per transfer out that may run at once.
    transfer_slots: Arc<Semaphore>,
    max_transfers_out: usize,
}

/// How the handler's answers leave: hickory's response handling for single
/// messages and, over TCP, the connection itself for the messages of a
/// transfer.
pub trait Responder: ResponseHandler {
    /// The connection to stream a transfer to; `None` over UDP.
    fn stream(&self) -> Option<Sink>;
}

impl Handler {
    pub fn new(store: Arc<Store>, events: Arc<Events>) -> Self {
        Handler {
            store,
            events,
            options: Arc::default(),
            refresher: None,
            keys: Arc::default(),
            transfer_slots: Arc::new(Semaphore::new(crate::config::DEFAULT_MAX_TRANSFERS_OUT)),
            max_transfers_out: crate::config::DEFAULT_MAX_TRANSFERS_OUT,
        }
    }

    /// The handler with these cookie secrets and identity.
    pub fn with_options(mut self, options: QueryOptions) -> Self {
        self.options = Arc::new(options);
        self
    }

    pub fn options(&self) -> &QueryOptions {
        &self.options
    }

    /// A handler that also takes NOTIFY and serves transfers.
    pub fn with_secondary(
        store: Arc<Store>,
        events: Arc<Events>,
        refresher: Arc<Refresher>,
        keys: Vec<Key>,
    ) -> Self {
        Handler {
            refresher: Some(refresher),
            keys: Arc::new(arc_swap::ArcSwap::from_pointee(keys)),
            ..Handler::new(store, events)
        }
    }

    /// Replaces the keys requests are verified with (a reload): a rotated
    /// secret stops verifying at once.
    pub fn set_keys(&self, keys: Vec<Key>) {
        self.keys.store(Arc::new(keys));
    }

    /// Caps the transfers out that run at once; more are refused.
    pub fn with_max_transfers_out(mut self, max: usize) -> Self {
        self.transfer_slots = Arc::new(Semaphore::new(max));
        self.max_transfers_out = max;
        self
    }

    /// The zones served, for the UDP fast path.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    /// The request's COOKIE option checked: the verdict and the option the
    /// answer carries.
    fn cookie_option(
        &self,
        request: &Request,
    ) -> Option<(cookie::Verdict, [u8; cookie::RESPONSE_LEN])> {
        let option = request
            .edns
            .as_ref()?
            .option(EdnsCode::Cookie)
            .and_then(|o| match o {
                EdnsOption::Unknown(_, data) => Some(data),
                _ => None,
            })?;
        let mut out = [0u8; cookie::RESPONSE_LEN];
        let verdict =
            self.options
                .cookies
                .check(option, request.src().ip(), cookie::now(), &mut out);
        Some((verdict, out))
    }

    /// The text a CHAOS TXT query for `name` is answered with: `Some(None)`
    /// for a name we know whose answer is hidden.
    fn chaos_text(&self, name: &Name) -> Option<Option<&str>> {
        let name = name.to_lowercase().to_ascii();
        let id = &self.options.identity;
        match name.trim_end_matches('.') {
            "id.server" | "hostname.bind" => Some(id.identity.as_deref()),
            "version.server" | "version.bind" => Some(id.version.as_deref()),
            _ => None,
        }
    }

    /// CHAOS TXT `id.server`, `hostname.bind`, `version.server`,
    /// `version.bind`: the configured identity and version, REFUSED when
    /// hidden, NODATA for other types.
    async fn chaos<R: ResponseHandler>(
        &self,
        request: &Request,
        mut out: Metadata,
        qtype: RecordType,
        text: Option<&str>,
        edns: Option<&Edns>,
        handle: &mut R,
    ) -> ResponseInfo {
        let query = request.queries.queries()[0].original();
        let mut records = Vec::new();
        match text {
            None => out.response_code = ResponseCode::Refused,
            Some(text) => {
                out.authoritative = true;
                if matches!(qtype, RecordType::TXT | RecordType::ANY) {
                    let mut r = Record::from_rdata(
                        query.name().clone(),
                        0,
                        RData::TXT(TXT::new(vec![text.to_string()])),
                    );
                    r.dns_class = DNSClass::CH;
                    records.push(r);
                }
            }
        }
        let answers: Vec<&Record> = records.iter().collect();
        send_signed(request, handle, out, &answers, edns, None).await
    }

    fn runtime(&self, zone: &Name) -> Option<Arc<ZoneRuntime>> {
        self.refresher.as_ref()?.zone(zone)
    }

    /// The metric label of a zone named in a request: the zone's name when
    /// we serve it, else `None` (counted under one label), so that labels
    /// never come from what a sender made up.
    fn zone_label(&self, zone: &Name) -> Option<String> {
        self.runtime(zone).map(|_| zone.to_string())
    }
}

/// What the request's TSIG said.
struct Auth {
    /// The verified key, if the request was signed.
    key: Option<Name>,
    signer: Option<Signer>,
}

/// The EDNS EXPIRE option (RFC 7314) for a zone, when the client asked for
/// it: the time left before our own copy expires.
fn expire_option(request: &Request, zone: Option<&ZoneRuntime>) -> Option<EdnsOption> {
    request.edns.as_ref()?.option(EdnsCode::Expire)?;
    let left = zone?.expires_in(UnixTime::now())?;
    let secs = u32::try_from(left.as_secs()).unwrap_or(u32::MAX);
    Some(EdnsOption::Unknown(
        wire::EDNS_EXPIRE,
        secs.to_be_bytes().to_vec(),
    ))
}

/// What the section lengths of an answer are cut to so that it fits.
pub struct Fit {
    pub answer: usize,
    pub authority: usize,
    pub additional: usize,
    pub truncated: bool,
}

impl Handler {
    /// Answers one request hickory has parsed.
    pub async fn handle_request<R: Responder>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let meta = &request.metadata;
        let mut out = Metadata::response_from_request(meta);
        // RFC 4035 §3.1.6: an authoritative answer clears CD. Only RD is
        // copied from a request (RFC 1035 §4.1.1, RFC 8906 §8.1.4).
        out.checking_disabled = false;
        let builder = MessageResponseBuilder::from_message_request(request);

        let mut edns_out = request.edns.as_ref().map(|e| {
            let mut o = Edns::new();
            o.set_max_payload(MAX_UDP_PAYLOAD);
            o.set_dnssec_ok(e.flags().dnssec_ok);
            o
        });
        let cookie = self.cookie_option(request);
        if let (Some(cookie::Verdict::Valid | cookie::Verdict::Unverified), Some(e)) =
            (cookie.map(|c| c.0), edns_out.as_mut())
        {
            let data = cookie.expect("checked").1;
            e.options_mut()
                .insert(EdnsOption::Unknown(cookie::OPTION, data.to_vec()));
        }
        if let Some(e) = edns_out.as_mut()
            && self.options.identity.nsid
            && let Some(id) = &self.options.identity.identity
            && request
                .edns
                .as_ref()
                .is_some_and(|r| r.option(EdnsCode::NSID).is_some())
        {
            e.options_mut()
                .insert(EdnsOption::Unknown(NSID_OPTION, id.as_bytes().to_vec()));
        }
        // The early answers carry no records: the question, our OPT and an
        // RCODE, counted against no zone.
        macro_rules! header_only {
            ($rcode:expr) => {{
                out.response_code = $rcode;
                return send_empty(
                    builder,
                    out,
                    edns_out.as_ref(),
                    &mut response_handle,
                    &self.events.unmatched,
                )
                .await;
            }};
        }

        // RFC 7873 §5.2.2: a COOKIE option of a wrong length is a format
        // error.
        if cookie.is_some_and(|c| c.0 == cookie::Verdict::Malformed) {
            header_only!(ResponseCode::FormErr);
        }
        // RFC 6891 §6.1.3: only version 0 exists.
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            header_only!(ResponseCode::BADVERS);
        }
        let mut auth = Auth {
            key: None,
            signer: None,
        };
        // hickory built without its DNSSEC features leaves the TSIG record
        // among the additional records instead of lifting it out.
        let additionals = &request.additionals;
        let tsig_at = additionals
            .iter()
            .position(|r| r.record_type() == RecordType::TSIG);
        // RFC 8945 §5.1: a TSIG anywhere but last is a format error.
        if tsig_at.is_some_and(|i| i + 1 != additionals.len()) {
            header_only!(ResponseCode::FormErr);
        }
        let signed = request.signature.is_some() || tsig_at.is_some();
        if signed {
            match self.verify_tsig(request) {
                Ok(a) => auth = a,
                Err(rejection) => {
                    if meta.op_code == OpCode::Notify
                        && let Some(q) = request.queries.queries().first()
                    {
                        let zone = q.original().name().to_lowercase();
                        self.events
                            .notify(self.zone_label(&zone).as_deref(), "refused");
                    }
                    out.response_code = ResponseCode::from(0, rejection.rcode);
                    let mut signer = Signer::Reject(rejection);
                    return send_signed(
                        request,
                        &mut response_handle,
                        out,
                        &[],
                        edns_out.as_ref(),
                        Some(&mut signer),
                    )
                    .await;
                }
            }
        }
        match meta.op_code {
            OpCode::Query => {}
            OpCode::Notify => {
                return self
                    .notify(request, out, auth, edns_out.as_ref(), &mut response_handle)
                    .await;
            }
            _ => {
                header_only!(ResponseCode::NotImp);
            }
        }
        let queries = request.queries.queries();
        if queries.len() != 1 {
            header_only!(ResponseCode::FormErr);
        }
        let query = queries[0].original();
        let qtype = query.query_type();
        let qname = query.name();
        if query.query_class() == DNSClass::CH
            && let Some(text) = self.chaos_text(qname)
        {
            return self
                .chaos(
                    request,
                    out,
                    qtype,
                    text,
                    edns_out.as_ref(),
                    &mut response_handle,
                )
                .await;
        }
        if query.query_class() != DNSClass::IN {
            header_only!(ResponseCode::Refused);
        }
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return self
                .transfer(request, qtype, out, auth, edns_out, response_handle)
                .await;
        }

        let wire = WireName::from_name(qname);
        let table = self.store.table();
        let Some(entry) = table.find(&wire) else {
            header_only!(ResponseCode::Refused);
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
                        EDE_ZONE_EXPIRED_DATA.to_vec(),
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

        if qtype == RecordType::SOA
            && let Some(e) = edns_out.as_mut()
            && let Some(o) = expire_option(request, self.runtime(zone.origin()).as_deref())
        {
            e.options_mut().insert(o);
        }

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
            udp_limit(request.edns.as_ref().map(|e| e.max_payload()))
        };
        let opt_len = edns_out.as_ref().map_or(0, opt_size)
            + auth.signer.as_ref().map_or(0, |_| TSIG_RESERVE);
        let fit = fit(
            &answer,
            request.queries.as_bytes(),
            limit as usize - opt_len,
        );
        out.truncation = fit.truncated;
        debug!(name = %qname, %qtype, rcode = %out.response_code, "query");

        // The hickory path works on hickory records: made here, once.
        let answers = made(&answer, &answer.answer[..fit.answer]);
        let authority = made(&answer, &answer.authority[..fit.authority]);
        let additional = made(&answer, &answer.additional[..fit.additional]);
        if let Some(signer) = auth.signer.as_mut() {
            let answers: Vec<&Record> = answers.iter().collect();
            let authority: Vec<&Record> = authority.iter().collect();
            let additional: Vec<&Record> = additional.iter().collect();
            let sections = out::Sections {
                answers: &answers,
                authority: &authority,
                additional: &additional,
            };
            return match out::send_sections(
                &mut response_handle,
                request.protocol(),
                &request.queries,
                out,
                sections,
                edns_out.as_ref(),
                Some(signer),
            )
            .await
            {
                Ok(info) => info,
                Err(e) => {
                    debug!(error = %e, "sending signed response failed");
                    failed(out)
                }
            };
        }

        let response = builder.build(
            out,
            answers.iter(),
            authority.iter(),
            std::iter::empty::<&Record>(),
            additional.iter(),
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

/// Room left for a TSIG record in a signed UDP answer: key and algorithm
/// names (at most 255 octets each, in practice far less), fixed fields and
/// the longest MAC.
const TSIG_RESERVE: usize = 2 * 64 + 10 + 16 + 64;

impl Handler {
    /// Verifies a signed request against the configured keys. `Err` carries
    /// the signer of the error reply (NOTAUTH, or FORMERR for a bad MAC
    /// size).
    fn verify_tsig(&self, request: &Request) -> Result<Auth, Box<tsig::Rejection>> {
        let raw = request.as_slice();
        let parsed = match wire::Message::parse(raw) {
            Ok(p) => p,
            // hickory parsed it; our stricter reader did not. Without the
            // TSIG's position nothing can be verified.
            Err(e) => {
                debug!(peer = %request.src(), "cannot read signed request: {e}");
                return Ok(Auth {
                    key: None,
                    signer: None,
                });
            }
        };
        match tsig::verify_request(raw, &parsed, &self.keys.load(), tsig::now_secs()) {
            Ok(Some(v)) => Ok(Auth {
                key: Some(v.key.name.clone()),
                signer: Some(Signer::Stream(StreamSigner::new(&v.key, &v.mac))),
            }),
            Ok(None) => Ok(Auth {
                key: None,
                signer: None,
            }),
            Err(rejection) => {
                let zone = request
                    .queries
                    .queries()
                    .first()
                    .map(|q| q.original().name().to_string())
                    .unwrap_or_default();
                crate::warn_limited!(ratelog::TSIG_REJECTED, peer = %request.src(), zone,
                      opcode = ?request.metadata.op_code, "request refused: {rejection}");
                Err(rejection)
            }
        }
    }

    /// NOTIFY (RFC 1996): accepted for a configured zone from its
    /// primaries or `notify_from`; an accepted NOTIFY asks for an SOA check
    /// now.
    ///
    /// A zone with a key also takes an unsigned NOTIFY from those
    /// addresses: a NOTIFY only makes the check come sooner, and the check
    /// (SOA query, transfer) is itself signed and verified, so a forged one
    /// can change nothing but the timing, and bursts merge into one check.
    /// Refusing it would make every change wait for the refresh timer
    /// whenever the primary sends NOTIFY unsigned (BIND's default), with
    /// nothing visibly wrong. A NOTIFY signed with another key is refused:
    /// that is a misconfiguration worth a warning.
    async fn notify<R: ResponseHandler>(
        &self,
        request: &Request,
        mut out: Metadata,
        mut auth: Auth,
        edns: Option<&Edns>,
        handle: &mut R,
    ) -> ResponseInfo {
        let peer = request.src();
        let queries = request.queries.queries();
        let (zone_name, ok_question) = match queries {
            [q] => (
                q.original().name().to_lowercase(),
                q.original().query_type() == RecordType::SOA
                    && q.original().query_class() == DNSClass::IN,
            ),
            _ => (Name::root(), false),
        };
        out.response_code = if !ok_question {
            ResponseCode::FormErr
        } else {
            match self.runtime(&zone_name) {
                None => {
                    crate::warn_limited!(ratelog::NOTIFY_REFUSED, zone = %zone_name, %peer,
                          "NOTIFY refused: not a zone of ours");
                    ResponseCode::Refused
                }
                Some(z) if !z.config.notify_allowed(peer.ip()) => {
                    crate::warn_limited!(ratelog::NOTIFY_REFUSED, zone = %zone_name, %peer,
                          "NOTIFY refused: sender is neither a primary nor in notify_from");
                    ResponseCode::Refused
                }
                Some(z)
                    if z.config.key.as_ref().is_some_and(|k| {
                        auth.key.as_ref().is_some_and(|signed| signed != &k.name)
                    }) =>
                {
                    let key = &z.config.key.as_ref().expect("checked").name;
                    crate::warn_limited!(ratelog::NOTIFY_REFUSED, zone = %zone_name, %peer,
                          signed_with = auth.key.as_ref().map(tracing::field::display),
                          "NOTIFY refused: signed with another key than the zone's {key}");
                    ResponseCode::Refused
                }
                Some(_) => {
                    let serial = request.answers.iter().find_map(|r| match &r.data {
                        RData::SOA(soa) if r.name.to_lowercase() == zone_name => Some(soa.serial),
                        _ => None,
                    });
                    let checking = self
                        .refresher
                        .as_ref()
                        .is_some_and(|r| r.check_now(&zone_name, serial));
                    info!(zone = %zone_name, %peer, serial, checking, signed = auth.key.is_some(),
                          "NOTIFY accepted{}", if checking { "" } else { ": serial not newer than ours" });
                    out.authoritative = true;
                    ResponseCode::NoError
                }
            }
        };
        let result = if out.response_code == ResponseCode::NoError {
            "accepted"
        } else {
            "refused"
        };
        self.events
            .notify(self.zone_label(&zone_name).as_deref(), result);
        send_signed(request, handle, out, &[], edns, auth.signer.as_mut()).await
    }

    /// AXFR and IXFR out, to the clients `allow_transfer` lets in, at most
    /// `max_transfers_out` at once.
    async fn transfer<R: Responder>(
        &self,
        request: &Request,
        qtype: RecordType,
        mut out: Metadata,
        mut auth: Auth,
        mut edns: Option<Edns>,
        mut handle: R,
    ) -> ResponseInfo {
        let peer = request.src();
        let query = request.queries.queries()[0].original();
        let zone_name = query.name().to_lowercase();
        let runtime = self.runtime(&zone_name);
        let refuse = |why: &str| {
            crate::warn_limited!(ratelog::TRANSFER_REFUSED, zone = %zone_name, %peer, %qtype,
                  "transfer refused: {why}");
            ResponseCode::Refused
        };
        let snapshot = match &runtime {
            None => Err(refuse("not a zone of ours")),
            Some(z) if !z.config.transfer_allowed(peer.ip(), auth.key.as_ref()) => {
                Err(refuse("not in allow_transfer"))
            }
            Some(_) if qtype == RecordType::AXFR && request.protocol() == Protocol::Udp => {
                Err(refuse("AXFR over UDP"))
            }
            Some(z) => match z.entry.snapshot() {
                Some(s) if !z.entry.is_expired() => Ok(s),
                _ => Err(ResponseCode::ServFail),
            },
        };
        let zone = match snapshot {
            Ok(z) => z,
            Err(rcode) => {
                out.response_code = rcode;
                return send_signed(
                    request,
                    &mut handle,
                    out,
                    &[],
                    edns.as_ref(),
                    auth.signer.as_mut(),
                )
                .await;
            }
        };
        let runtime = runtime.expect("a snapshot comes from a runtime");
        out.authoritative = true;
        let expire = expire_option(request, Some(&runtime));
        if let Some(e) = edns.as_mut()
            && let Some(o) = expire.clone()
        {
            e.options_mut().insert(o);
        }
        let content = if qtype == RecordType::AXFR {
            Content::Full(zone)
        } else {
            let client = request.authorities.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(soa.serial),
                _ => None,
            });
            let Some(client) = client else {
                out.response_code = ResponseCode::FormErr;
                return send_signed(
                    request,
                    &mut handle,
                    out,
                    &[],
                    edns.as_ref(),
                    auth.signer.as_mut(),
                )
                .await;
            };
            let ours = zone.serial();
            if client == ours || serial_gt(client, ours) || request.protocol() == Protocol::Udp {
                // Current (or ahead): our SOA alone. Over UDP the same
                // answer tells the client to come back over TCP (RFC 1995 §2).
                Content::UpToDate(zone)
            } else {
                match runtime.history_since(client, ours).await {
                    Some(diffs) => Content::Incremental {
                        current: zone,
                        diffs,
                    },
                    None => {
                        info!(zone = %zone_name, %peer, client, ours,
                              "IXFR from a serial not in the history: sending the whole zone");
                        Content::Full(zone)
                    }
                }
            }
        };
        let stream = match handle.stream() {
            Some(sink) if request.protocol() != Protocol::Udp => sink,
            _ => {
                let Content::UpToDate(z) = &content else {
                    unreachable!("only the lone SOA goes over UDP")
                };
                return send_signed(
                    request,
                    &mut handle,
                    out,
                    &[z.soa()],
                    edns.as_ref(),
                    auth.signer.as_mut(),
                )
                .await;
            }
        };
        let kind = content.kind();
        let serial = content.serial();
        let Ok(_slot) = self.transfer_slots.clone().try_acquire_owned() else {
            // ratelog: a client can ask for transfers as often as it likes.
            warn!(zone = %zone_name, %peer, %kind, serial, max_transfers_out = self.max_transfers_out,
                  "transfer out refused: max_transfers_out already running");
            self.events.tcp.transfer_out("refused");
            out.response_code = ResponseCode::Refused;
            return send_signed(
                request,
                &mut handle,
                out,
                &[],
                edns.as_ref(),
                auth.signer.as_mut(),
            )
            .await;
        };
        let opt = edns.as_ref().map(|e| OptOut {
            dnssec_ok: e.flags().dnssec_ok,
            expire: expire.as_ref().and_then(|o| match o {
                EdnsOption::Unknown(_, v) => v.as_slice().try_into().ok().map(u32::from_be_bytes),
                _ => None,
            }),
        });
        let mut question = Vec::with_capacity(query.name().len() + 5);
        crate::wire::put_name(&mut question, query.name());
        question.extend_from_slice(&u16::from(qtype).to_be_bytes());
        question.extend_from_slice(&u16::from(query.query_class()).to_be_bytes());
        let signed = auth.signer.is_some();
        let mut writer = MessageWriter::new(
            out.id,
            response_flags(out),
            question,
            opt,
            auth.signer.take(),
        );
        let started = Instant::now();
        self.events.tcp.transfers_out_running.inc();
        let ended = stream_transfer(&stream, &content, &mut writer).await;
        self.events.tcp.transfers_out_running.dec();
        let seconds = started.elapsed().as_secs_f64();
        let (messages, records, bytes) = (writer.messages(), writer.records(), writer.bytes());
        match &ended {
            Ok(()) => {
                info!(zone = %zone_name, %peer, %kind, serial, messages, records, bytes, seconds,
                      signed, ended = %"completed", "transfer out");
                self.events.tcp.transfer_out("completed");
            }
            Err(why) => {
                // ratelog: any client allowed to transfer can stop reading.
                warn!(zone = %zone_name, %peer, %kind, serial, messages, records, bytes, seconds,
                      signed, ended = %why, "transfer out");
                self.events.tcp.transfer_out("cut");
            }
        }
        ResponseInfo::from(Header {
            metadata: out,
            counts: HeaderCounts::default(),
        })
    }
}

/// The header flags of a response with `meta`, as hickory writes them.
fn response_flags(mut meta: Metadata) -> u16 {
    meta.message_type = MessageType::Response;
    let bytes = Header {
        metadata: meta,
        counts: HeaderCounts::default(),
    }
    .to_bytes()
    .expect("a header always encodes");
    u16::from_be_bytes([bytes[2], bytes[3]])
}

/// Why a transfer out ended before its last message.
#[derive(Debug, thiserror::Error)]
enum TransferEnd {
    #[error("{0}")]
    Encode(#[from] out::OutError),
    #[error("{0}")]
    Closed(#[from] crate::tcp::Closed),
}

/// Sends `content` message by message, each made only once the connection
/// has written the one before: a client that reads slowly holds one
/// message in memory, never the zone.
async fn stream_transfer(
    sink: &Sink,
    content: &Content,
    writer: &mut MessageWriter,
) -> Result<(), TransferEnd> {
    let mut records = content.records().peekable();
    while let Some(msg) = writer.next_message(&mut records)? {
        sink.send_written(msg).await?;
    }
    Ok(())
}

/// A bare FORMERR header for a request hickory could not parse.
pub fn formerr(wire: &[u8]) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(wire)).ok()?;
    let mut meta = Metadata::response_from_request(&header.metadata);
    // RFC 4035 §3.1.6: CD is not for authoritative answers to echo.
    meta.checking_disabled = false;
    meta.message_type = MessageType::Response;
    meta.response_code = ResponseCode::FormErr;
    let header = Header {
        metadata: meta,
        counts: HeaderCounts::default(),
    };
    header.to_bytes().ok()
}

/// One answer with only an answer section, signed when `signer` is given.
async fn send_signed<R: ResponseHandler>(
    request: &Request,
    handle: &mut R,
    meta: Metadata,
    answers: &[&Record],
    edns: Option<&Edns>,
    signer: Option<&mut Signer>,
) -> ResponseInfo {
    match out::send(
        handle,
        request.protocol(),
        &request.queries,
        meta,
        answers,
        edns,
        signer,
    )
    .await
    {
        Ok(info) => info,
        Err(e) => {
            debug!(error = %e, "sending response failed");
            failed(meta)
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

fn made<'z>(answer: &Answer<'z>, items: &[Item<'z>]) -> Vec<Record> {
    items
        .iter()
        .flat_map(|i| answer.records(i).into_owned())
        .collect()
}

/// Decides how much of the answer goes out: whole RRsets only (RFC 2181
/// §9). A missing answer or authority RRset, or missing required glue, sets
/// TC; other additional data is just left out.
pub fn fit<'z>(answer: &Answer<'z>, question: &[u8], limit: usize) -> Fit {
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
            .map(|i| answer.upper_bound(i))
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
