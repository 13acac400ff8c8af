//! The file as written: serde types that mirror the TOML one to one.
//!
//! Every table denies unknown keys so a typo is an error rather than a
//! silently ignored setting. Values that need cross-checking (addresses,
//! names, references) stay strings here and are checked in `validate`, where
//! every problem can be collected instead of stopping at the first.

use super::{DamagedCopy, LogFormat, OnExpire, ZonemdMode};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub server: RawServer,
    #[serde(default)]
    pub defaults: RawSettings,
    #[serde(default, rename = "key")]
    pub keys: Vec<RawKey>,
    #[serde(default, rename = "zone")]
    pub zones: Vec<RawZone>,
    #[serde(default, rename = "catalog")]
    pub catalogs: Vec<RawCatalog>,
    #[serde(default)]
    pub identity: super::query::RawIdentity,
    #[serde(default)]
    pub rrl: super::query::RawRrl,
    #[serde(default)]
    pub cookies: super::query::RawCookies,
    #[serde(default)]
    pub cache: super::query::RawCache,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    #[serde(default)]
    pub listen: Vec<String>,
    pub data_dir: Option<PathBuf>,
    pub control: Option<String>,
    pub control_token: Option<String>,
    pub control_token_file: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub udp_workers: Option<usize>,
    pub tcp_max_connections: Option<usize>,
    pub tcp_max_connections_per_client: Option<usize>,
    pub tcp_idle_timeout: Option<DurationValue>,
    pub tcp_busy_idle_timeout: Option<DurationValue>,
    pub tcp_write_timeout: Option<DurationValue>,
    pub max_transfers_out: Option<usize>,
    pub max_refresh_checks: Option<usize>,
    pub max_refresh_checks_per_primary: Option<usize>,
    pub control_max_connections: Option<usize>,
    pub control_header_timeout: Option<DurationValue>,
    pub control_idle_timeout: Option<DurationValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub name: Option<String>,
    pub algorithm: Option<String>,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
}

/// `#[serde(flatten)]` cannot be combined with `deny_unknown_fields`, so the
/// per-zone settings are spelled out in both `[defaults]` and `[[zone]]` by
/// this macro, which keeps the two lists from drifting apart.
macro_rules! settings {
    ($($field:ident: $ty:ty,)*) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawSettings {
            $(pub $field: Option<$ty>,)*
        }

        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawZone {
            pub name: Option<String>,
            #[serde(default)]
            pub primaries: Vec<String>,
            pub seed_file: Option<PathBuf>,
            $(pub $field: Option<$ty>,)*
        }

        impl RawZone {
            pub fn settings(&mut self) -> RawSettings {
                RawSettings { $($field: self.$field.take(),)* }
            }
        }

        /// A catalog zone (RFC 9432): its own keys are a zone's, and they
        /// are also what every member it lists gets.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawCatalog {
            pub name: Option<String>,
            #[serde(default)]
            pub primaries: Vec<String>,
            pub member_removal_grace: Option<DurationValue>,
            /// Settings for the members whose `group` property names them.
            #[serde(default)]
            pub group: std::collections::BTreeMap<String, RawGroup>,
            $(pub $field: Option<$ty>,)*
        }

        impl RawCatalog {
            pub fn settings(&mut self) -> RawSettings {
                RawSettings { $($field: self.$field.take(),)* }
            }
        }

        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawGroup {
            #[serde(default)]
            pub primaries: Vec<String>,
            $(pub $field: Option<$ty>,)*
        }

        impl RawGroup {
            pub fn settings(&mut self) -> RawSettings {
                RawSettings { $($field: self.$field.take(),)* }
            }
        }

        /// The keys allowed in `[defaults]` and in every `[[zone]]`.
        #[cfg(test)]
        pub(super) const SETTING_KEYS: &[&str] = &[$(stringify!($field),)*];
    };
}

settings! {
    min_refresh: DurationValue,
    max_refresh: DurationValue,
    min_retry: DurationValue,
    max_retry: DurationValue,
    min_expire: DurationValue,
    max_expire: DurationValue,
    on_expire: OnExpire,
    transfer_timeout: DurationValue,
    idle_timeout: DurationValue,
    max_records: usize,
    max_transfer_bytes: ByteSize,
    max_rrset_records: usize,
    max_types_per_name: usize,
    ixfr_history: usize,
    ixfr_history_bytes: ByteSize,
    zonefile_sync: DurationValue,
    on_damaged_copy: DamagedCopy,
    zonemd: ZonemdMode,
    notify_from: Vec<String>,
    allow_transfer: Vec<String>,
    notify: Vec<String>,
    key: String,
    source: OneOrMany,
}

/// A string, or a list of strings (`source = "192.0.2.1"` or
/// `source = ["192.0.2.1", "2001:db8::1"]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A duration written as `"1h30m"` or as integer seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"45s\", \"1h30m\", \"41d\" or integer seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(DurationValue(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(|s| DurationValue(Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("duration {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                super::parse_duration(v)
                    .map(DurationValue)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A byte count written as an integer or as `"1GiB"`, `"500M"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count such as 1048576, \"500M\" or \"1GiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("byte count {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                super::parse_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}
