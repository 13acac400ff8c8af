//! Catalog zones (RFC 9432, version "2"), the consumer's side: what a
//! catalog zone lists, and which catalog (or `[[zone]]`) owns each zone.
//!
//! A catalog is read from a built snapshot, so it is exactly what the query
//! path would serve. A catalog that cannot be read (no version "2") is
//! refused as a transfer is refused: the previous copy, and with it the
//! previous membership, stays. Membership is a function of the catalog
//! copies in service and the configuration, so a restart from disk serves
//! the same members at once, and a failed transfer of the catalog changes
//! nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hickory_proto::rr::{Name, RData, RecordType};

use crate::config::{CatalogConfig, ZoneConfig};
use crate::zone::Zone;

/// The only schema version this consumer reads (RFC 9432 §4.2).
pub const VERSION: &str = "2";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogError {
    #[error("catalog {catalog}: no version TXT record at version.{catalog}")]
    NoVersion { catalog: String },
    #[error("catalog {catalog}: schema version {found} is not supported (only \"2\")")]
    Version { catalog: String, found: String },
}

/// One member as its catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub zone: Name,
    /// The member node's label under `zones.` (RFC 9432 §4.3's unique ID).
    pub id: String,
    /// The `group` property's values, in canonical order.
    pub groups: Vec<String>,
    /// The `coo` property: the catalog this member is moving to.
    pub coo: Option<Name>,
}

/// What one catalog zone lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalog {
    /// By zone name; one entry per zone.
    pub members: BTreeMap<Name, Member>,
    /// What was ignored and why (member nodes with no or several PTRs,
    /// zones listed twice), for the operator.
    pub problems: Vec<String>,
}

fn lower(name: &Name) -> Name {
    name.to_lowercase()
}

/// The character-strings of a TXT record; the zone store keeps TXT RDATA
/// as it came, so it may reach here undecoded.
fn txt_strings(data: &RData) -> Option<Vec<String>> {
    match data {
        RData::TXT(t) => Some(
            t.txt_data
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect(),
        ),
        RData::Unknown { rdata, .. } => {
            let mut rest: &[u8] = &rdata.anything;
            let mut out = Vec::new();
            while let Some((&len, tail)) = rest.split_first() {
                let s = tail.get(..usize::from(len))?;
                out.push(String::from_utf8_lossy(s).into_owned());
                rest = &tail[usize::from(len)..];
            }
            Some(out)
        }
        _ => None,
    }
}

impl Catalog {
    /// Reads the catalog zone `zone` (whose origin is the catalog's name).
    pub fn read(zone: &Zone) -> Result<Catalog, CatalogError> {
        let origin = lower(zone.origin());
        let catalog = origin.to_string();
        let version = Name::from_ascii(format!("version.{catalog}")).ok();
        let zones = Name::from_ascii(format!("zones.{catalog}")).ok();
        let mut versions = Vec::new();
        // Per member node label: PTR targets, groups, coo targets.
        let mut ptrs: BTreeMap<String, Vec<Name>> = BTreeMap::new();
        let mut groups: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut coos: HashMap<String, Vec<Name>> = HashMap::new();
        let zl = zones.as_ref().map_or(0, |z| z.num_labels());
        for r in zone.records() {
            let owner = lower(&r.name);
            if Some(&owner) == version.as_ref() && r.record_type() == RecordType::TXT {
                versions.extend(txt_strings(&r.data).unwrap_or_default());
                continue;
            }
            let Some(zones) = zones.as_ref() else {
                continue;
            };
            if !zones.zone_of(&owner) || owner.num_labels() <= zl {
                continue;
            }
            let labels: Vec<String> = owner
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
            let extra = (owner.num_labels() - zl) as usize;
            match (extra, r.record_type(), &r.data) {
                (1, RecordType::PTR, RData::PTR(p)) => {
                    ptrs.entry(labels[0].clone()).or_default().push(lower(&p.0));
                }
                (2, RecordType::TXT, data) if labels[0] == "group" => {
                    groups
                        .entry(labels[1].clone())
                        .or_default()
                        .extend(txt_strings(data).unwrap_or_default());
                }
                (2, RecordType::PTR, RData::PTR(p)) if labels[0] == "coo" => {
                    coos.entry(labels[1].clone()).or_default().push(lower(&p.0));
                }
                // Other properties, and anything this consumer does not
                // know, are ignored (RFC 9432 §3).
                _ => {}
            }
        }
        match versions.as_slice() {
            [] => return Err(CatalogError::NoVersion { catalog }),
            [v] if v == VERSION => {}
            other => {
                return Err(CatalogError::Version {
                    catalog,
                    found: other
                        .iter()
                        .map(|v| format!("{v:?}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                });
            }
        }
        let mut out = Catalog::default();
        for (id, targets) in ptrs {
            let [target] = targets.as_slice() else {
                out.problems.push(format!(
                    "member node {id}.zones.{catalog} has {} PTR records; ignored",
                    targets.len()
                ));
                continue;
            };
            if target.is_root() || origin.zone_of(target) {
                out.problems.push(format!(
                    "member node {id}.zones.{catalog} names {target}, which cannot be a member; ignored"
                ));
                continue;
            }
            if let Some(first) = out.members.get(target) {
                // Member nodes in canonical order: the first one keeps it.
                out.problems.push(format!(
                    "{target} is listed twice (member nodes {} and {id}); served once, as {}",
                    first.id, first.id
                ));
                continue;
            }
            let coo = match coos.get(&id).map(Vec::as_slice) {
                Some([one]) => Some(one.clone()),
                _ => None,
            };
            out.members.insert(
                target.clone(),
                Member {
                    zone: target.clone(),
                    groups: groups
                        .get(&id)
                        .map(|g| g.iter().cloned().collect())
                        .unwrap_or_default(),
                    id,
                    coo,
                },
            );
        }
        Ok(out)
    }
}

/// The zones the catalogs add, each owned by one catalog, with the reasons
/// others were not taken.
#[derive(Debug, Default)]
pub struct Resolution {
    pub members: Vec<std::sync::Arc<ZoneConfig>>,
    /// By catalog name: what was left out of that catalog and why.
    pub problems: BTreeMap<Name, Vec<String>>,
}

/// Decides which catalog owns each listed zone. `configured` are the
/// `[[zone]]` names (they win over any catalog); `catalogs` pairs each
/// `[[catalog]]`, in configuration order, with what its copy in service
/// lists (`None`: no copy yet); `previous` is who owned each member before,
/// so that a zone listed by a second catalog stays where it was.
pub fn resolve(
    configured: &BTreeSet<Name>,
    catalogs: &[(&CatalogConfig, Option<&Catalog>)],
    previous: &HashMap<Name, Name>,
) -> Resolution {
    let mut out = Resolution::default();
    let mut candidates: BTreeMap<&Name, Vec<usize>> = BTreeMap::new();
    for (i, (cfg, listed)) in catalogs.iter().enumerate() {
        let Some(listed) = listed else { continue };
        if !listed.problems.is_empty() {
            out.problems
                .entry(cfg.name.clone())
                .or_default()
                .extend(listed.problems.iter().cloned());
        }
        for zone in listed.members.keys() {
            candidates.entry(zone).or_default().push(i);
        }
    }
    for (zone, lists) in candidates {
        let name_of = |i: usize| &catalogs[i].0.name;
        if configured.contains(zone) {
            for &i in &lists {
                out.problems
                    .entry(name_of(i).clone())
                    .or_default()
                    .push(format!(
                        "{zone} is also a [[zone]] of the configuration, which serves it"
                    ));
            }
            continue;
        }
        // A change of ownership (RFC 9432 §5.6): a catalog whose entry
        // points to another catalog that lists the zone gives it up.
        let member_of = |i: usize| &catalogs[i].1.expect("listed").members[zone];
        let keep: Vec<usize> = lists
            .iter()
            .copied()
            .filter(|&i| {
                !member_of(i)
                    .coo
                    .as_ref()
                    .is_some_and(|to| to != name_of(i) && lists.iter().any(|&j| name_of(j) == to))
            })
            .collect();
        let keep = if keep.is_empty() { lists.clone() } else { keep };
        let owner = keep
            .iter()
            .copied()
            .find(|&i| previous.get(zone) == Some(name_of(i)))
            .unwrap_or(keep[0]);
        // The catalogs that gave the zone up by `coo` are not competitors.
        for &i in keep.iter().filter(|&&i| i != owner) {
            out.problems
                .entry(name_of(i).clone())
                .or_default()
                .push(format!(
                    "{zone} is also listed by catalog {}, which serves it",
                    name_of(owner)
                ));
        }
        let (cfg, listed) = catalogs[owner];
        let member = &listed.expect("listed").members[zone];
        // Only when none of its groups is configured: the first known one
        // applies otherwise.
        if !member.groups.is_empty() && member.groups.iter().all(|g| !cfg.groups.contains_key(g)) {
            out.problems.entry(cfg.name.clone()).or_default().push(format!(
                "{zone}: group {} is not configured for this catalog; the catalog's settings apply",
                member
                    .groups
                    .iter()
                    .map(|g| format!("{g:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        out.members
            .push(std::sync::Arc::new(cfg.member_config(zone, &member.groups)));
    }
    out
}

/// Members no catalog lists any more, each with the Unix time from which
/// its files may be deleted. Kept on disk so that a restart within the
/// grace neither forgets the files nor deletes them early.
#[derive(Debug, Default)]
pub struct RemovedMembers {
    until: BTreeMap<Name, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum RemovedError {
    #[error("removed catalog members: {0}")]
    Persist(#[from] crate::persist::PersistError),
    #[error("removed catalog members: {path}: {error}")]
    Format { path: String, error: String },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct RemovedFile {
    /// Zone name → Unix time from which its files may go.
    removed: BTreeMap<String, u64>,
}

impl RemovedMembers {
    /// The file beside the zones' timer state; `@` cannot begin a zone's
    /// file stem, so no zone's state file can take this name.
    pub fn path(data_dir: &std::path::Path) -> std::path::PathBuf {
        data_dir
            .join(crate::persist::STATE_DIR)
            .join("@catalog-removed.json")
    }

    pub fn load(data_dir: &std::path::Path) -> Result<RemovedMembers, RemovedError> {
        let path = Self::path(data_dir);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(RemovedError::Format {
                    path: path.display().to_string(),
                    error: e.to_string(),
                });
            }
        };
        let file: RemovedFile =
            serde_json::from_slice(&text).map_err(|e| RemovedError::Format {
                path: path.display().to_string(),
                error: e.to_string(),
            })?;
        Ok(RemovedMembers {
            until: file
                .removed
                .into_iter()
                .filter_map(|(n, t)| Name::from_ascii(&n).ok().map(|n| (lower(&n), t)))
                .collect(),
        })
    }

    pub fn save(&self, data_dir: &std::path::Path) -> Result<(), RemovedError> {
        let path = Self::path(data_dir);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| RemovedError::Format {
                path: dir.display().to_string(),
                error: e.to_string(),
            })?;
        }
        let file = RemovedFile {
            removed: self
                .until
                .iter()
                .map(|(n, t)| (n.to_string(), *t))
                .collect(),
        };
        let text = serde_json::to_vec_pretty(&file).expect("a map of strings serializes");
        crate::persist::write_atomic_bytes(&path, &text)?;
        Ok(())
    }

    /// Whether this changed anything (a zone already waiting keeps its
    /// first deadline).
    pub fn insert(&mut self, zone: &Name, until: u64) -> bool {
        match self.until.entry(lower(zone)) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(until);
                true
            }
        }
    }

    pub fn forget(&mut self, zone: &Name) -> bool {
        self.until.remove(&lower(zone)).is_some()
    }

    pub fn due(&self, now: u64) -> Vec<Name> {
        self.until
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn zone(origin: &str, body: &str) -> Zone {
        let text = format!(
            "$ORIGIN {origin}\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 2147483646 0\n@ NS invalid.\n{body}"
        );
        let origin = Name::from_ascii(origin).unwrap();
        let records = crate::zonefile::parse_str(&text, &origin, "test").unwrap();
        Zone::build(&origin, records, &Default::default()).unwrap()
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn reads_members_groups_and_coo() {
        let z = zone(
            "cat.example.",
            "version TXT \"2\"\n\
             a.zones PTR One.Example.\n\
             group.a.zones TXT \"partners\"\n\
             b.zones PTR two.example.\n\
             coo.b.zones PTR other.cat.\n\
             c.zones PTR one.example.\n\
             d.zones PTR x.example.\n\
             d.zones PTR y.example.\n\
             e.zones PTR sub.cat.example.\n",
        );
        let c = Catalog::read(&z).unwrap();
        assert_eq!(
            c.members
                .keys()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["one.example.", "two.example."]
        );
        let one = &c.members[&name("one.example.")];
        assert_eq!(
            (one.id.as_str(), one.groups.as_slice()),
            ("a", &["partners".to_string()][..])
        );
        assert_eq!(
            c.members[&name("two.example.")].coo,
            Some(name("other.cat."))
        );
        assert_eq!(c.problems.len(), 3, "{:?}", c.problems);
        assert!(c.problems[0].contains("listed twice"), "{:?}", c.problems);
    }

    #[test]
    fn refuses_a_wrong_or_missing_version() {
        let z = zone(
            "cat.example.",
            "version TXT \"1\"\na.zones PTR one.example.\n",
        );
        assert!(matches!(
            Catalog::read(&z),
            Err(CatalogError::Version { .. })
        ));
        let z = zone("cat.example.", "a.zones PTR one.example.\n");
        assert!(matches!(
            Catalog::read(&z),
            Err(CatalogError::NoVersion { .. })
        ));
        let z = zone("cat.example.", "version TXT \"2\" \"2\"\n");
        assert!(Catalog::read(&z).is_err());
    }

    fn config() -> Config {
        Config::from_toml_str(
            r#"
[server]
listen = ["127.0.0.1:5300"]
data_dir = "/tmp/outpost-catalog-test"

[[zone]]
name = "hand.example"
primaries = ["127.0.0.1:5301"]

[[catalog]]
name = "a.cat"
primaries = ["127.0.0.1:5302"]
on_expire = "keep-serving"

[catalog.group.slow]
max_refresh = "2d"
primaries = ["127.0.0.1:5303"]

[[catalog]]
name = "b.cat"
primaries = ["127.0.0.1:5304"]
"#,
            "test.toml",
        )
        .unwrap()
    }

    #[test]
    fn one_owner_per_zone() {
        let cfg = config();
        let a = Catalog::read(&zone(
            "a.cat.",
            "version TXT \"2\"\n\
             m1.zones PTR hand.example.\n\
             m2.zones PTR shared.example.\n\
             m3.zones PTR grouped.example.\n\
             group.m3.zones TXT \"slow\"\n\
             m4.zones PTR moving.example.\n\
             coo.m4.zones PTR b.cat.\n\
             m5.zones PTR odd.example.\n\
             group.m5.zones TXT \"nope\"\n",
        ))
        .unwrap();
        let b = Catalog::read(&zone(
            "b.cat.",
            "version TXT \"2\"\n\
             x.zones PTR shared.example.\n\
             y.zones PTR moving.example.\n",
        ))
        .unwrap();
        let configured = BTreeSet::from([name("hand.example.")]);
        let cats = [(&cfg.catalogs[0], Some(&a)), (&cfg.catalogs[1], Some(&b))];
        let r = resolve(&configured, &cats, &HashMap::new());
        let owners: BTreeMap<String, String> = r
            .members
            .iter()
            .map(|m| {
                let crate::config::ZoneRole::Member(c) = &m.role else {
                    panic!()
                };
                (m.name.to_string(), c.to_string())
            })
            .collect();
        assert_eq!(
            owners,
            BTreeMap::from([
                ("grouped.example.".into(), "a.cat.".into()),
                ("moving.example.".into(), "b.cat.".into()),
                ("odd.example.".into(), "a.cat.".into()),
                ("shared.example.".into(), "a.cat.".into()),
            ])
        );
        let grouped = r
            .members
            .iter()
            .find(|m| m.name == name("grouped.example."))
            .unwrap();
        assert_eq!(grouped.primaries, vec!["127.0.0.1:5303".parse().unwrap()]);
        assert_eq!(grouped.on_expire, crate::config::OnExpire::KeepServing);
        let a_problems = r.problems[&name("a.cat.")].join("\n");
        assert!(
            a_problems.contains("hand.example. is also a [[zone]]"),
            "{a_problems}"
        );
        assert!(a_problems.contains("group \"nope\""), "{a_problems}");
        let b_problems = r.problems[&name("b.cat.")].join("\n");
        assert!(
            b_problems.contains("shared.example. is also listed by catalog a.cat."),
            "{b_problems}"
        );

        // Who owned a zone before keeps it while it still lists it.
        let previous = HashMap::from([(name("shared.example."), name("b.cat."))]);
        let r = resolve(&configured, &cats, &previous);
        let shared = r
            .members
            .iter()
            .find(|m| m.name == name("shared.example."))
            .unwrap();
        assert_eq!(shared.role, crate::config::ZoneRole::Member(name("b.cat.")));
    }
}
