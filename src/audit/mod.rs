//! `outpost audit`: is the home zone prepared for a disaster?
//!
//! The checks follow the "Prepare for Disaster" advice of the sendmail book
//! (ch. 21.5): a high-preference MX at another site, equal and long TTLs on
//! the mail records so caches neither drift to the disaster host in normal
//! times nor forget it during a long outage, and a name server away from the
//! home site that keeps advertising it. On top of that come the two things
//! that decide how long an offsite secondary like Outpost can help: the SOA
//! expire (with Outpost's `min_expire`/`max_expire` bounds) and, in a signed
//! zone, the RRSIG expiration times.
//!
//! [`audit`] is the pure core: records in, [`Report`] out, clock passed in.
//! [`cli`] fetches the records (zone file or AXFR) and prints the report.
//!
//! # Checks and severities
//!
//! "Home" means at or below one of the home domains (`--home-domain`,
//! default: the zone itself). A host is *offsite* when its name is not home,
//! or when one of its addresses in the zone lies in an `--offsite-address`
//! network (for a partner host that was given a name in the home domain).
//!
//! | check            | subject                  | FAIL                                         | WARN |
//! |------------------|--------------------------|----------------------------------------------|------|
//! | `soa`            | apex SOA                 | no SOA at the apex                           | –    |
//! | `offsite-mx`     | each MX owner            | no offsite MX; or the disaster MX is in the zone without A/AAAA (or is a CNAME); no MX at the apex | an offsite MX exists but a home MX has a higher preference number, so the offsite host is not the last resort |
//! | `mx-target`      | each MX record           | in-zone target without A/AAAA, or a CNAME    | –    |
//! | `mx-ttl`         | each MX owner            | MX records of one owner with different TTLs  | –    |
//! | `mx-address-ttl` | each MX owner            | –                                            | A/AAAA of in-zone targets with a TTL other than the MX set's |
//! | `long-ttl`       | MX sets, target addresses, apex NS | –                                  | TTL under `--min-ttl` (default 30 days) |
//! | `soa-expire`     | apex SOA                 | the effective expire is shorter than the longest disaster TTL | – |
//! | `offsite-ns`     | apex NS                  | no offsite name server                       | –    |
//! | `rrsig-expiry`   | RRSIGs over MX sets and SOA | a signature expires before now + effective expire, is not yet valid, is malformed, or the set is unsigned in a signed zone | – |
//!
//! Why these levels: a missing offsite MX, unequal MX TTLs (RFC 2181 §5.2
//! forbids them; caches may keep only the disaster record and send all mail
//! there with no disaster), an offsite secondary that expires before caches
//! need it again, and signatures that turn the disaster MX bogus are outright
//! failures of the arrangement. A short TTL only narrows the window in which
//! caches still hold the records, and address records are separate RRsets
//! that a cache re-fetches whole from a working home DNS, so those are
//! warnings.
//!
//! The *effective expire* is the SOA expire clamped to `[min_expire,
//! max_expire]`, exactly as the refresh timers of a running Outpost do.
//!
//! Exit codes: 0 all pass, 1 the worst finding is a warning, 2 any failure,
//! 3 the audit could not be run (unreadable file, failed transfer, bad
//! option).

pub mod cli;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use ipnet::IpNet;
use serde::Serialize;

/// The TTL the sendmail book's "Prepare for Disaster" advice gives
/// disaster records (41 days).
pub const SEED_TTL: u32 = 3_600_000;
/// Default `--min-ttl`: "TTLs that are over a month".
pub const DEFAULT_MIN_TTL: u32 = 30 * 86_400;

pub const CHECK_SOA: &str = "soa";
pub const CHECK_OFFSITE_MX: &str = "offsite-mx";
pub const CHECK_MX_TARGET: &str = "mx-target";
pub const CHECK_MX_TTL: &str = "mx-ttl";
pub const CHECK_MX_ADDRESS_TTL: &str = "mx-address-ttl";
pub const CHECK_LONG_TTL: &str = "long-ttl";
pub const CHECK_SOA_EXPIRE: &str = "soa-expire";
pub const CHECK_OFFSITE_NS: &str = "offsite-ns";
pub const CHECK_RRSIG_EXPIRY: &str = "rrsig-expiry";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Pass,
    Warn,
    Fail,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Pass => "PASS",
            Severity::Warn => "WARN",
            Severity::Fail => "FAIL",
        }
    }

    /// Exit code of a report whose worst finding is `self`.
    pub fn exit_code(self) -> u8 {
        match self {
            Severity::Pass => 0,
            Severity::Warn => 1,
            Severity::Fail => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub check: &'static str,
    /// The record or RRset concerned, e.g. `example.com. MX 900 mx.partner.example.net.`.
    pub subject: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub zone: String,
    pub serial: Option<u32>,
    pub now: u64,
    /// SOA expire clamped to the Outpost bounds, in seconds.
    pub effective_expire: u32,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub result: Severity,
}

impl Report {
    pub fn worst(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Pass)
    }

    pub fn summary(&self) -> Summary {
        let count = |s| self.findings.iter().filter(|f| f.severity == s).count();
        Summary {
            pass: count(Severity::Pass),
            warn: count(Severity::Warn),
            fail: count(Severity::Fail),
            result: self.worst(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        self.worst().exit_code()
    }

    /// One line per finding, `PASS|WARN|FAIL  check  subject  reason`, then
    /// a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = writeln!(
                out,
                "{}  {}  {}  {}",
                f.severity.label(),
                f.check,
                f.subject,
                f.reason
            );
        }
        let s = self.summary();
        let serial = self
            .serial
            .map_or_else(|| "no SOA".to_string(), |s| format!("serial {s}"));
        let _ = writeln!(
            out,
            "RESULT  {}  {} ({serial}): {} pass, {} warn, {} fail",
            s.result.label(),
            self.zone,
            s.pass,
            s.warn,
            s.fail
        );
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            report: &'a Report,
            summary: Summary,
        }
        serde_json::to_value(Out {
            report: self,
            summary: self.summary(),
        })
        .expect("a report always serializes")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    /// Domains at the home site; empty means the zone itself.
    pub home_domains: Vec<Name>,
    /// Addresses at other sites: a host with an address in one of these is
    /// offsite whatever its name.
    pub offsite_nets: Vec<IpNet>,
    /// Disaster-relevant TTLs under this are warned about, in seconds.
    pub min_ttl: u32,
    /// Outpost's bounds on the SOA expire, in seconds.
    pub min_expire: u32,
    pub max_expire: u32,
    /// Seconds since the Unix epoch.
    pub now: u64,
    /// What a resolver said about the MX targets outside the zone's own
    /// data (the core does no I/O; `cli` asks).
    pub external: External,
}

/// Lookups of hosts the zone's data cannot vouch for: out of zone, or in a
/// delegated child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum External {
    /// Not looked up; the reason is shown in the findings.
    NotAsked(String),
    Asked {
        /// Who was asked, as shown in the findings ("resolver 192.0.2.1:53").
        resolver: String,
        answers: BTreeMap<Name, Lookup>,
    },
}

/// A resolver's answer for one host's A and AAAA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Addresses(Vec<IpAddr>),
    /// It answered, with no address (NXDOMAIN, NODATA, SERVFAIL, ...).
    NoAddress(String),
    /// No usable answer (timeout, unreachable): nothing is known.
    Failed(String),
}

/// A target's status: `confirmed` is false when nothing could be checked.
struct TargetStatus {
    confirmed: bool,
    text: String,
}

impl AuditOptions {
    /// Defaults of a stock Outpost, at time `now`.
    pub fn new(now: u64) -> Self {
        AuditOptions {
            home_domains: Vec::new(),
            offsite_nets: Vec::new(),
            min_ttl: DEFAULT_MIN_TTL,
            min_expire: secs32(crate::config::DEFAULT_MIN_EXPIRE),
            max_expire: secs32(crate::config::DEFAULT_MAX_EXPIRE),
            now,
            external: External::NotAsked("no resolver was asked".into()),
        }
    }
}

/// The MX targets of the zone that its own data cannot vouch for (out of
/// zone, or below a zone cut): the ones `cli` asks a resolver about.
pub fn external_mx_targets(zone: &Name, records: &[Record]) -> Vec<Name> {
    let opts = AuditOptions::new(0);
    let view = View::new(zone, records, &opts);
    let mut out: Vec<Name> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) if zone.zone_of(&r.name) && !mx.exchange.is_root() => {
                Some(mx.exchange.clone())
            }
            _ => None,
        })
        .filter(|t| view.locate(t) != Location::InZone)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A duration in whole seconds, saturating at `u32::MAX` (TTLs and SOA
/// timers are 32-bit).
pub fn secs32(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// Days rather than `format_duration`'s weeks: the seed and operators speak
/// of "41 days", not "5w6d16h".
fn fmt_secs(secs: u32) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, scale) in [('d', 86_400), ('h', 3600), ('m', 60), ('s', 1)] {
        if rest >= scale {
            let _ = write!(out, "{}{unit}", rest / scale);
            rest %= scale;
        }
    }
    out
}

/// Names as written in zone files, fully qualified.
fn show(name: &Name) -> String {
    name.to_ascii()
}

fn mx_text(r: &Record) -> String {
    match &r.data {
        RData::MX(mx) => format!(
            "{} MX {} {}",
            show(&r.name),
            mx.preference,
            show(&mx.exchange)
        ),
        _ => format!("{} {}", show(&r.name), r.record_type()),
    }
}

/// Where a name lives relative to the audited zone's data.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    /// Authoritative data of this zone.
    InZone,
    /// Below a zone cut: the child zone answers for it.
    Delegated(Name),
    OutOfZone,
}

/// The zone's records indexed by owner, with its zone cuts.
struct View<'a> {
    zone: &'a Name,
    nodes: BTreeMap<Name, Vec<&'a Record>>,
    cuts: Vec<Name>,
    home: Vec<Name>,
    offsite_nets: &'a [IpNet],
    external: &'a External,
}

impl<'a> View<'a> {
    fn new(zone: &'a Name, records: &'a [Record], opts: &'a AuditOptions) -> Self {
        let mut nodes: BTreeMap<Name, Vec<&Record>> = BTreeMap::new();
        for r in records {
            // Name's Ord and Eq ignore case, so owners differing only in case
            // share a node, as they do in the DNS.
            if r.dns_class == DNSClass::IN && zone.zone_of(&r.name) {
                nodes.entry(r.name.clone()).or_default().push(r);
            }
        }
        let cuts = nodes
            .iter()
            .filter(|(n, rs)| *n != zone && rs.iter().any(|r| r.record_type() == RecordType::NS))
            .map(|(n, _)| n.clone())
            .collect();
        let home = if opts.home_domains.is_empty() {
            vec![zone.clone()]
        } else {
            opts.home_domains.clone()
        };
        View {
            zone,
            nodes,
            cuts,
            home,
            offsite_nets: &opts.offsite_nets,
            external: &opts.external,
        }
    }

    fn rrset(&self, name: &Name, rtype: RecordType) -> Vec<&'a Record> {
        self.nodes
            .get(name)
            .map(|rs| {
                rs.iter()
                    .copied()
                    .filter(|r| r.record_type() == rtype)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn locate(&self, name: &Name) -> Location {
        if !self.zone.zone_of(name) {
            return Location::OutOfZone;
        }
        match self.cuts.iter().find(|c| c.zone_of(name)) {
            Some(cut) => Location::Delegated(cut.clone()),
            None => Location::InZone,
        }
    }

    /// A/AAAA records at `name`, glue included.
    fn addresses(&self, name: &Name) -> Vec<&'a Record> {
        let mut v = self.rrset(name, RecordType::A);
        v.extend(self.rrset(name, RecordType::AAAA));
        v
    }

    fn is_home_name(&self, name: &Name) -> bool {
        self.home.iter().any(|h| h.zone_of(name))
    }

    /// Why `host` counts as offsite, or `None` if it is at home.
    fn offsite_reason(&self, host: &Name) -> Option<String> {
        if !self.is_home_name(host) {
            return Some(format!("{} is outside the home domains", show(host)));
        }
        for r in self.addresses(host) {
            let ip = match &r.data {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                _ => continue,
            };
            if let Some(net) = self.offsite_nets.iter().find(|n| n.contains(&ip)) {
                return Some(format!(
                    "{} has address {ip} in offsite network {net}",
                    show(host)
                ));
            }
        }
        None
    }

    fn home_list(&self) -> String {
        self.home.iter().map(show).collect::<Vec<_>>().join(", ")
    }

    /// Whether an MX target resolves: from the zone's own data when it
    /// lives there, else from the resolver's answer. `Err` says why not.
    fn target_status(&self, target: &Name) -> Result<TargetStatus, String> {
        let place = match self.locate(target) {
            Location::OutOfZone => format!("{} is out of zone", show(target)),
            Location::Delegated(cut) => {
                format!("{} is in the delegated zone {}", show(target), show(&cut))
            }
            Location::InZone => String::new(),
        };
        if !place.is_empty() {
            return match self.external {
                External::NotAsked(why) => Ok(TargetStatus {
                    confirmed: false,
                    text: format!("{place}; its addresses were not looked up ({why})"),
                }),
                External::Asked { resolver, answers } => match answers.get(target) {
                    Some(Lookup::Addresses(addrs)) => Ok(TargetStatus {
                        confirmed: true,
                        text: format!(
                            "{place} and resolves to {} ({resolver})",
                            addrs
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }),
                    Some(Lookup::NoAddress(why)) => Err(format!(
                        "{place} and has no address: {resolver} answered {why}"
                    )),
                    Some(Lookup::Failed(why)) => Ok(TargetStatus {
                        confirmed: false,
                        text: format!("{place}; its addresses could not be looked up: {why}"),
                    }),
                    None => Ok(TargetStatus {
                        confirmed: false,
                        text: format!("{place}; its addresses were not looked up"),
                    }),
                },
            };
        }
        if !self.rrset(target, RecordType::CNAME).is_empty() {
            Err(format!(
                "{} is an alias (CNAME); MX targets must not be (RFC 2181 §10.3)",
                show(target)
            ))
        } else {
            let addrs = self.addresses(target);
            if addrs.is_empty() {
                Err(format!(
                    "{} is in the zone but has no A/AAAA record",
                    show(target)
                ))
            } else {
                let types: BTreeSet<String> =
                    addrs.iter().map(|r| r.record_type().to_string()).collect();
                Ok(TargetStatus {
                    confirmed: true,
                    text: format!(
                        "{} resolves in the zone ({})",
                        show(target),
                        types.into_iter().collect::<Vec<_>>().join("/")
                    ),
                })
            }
        }
    }
}

/// One owner's MX set.
struct MxSet<'a> {
    owner: Name,
    records: Vec<&'a Record>,
}

impl MxSet<'_> {
    fn mx(&self) -> impl Iterator<Item = (&Record, u16, &Name)> {
        self.records.iter().filter_map(|r| match &r.data {
            RData::MX(mx) => Some((*r, mx.preference, &mx.exchange)),
            _ => None,
        })
    }

    /// RFC 7505: a single MX with the root as exchange says "no mail here".
    fn is_null(&self) -> bool {
        self.records.len() == 1 && self.mx().all(|(_, _, ex)| ex.is_root())
    }

    fn min_ttl(&self) -> u32 {
        self.records.iter().map(|r| r.ttl).min().unwrap_or(0)
    }

    fn max_ttl(&self) -> u32 {
        self.records.iter().map(|r| r.ttl).max().unwrap_or(0)
    }
}

struct Audit<'a> {
    view: View<'a>,
    opts: &'a AuditOptions,
    findings: Vec<Finding>,
}

impl Audit<'_> {
    fn push(&mut self, severity: Severity, check: &'static str, subject: String, reason: String) {
        self.findings.push(Finding {
            severity,
            check,
            subject,
            reason,
        });
    }
}

/// Audits `records` (a whole zone, as a transfer or a zone file yields it)
/// for disaster readiness. Pure: the clock is `opts.now`.
pub fn audit(zone: &Name, records: &[Record], opts: &AuditOptions) -> Report {
    let mut a = Audit {
        view: View::new(zone, records, opts),
        opts,
        findings: Vec::new(),
    };

    let soa = a
        .view
        .rrset(zone, RecordType::SOA)
        .into_iter()
        .find_map(|r| match &r.data {
            RData::SOA(s) => Some(s.clone()),
            _ => None,
        });
    if soa.is_none() {
        a.push(
            Severity::Fail,
            CHECK_SOA,
            format!("{} SOA", show(zone)),
            "no SOA record at the zone apex".into(),
        );
    }
    // A negative expire (the field is unsigned on the wire, hickory reads it
    // signed) is nonsense; treat it as none at all.
    let soa_expire = soa
        .as_ref()
        .map_or(0, |s| u32::try_from(s.expire).unwrap_or(0));
    let effective_expire = soa_expire.min(opts.max_expire).max(opts.min_expire);

    let mx_sets: Vec<MxSet> = a
        .view
        .nodes
        .keys()
        .filter(|n| a.view.locate(n) == Location::InZone)
        .map(|n| MxSet {
            owner: n.clone(),
            records: a.view.rrset(n, RecordType::MX),
        })
        .filter(|s| !s.records.is_empty())
        .collect();
    let mail_sets: Vec<&MxSet> = mx_sets.iter().filter(|s| !s.is_null()).collect();

    check_offsite_mx(&mut a, &mx_sets);
    for set in &mail_sets {
        check_mx_targets(&mut a, set);
    }
    for set in &mail_sets {
        check_mx_ttl(&mut a, set);
    }
    for set in &mail_sets {
        check_mx_address_ttl(&mut a, set);
    }
    let longest = check_long_ttl(&mut a, &mail_sets);
    if let Some(soa) = &soa {
        check_soa_expire(&mut a, soa.expire, effective_expire, longest);
    }
    check_offsite_ns(&mut a);
    check_rrsig_expiry(&mut a, &mail_sets, effective_expire);

    Report {
        zone: show(zone),
        serial: soa.map(|s| s.serial),
        now: opts.now,
        effective_expire,
        findings: a.findings,
    }
}

fn check_offsite_mx(a: &mut Audit, sets: &[MxSet]) {
    let zone = a.view.zone;
    if !sets.iter().any(|s| &s.owner == zone) {
        a.push(
            Severity::Fail,
            CHECK_OFFSITE_MX,
            format!("{} MX", show(zone)),
            "no MX records at the zone apex, so no disaster MX either".into(),
        );
    }
    for set in sets {
        if set.is_null() {
            a.push(
                Severity::Pass,
                CHECK_OFFSITE_MX,
                format!("{} MX 0 .", show(&set.owner)),
                "null MX (RFC 7505): the name accepts no mail, nothing to prepare".into(),
            );
            continue;
        }
        let top = set.mx().map(|(_, p, _)| p).max().unwrap_or(0);
        let offsite: Vec<(&Record, u16, String)> = set
            .mx()
            .filter_map(|(r, p, ex)| a.view.offsite_reason(ex).map(|why| (r, p, why)))
            .collect();
        let top_offsite: Vec<&(&Record, u16, String)> =
            offsite.iter().filter(|(_, p, _)| *p == top).collect();
        if let Some(&(r, _, why)) = top_offsite.first() {
            // Any usable disaster MX at the top preference is enough; report
            // the first one that resolves, else the first one's problem.
            let resolving = top_offsite.iter().find_map(|(r, _, why)| {
                let RData::MX(mx) = &r.data else { return None };
                a.view
                    .target_status(&mx.exchange)
                    .ok()
                    .map(|status| (*r, why, status))
            });
            match resolving {
                Some((r, why, status)) => a.push(
                    // A disaster MX that could not be looked up is not a
                    // pass; one the operator chose not to look up is.
                    if status.confirmed || matches!(a.view.external, External::NotAsked(_)) {
                        Severity::Pass
                    } else {
                        Severity::Warn
                    },
                    CHECK_OFFSITE_MX,
                    mx_text(r),
                    format!("highest preference number; {why}; {}", status.text),
                ),
                None => {
                    let RData::MX(mx) = &r.data else { continue };
                    let problem = a.view.target_status(&mx.exchange).err().unwrap_or_default();
                    a.push(
                        Severity::Fail,
                        CHECK_OFFSITE_MX,
                        mx_text(r),
                        format!("{why}, but {problem}: the disaster MX cannot be reached"),
                    );
                }
            }
        } else if let Some((r, p, why)) = offsite.first() {
            a.push(
                Severity::Warn,
                CHECK_OFFSITE_MX,
                mx_text(r),
                format!(
                    "{why}, but home MX records have a higher preference number ({top} > {p}): \
                     the offsite host is not the last resort and gets mail with no disaster"
                ),
            );
        } else {
            a.push(
                Severity::Fail,
                CHECK_OFFSITE_MX,
                format!("{} MX", show(&set.owner)),
                format!(
                    "no MX outside the home domains ({}): mail has nowhere to go while the \
                     home site is down",
                    a.view.home_list()
                ),
            );
        }
    }
}

fn check_mx_targets(a: &mut Audit, set: &MxSet) {
    let results: Vec<(String, Result<TargetStatus, String>)> = set
        .mx()
        .map(|(r, _, ex)| (mx_text(r), a.view.target_status(ex)))
        .collect();
    for (subject, status) in results {
        match status {
            Ok(status) => a.push(Severity::Pass, CHECK_MX_TARGET, subject, status.text),
            Err(why) => a.push(Severity::Fail, CHECK_MX_TARGET, subject, why),
        }
    }
}

/// "TTL: what, what; TTL: what" for records grouped by TTL, longest first.
fn group_by_ttl(items: &[(u32, String)]) -> String {
    let mut groups: BTreeMap<std::cmp::Reverse<u32>, Vec<&str>> = BTreeMap::new();
    for (ttl, what) in items {
        groups
            .entry(std::cmp::Reverse(*ttl))
            .or_default()
            .push(what);
    }
    groups
        .iter()
        .map(|(ttl, whats)| format!("TTL {}: {}", ttl.0, whats.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

fn check_mx_ttl(a: &mut Audit, set: &MxSet) {
    let subject = format!("{} MX", show(&set.owner));
    if set.min_ttl() == set.max_ttl() {
        a.push(
            Severity::Pass,
            CHECK_MX_TTL,
            subject,
            format!(
                "all {} MX records have TTL {}",
                set.records.len(),
                set.min_ttl()
            ),
        );
        return;
    }
    let items: Vec<(u32, String)> = set
        .mx()
        .map(|(r, p, ex)| (r.ttl, format!("MX {p} {}", show(ex))))
        .collect();
    a.push(
        Severity::Fail,
        CHECK_MX_TTL,
        subject,
        format!(
            "MX TTLs differ ({}): caches drop the shorter-lived records first and send mail \
             to the disaster host with no disaster",
            group_by_ttl(&items)
        ),
    );
}

/// Address RRsets of the in-zone targets of `set`, one entry per (name, type).
fn target_addresses<'a>(view: &View<'a>, set: &MxSet) -> Vec<(Name, RecordType, Vec<&'a Record>)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (_, _, ex) in set.mx() {
        if view.locate(ex) != Location::InZone {
            continue;
        }
        for rtype in [RecordType::A, RecordType::AAAA] {
            let rs = view.rrset(ex, rtype);
            if !rs.is_empty() && seen.insert((ex.clone(), rtype)) {
                out.push((ex.clone(), rtype, rs));
            }
        }
    }
    out
}

fn check_mx_address_ttl(a: &mut Audit, set: &MxSet) {
    let subject = format!("{} MX", show(&set.owner));
    let reference = set.max_ttl();
    let addrs = target_addresses(&a.view, set);
    if addrs.is_empty() {
        a.push(
            Severity::Pass,
            CHECK_MX_ADDRESS_TTL,
            subject,
            "no in-zone MX target has addresses to compare".into(),
        );
        return;
    }
    let differing: Vec<String> = addrs
        .iter()
        .flat_map(|(name, rtype, rs)| rs.iter().map(move |r| (name, rtype, r.ttl)))
        .filter(|(_, _, ttl)| *ttl != reference)
        .map(|(name, rtype, ttl)| format!("{} {rtype} TTL {ttl}", show(name)))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if differing.is_empty() {
        a.push(
            Severity::Pass,
            CHECK_MX_ADDRESS_TTL,
            subject,
            format!("addresses of the in-zone MX targets have the MX TTL {reference}"),
        );
    } else {
        a.push(
            Severity::Warn,
            CHECK_MX_ADDRESS_TTL,
            subject,
            format!(
                "addresses of in-zone MX targets differ from the MX TTL {reference}: {}",
                differing.join(", ")
            ),
        );
    }
}

/// Warns about short disaster-relevant TTLs; returns the longest such TTL.
fn check_long_ttl(a: &mut Audit, sets: &[&MxSet]) -> u32 {
    let min = a.opts.min_ttl;
    // (subject, shortest TTL of the RRset, longest TTL of the RRset)
    let mut rrsets: Vec<(String, u32, u32)> = Vec::new();
    for set in sets {
        rrsets.push((
            format!("{} MX", show(&set.owner)),
            set.min_ttl(),
            set.max_ttl(),
        ));
    }
    let mut seen = BTreeSet::new();
    for set in sets {
        for (name, rtype, rs) in target_addresses(&a.view, set) {
            if seen.insert((name.clone(), rtype)) {
                let lo = rs.iter().map(|r| r.ttl).min().unwrap_or(0);
                let hi = rs.iter().map(|r| r.ttl).max().unwrap_or(0);
                rrsets.push((format!("{} {rtype}", show(&name)), lo, hi));
            }
        }
    }
    let ns = a.view.rrset(a.view.zone, RecordType::NS);
    if !ns.is_empty() {
        let lo = ns.iter().map(|r| r.ttl).min().unwrap_or(0);
        let hi = ns.iter().map(|r| r.ttl).max().unwrap_or(0);
        rrsets.push((format!("{} NS", show(a.view.zone)), lo, hi));
    }
    let mut longest = 0;
    for (subject, lo, hi) in rrsets {
        longest = longest.max(hi);
        if lo >= min {
            a.push(
                Severity::Pass,
                CHECK_LONG_TTL,
                subject,
                format!("TTL {lo} ({}) is at least {}", fmt_secs(lo), fmt_secs(min)),
            );
        } else {
            a.push(
                Severity::Warn,
                CHECK_LONG_TTL,
                subject,
                format!(
                    "TTL {lo} ({}) is under {}: caches forget the record early in a disaster \
                     (the sendmail book's disaster advice is {SEED_TTL})",
                    fmt_secs(lo),
                    fmt_secs(min)
                ),
            );
        }
    }
    longest
}

fn check_soa_expire(a: &mut Audit, raw_expire: i32, effective: u32, longest: u32) {
    let subject = format!("{} SOA expire {raw_expire}", show(a.view.zone));
    let expire = u32::try_from(raw_expire).unwrap_or(0);
    if expire >= longest && effective >= longest {
        a.push(
            Severity::Pass,
            CHECK_SOA_EXPIRE,
            subject,
            format!(
                "expire {} covers the longest disaster TTL {longest} ({})",
                fmt_secs(expire),
                fmt_secs(longest)
            ),
        );
    } else if effective >= longest {
        a.push(
            Severity::Pass,
            CHECK_SOA_EXPIRE,
            subject,
            format!(
                "expire {} is shorter than the longest disaster TTL {longest} ({}), but \
                 Outpost's min_expire {} covers it",
                fmt_secs(expire),
                fmt_secs(longest),
                fmt_secs(a.opts.min_expire)
            ),
        );
    } else {
        let bound = if effective < expire {
            format!(" (cut to {} by max_expire)", fmt_secs(effective))
        } else if effective > expire {
            format!(" (raised to {} by min_expire)", fmt_secs(effective))
        } else {
            String::new()
        };
        a.push(
            Severity::Fail,
            CHECK_SOA_EXPIRE,
            subject,
            format!(
                "expire {}{bound} is shorter than the longest disaster TTL {longest} ({}): \
                 the offsite secondary stops answering before caches give up the records; \
                 raise the SOA expire or Outpost's min_expire",
                fmt_secs(expire),
                fmt_secs(longest)
            ),
        );
    }
}

fn check_offsite_ns(a: &mut Audit) {
    let zone = a.view.zone;
    let subject = format!("{} NS", show(zone));
    let ns: Vec<Name> = a
        .view
        .rrset(zone, RecordType::NS)
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.clone()),
            _ => None,
        })
        .collect();
    if ns.is_empty() {
        a.push(
            Severity::Fail,
            CHECK_OFFSITE_NS,
            subject,
            "no NS records at the zone apex".into(),
        );
        return;
    }
    if let Some(why) = ns.iter().find_map(|n| a.view.offsite_reason(n)) {
        a.push(Severity::Pass, CHECK_OFFSITE_NS, subject, why);
    } else {
        let names = ns.iter().map(show).collect::<Vec<_>>().join(", ");
        a.push(
            Severity::Fail,
            CHECK_OFFSITE_NS,
            subject,
            format!(
                "all name servers ({names}) are in the home domains ({}) and none has an \
                 address in an offsite network: nothing advertises the disaster MX while the \
                 home site is down",
                a.view.home_list()
            ),
        );
    }
}

/// The fields of RRSIG RDATA (RFC 4034 §3.1) the audit needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rrsig {
    pub type_covered: RecordType,
    pub algorithm: u8,
    pub expiration: u32,
    pub inception: u32,
    pub key_tag: u16,
    pub signer: Name,
}

impl Rrsig {
    /// Parses RRSIG RDATA from its uncompressed wire form.
    pub fn from_wire(wire: &[u8]) -> Option<Rrsig> {
        if wire.len() < 18 {
            return None;
        }
        let u16_at = |i: usize| u16::from_be_bytes([wire[i], wire[i + 1]]);
        let u32_at =
            |i: usize| u32::from_be_bytes([wire[i], wire[i + 1], wire[i + 2], wire[i + 3]]);
        let (signer, _) = crate::rr::read_name(&wire[18..])?;
        Some(Rrsig {
            type_covered: RecordType::from(u16_at(0)),
            algorithm: wire[2],
            expiration: u32_at(8),
            inception: u32_at(12),
            key_tag: u16_at(16),
            signer,
        })
    }
}

/// An RRSIG time field as seconds since the epoch: the 32-bit value is
/// serial-number arithmetic (RFC 4034 §3.1.5), so it means the instant
/// closest to `now` with those low 32 bits.
pub fn rrsig_time(field: u32, now: u64) -> i64 {
    let delta = field.wrapping_sub(now as u32) as i32;
    now as i64 + i64::from(delta)
}

/// `YYYYMMDDHHmmSS` in UTC, the RRSIG presentation format.
pub fn format_rrsig_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    // Days to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn check_rrsig_expiry(a: &mut Audit, sets: &[&MxSet], effective_expire: u32) {
    let zone = a.view.zone;
    let signed = a
        .view
        .nodes
        .values()
        .flatten()
        .any(|r| r.record_type() == RecordType::RRSIG);
    if !signed {
        a.push(
            Severity::Pass,
            CHECK_RRSIG_EXPIRY,
            show(zone),
            "zone is not signed (no RRSIG records)".into(),
        );
        return;
    }
    // A malformed signature anywhere is reported once, by its owner.
    let malformed: Vec<String> = a
        .view
        .nodes
        .values()
        .flatten()
        .filter(|r| r.record_type() == RecordType::RRSIG)
        .filter(|r| Rrsig::from_wire(&crate::rr::rdata_to_wire(&r.data)).is_none())
        .map(|r| format!("{} RRSIG", show(&r.name)))
        .collect();
    for subject in malformed {
        a.push(
            Severity::Fail,
            CHECK_RRSIG_EXPIRY,
            subject,
            "malformed RRSIG RDATA".into(),
        );
    }
    let now = a.opts.now as i64;
    let needed = now + i64::from(effective_expire);
    let mut targets: Vec<(Name, RecordType)> = sets
        .iter()
        .map(|s| (s.owner.clone(), RecordType::MX))
        .collect();
    targets.push((zone.clone(), RecordType::SOA));
    for (owner, covered) in targets {
        let sigs: Vec<Rrsig> = a
            .view
            .rrset(&owner, RecordType::RRSIG)
            .iter()
            .filter_map(|r| Rrsig::from_wire(&crate::rr::rdata_to_wire(&r.data)))
            .filter(|s| s.type_covered == covered)
            .collect();
        if sigs.is_empty() {
            a.push(
                Severity::Fail,
                CHECK_RRSIG_EXPIRY,
                format!("{} {covered}", show(&owner)),
                format!(
                    "the zone is signed but no RRSIG covers the {covered} set: validating \
                     resolvers treat it as bogus"
                ),
            );
            continue;
        }
        for sig in sigs {
            let subject = format!(
                "{} RRSIG {covered} (alg {}, key {})",
                show(&owner),
                sig.algorithm,
                sig.key_tag
            );
            let exp = rrsig_time(sig.expiration, a.opts.now);
            let inc = rrsig_time(sig.inception, a.opts.now);
            let (severity, reason) = if inc > now {
                (
                    Severity::Fail,
                    format!("not valid yet: inception {}", format_rrsig_time(inc)),
                )
            } else if exp < now {
                (
                    Severity::Fail,
                    format!("expired at {}", format_rrsig_time(exp)),
                )
            } else if exp < needed {
                (
                    Severity::Fail,
                    format!(
                        "expires {} (in {}), before the zone's effective expiry {} \
                         (now + {}): validating resolvers reject the disaster data while \
                         Outpost still serves it",
                        format_rrsig_time(exp),
                        fmt_secs(u32::try_from(exp - now).unwrap_or(u32::MAX)),
                        format_rrsig_time(needed),
                        fmt_secs(effective_expire)
                    ),
                )
            } else {
                (
                    Severity::Pass,
                    format!(
                        "expires {}, not before the zone's effective expiry {} (now + {})",
                        format_rrsig_time(exp),
                        format_rrsig_time(needed),
                        fmt_secs(effective_expire)
                    ),
                )
            };
            a.push(severity, CHECK_RRSIG_EXPIRY, subject, reason);
        }
    }
}
