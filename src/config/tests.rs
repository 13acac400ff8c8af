use super::*;
use std::str::FromStr;

const SERVER: &str = r#"
[server]
listen = ["127.0.0.1:5353"]
data_dir = "/var/lib/outpost"
"#;

const ZONE: &str = r#"
[[zone]]
name = "example.com"
primaries = ["127.0.0.1"]
"#;

/// Parsed as if no control token were in the environment.
fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str_with_env(text, "test.toml", None)
}

fn problems(text: &str) -> Vec<Problem> {
    match parse(text) {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(e) => {
            assert_eq!(e.file, "test.toml");
            e.problems
        }
    }
}

/// The problems as displayed, one line each.
fn lines(text: &str) -> Vec<String> {
    let err = parse(text).expect_err("expected errors");
    let shown = err.to_string();
    let lines: Vec<String> = shown.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), err.problems.len(), "{shown}");
    lines
}

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn minimal_config_gets_builtin_defaults() {
    let config = parse(&format!("{SERVER}{ZONE}")).unwrap();
    assert_eq!(config.source, PathBuf::from("test.toml"));
    assert_eq!(
        config.server.listen,
        vec!["127.0.0.1:5353".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(config.server.data_dir, PathBuf::from("/var/lib/outpost"));
    assert_eq!(config.server.control, None);
    assert_eq!(config.server.log_format, LogFormat::Plain);
    assert_eq!(config.server.log_level, "info");
    assert!(config.server.udp_workers >= 1);
    assert!(config.keys.is_empty());

    let zone = &config.zones[0];
    assert_eq!(zone.name, name("example.com."));
    assert!(zone.name.is_fqdn());
    assert_eq!(zone.primaries, vec!["127.0.0.1:53".parse().unwrap()]);
    assert_eq!(zone.key, None);
    assert_eq!(zone.seed_file, None);
    assert!(zone.notify_from.is_empty());
    assert!(zone.allow_transfer.is_empty());
    assert!(zone.notify.is_empty());
    assert_eq!(
        zone.timers,
        TimerBounds {
            min_refresh: secs(2),
            max_refresh: secs(4 * 7 * 86400),
            min_retry: secs(1),
            max_retry: secs(2 * 7 * 86400),
            min_expire: secs(0),
            max_expire: secs(24 * 7 * 86400),
        }
    );
    assert_eq!(zone.on_expire, OnExpire::Servfail);
    assert_eq!(zone.transfer_timeout, secs(600));
    assert_eq!(zone.idle_timeout, secs(30));
    assert_eq!(
        zone.limits,
        Limits {
            max_records: 5_000_000,
            max_transfer_bytes: 1 << 30,
            max_rrset_records: 10_000,
            max_types_per_name: 100,
        }
    );
    assert_eq!(zone.ixfr_history, 32);
    assert_eq!(zone.zonemd, ZonemdMode::Verify);
}

#[test]
fn zone_overrides_defaults_which_override_builtins() {
    let text = format!(
        r#"{SERVER}
[defaults]
max_refresh = "1d"
on_expire = "keep-serving"
max_records = 1000
notify_from = ["192.0.2.0/24"]
allow_transfer = ["10.0.0.0/8", "xfr"]
key = "xfr"

[[key]]
name = "xfr"
algorithm = "hmac-sha256"
secret = "c2VjcmV0"

[[key]]
name = "Other.Key."
algorithm = "hmac-sha1"
secret = "b3RoZXI="

[[zone]]
name = "Inherits.Example"
primaries = ["192.0.2.1:5300"]

[[zone]]
name = "overrides.example"
primaries = ["2001:db8::1", "[2001:db8::2]:5300"]
max_refresh = 3600
on_expire = "servfail"
notify_from = []
allow_transfer = ["other.key"]
key = "other.key"
zonemd = "ignore"

[[zone]]
name = "nokey.example"
primaries = ["192.0.2.1"]
key = ""
"#
    );
    let config = parse(&text).unwrap();
    assert_eq!(
        config.keys.keys().cloned().collect::<Vec<_>>(),
        vec![name("other.key."), name("xfr.")]
    );

    let inherits = &config.zones[0];
    assert_eq!(inherits.name.to_string(), "inherits.example.");
    assert_eq!(inherits.timers.max_refresh, secs(86400));
    assert_eq!(inherits.timers.min_refresh, DEFAULT_MIN_REFRESH);
    assert_eq!(inherits.on_expire, OnExpire::KeepServing);
    assert_eq!(inherits.limits.max_records, 1000);
    assert_eq!(inherits.limits.max_rrset_records, DEFAULT_MAX_RRSET_RECORDS);
    assert_eq!(inherits.notify_from, vec!["192.0.2.0/24".parse().unwrap()]);
    assert_eq!(
        inherits.allow_transfer,
        vec![
            AclEntry::Net("10.0.0.0/8".parse().unwrap()),
            AclEntry::Key(name("xfr."))
        ]
    );
    let key = inherits.key.as_ref().unwrap();
    assert_eq!(key.name, name("xfr."));
    assert_eq!(key.algorithm, crate::tsig::Algorithm::HmacSha256);
    assert_eq!(key.secret, b"secret");

    let overrides = &config.zones[1];
    assert_eq!(
        overrides.primaries,
        vec![
            "[2001:db8::1]:53".parse().unwrap(),
            "[2001:db8::2]:5300".parse().unwrap()
        ]
    );
    assert_eq!(overrides.timers.max_refresh, secs(3600));
    assert_eq!(overrides.on_expire, OnExpire::Servfail);
    assert_eq!(overrides.limits.max_records, 1000);
    assert!(
        overrides.notify_from.is_empty(),
        "a zone list replaces the default list"
    );
    assert_eq!(
        overrides.allow_transfer,
        vec![AclEntry::Key(name("other.key."))]
    );
    assert_eq!(overrides.key.as_ref().unwrap().name, name("other.key."));
    assert_eq!(overrides.zonemd, ZonemdMode::Ignore);

    assert_eq!(
        config.zones[2].key, None,
        "key = \"\" opts out of the default key"
    );
}

#[test]
fn unknown_key_is_reported_with_its_path_and_position() {
    let text = format!(
        r#"{SERVER}{ZONE}
[[zone]]
name = "example.org"
primarys = ["127.0.0.1"]
"#
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "zone[1] (example.org).primarys");
    assert!(
        p[0].message.contains("unknown field `primarys`"),
        "{}",
        p[0].message
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("primarys"))
        .unwrap()
        + 1;
    assert_eq!(p[0].position, Some((line, 1)));
    let shown = lines(&text);
    assert!(
        shown[0].starts_with(&format!(
            "test.toml:{line}:1: zone[1] (example.org).primarys: unknown field"
        )),
        "{}",
        shown[0]
    );

    for (text, path) in [
        (format!("{SERVER}{ZONE}\n[bogus]\nx = 1\n"), "bogus"),
        (format!("{SERVER}listn = []\n{ZONE}"), "server.listn"),
        (
            format!("{SERVER}[defaults]\nmax_refrsh = 1\n{ZONE}"),
            "defaults.max_refrsh",
        ),
        (
            format!("{SERVER}{ZONE}[[key]]\nname = \"k\"\nalgo = \"hmac-sha256\"\n"),
            "key[0] (k).algo",
        ),
    ] {
        let p = problems(&text);
        assert_eq!(p[0].path, path);
        assert!(
            p[0].message.starts_with("unknown field"),
            "{}",
            p[0].message
        );
    }
}

#[test]
fn syntax_error_has_a_position() {
    let p = problems("[server\nlisten = []\n");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, "");
    assert_eq!(p[0].position.map(|(line, _)| line), Some(1));
}

#[test]
fn bad_duration_is_reported_with_its_path() {
    let p = problems(&format!("{SERVER}{ZONE}min_refresh = \"10x\"\n"));
    assert_eq!(p[0].path, "zone[0] (example.com).min_refresh");
    assert!(
        p[0].message.contains("unknown unit 'x'"),
        "{}",
        p[0].message
    );
    assert!(p[0].position.is_some());

    let p = problems(&format!("{SERVER}[defaults]\nidle_timeout = -5\n{ZONE}"));
    assert_eq!(p[0].path, "defaults.idle_timeout");
    assert!(p[0].message.contains("negative"), "{}", p[0].message);

    let p = problems(&format!("{SERVER}[defaults]\nidle_timeout = 1.5\n{ZONE}"));
    assert_eq!(p[0].path, "defaults.idle_timeout");
    assert!(
        p[0].message.contains("a duration such as"),
        "{}",
        p[0].message
    );
}

#[test]
fn durations_parse() {
    for (text, seconds) in [
        ("45s", 45),
        ("10m", 600),
        ("2h", 7200),
        ("41d", 41 * 86400),
        ("1w", 604_800),
        ("1h30m", 5400),
        ("1w2d3h4m5s", 604_800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
        ("0s", 0),
        ("3600", 3600),
    ] {
        assert_eq!(parse_duration(text), Ok(secs(seconds)), "{text}");
    }
    for text in [
        "",
        "h",
        "10 m",
        "1.5h",
        "10M",
        "1h30",
        "-1s",
        "99999999999999999999s",
        "3000000000000000w",
    ] {
        assert!(parse_duration(text).is_err(), "{text:?} accepted");
    }
    assert_eq!(format_duration(secs(5400)), "1h30m");
    assert_eq!(format_duration(secs(0)), "0s");
    assert_eq!(format_duration(secs(8 * 86400 + 1)), "1w1d1s");

    let config = parse(&format!(
        "{SERVER}{ZONE}transfer_timeout = 90\nidle_timeout = \"1m30s\"\n"
    ))
    .unwrap();
    assert_eq!(config.zones[0].transfer_timeout, secs(90));
    assert_eq!(config.zones[0].idle_timeout, secs(90));
}

#[test]
fn sizes_parse() {
    for (text, bytes) in [
        ("1024", 1024),
        ("1GiB", 1 << 30),
        ("1gib", 1 << 30),
        ("512MiB", 512 << 20),
        ("4KiB", 4096),
        ("500M", 500_000_000),
        ("2G", 2_000_000_000),
        ("3KB", 3000),
        ("1 TiB", 1 << 40),
    ] {
        assert_eq!(parse_size(text), Ok(bytes), "{text}");
    }
    for text in ["", "G", "1.5G", "1X", "-1", "99999999999TiB"] {
        assert!(parse_size(text).is_err(), "{text:?} accepted");
    }
    let config = parse(&format!("{SERVER}{ZONE}max_transfer_bytes = \"64MiB\"\n")).unwrap();
    assert_eq!(config.zones[0].limits.max_transfer_bytes, 64 << 20);
    let config = parse(&format!("{SERVER}{ZONE}max_transfer_bytes = 12345\n")).unwrap();
    assert_eq!(config.zones[0].limits.max_transfer_bytes, 12345);
    let p = problems(&format!(
        "{SERVER}{ZONE}max_transfer_bytes = \"1 parsec\"\n"
    ));
    assert_eq!(p[0].path, "zone[0] (example.com).max_transfer_bytes");
}

#[test]
fn bad_addresses_are_reported_with_their_paths() {
    let text = r#"
[server]
listen = ["127.0.0.1:5353", "localhost:53", "127.0.0.1:5353"]
data_dir = "/tmp/x"
control = "127.0.0.1"

[[zone]]
name = "example.com"
primaries = ["10.0.0.1", "10.0.0.1:99999", "10.0.0.2:0"]
notify = ["::1", "nowhere"]
"#;
    assert_eq!(
        lines(text),
        vec![
            r#"test.toml: server.listen[1]: "localhost:53" is not an IP address with optional port"#,
            r#"test.toml: server.listen[2]: "127.0.0.1:5353" is listed twice"#,
            r#"test.toml: server.control: "127.0.0.1" is not an IP address with port"#,
            r#"test.toml: zone[0] (example.com).primaries[1]: "10.0.0.1:99999" is not an IP address with optional port"#,
            r#"test.toml: zone[0] (example.com).primaries[2]: "10.0.0.2:0": port 0 cannot be sent to"#,
            r#"test.toml: zone[0] (example.com).notify[1]: "nowhere" is not an IP address with optional port"#,
        ]
    );
}

#[test]
fn missing_key_references_are_errors() {
    let text = format!(
        r#"{SERVER}
[defaults]
key = "absent"

[[key]]
name = "present"
algorithm = "hmac-sha256"
secret = "c2VjcmV0"

[[zone]]
name = "example.com"
primaries = ["127.0.0.1"]
key = "missing"
allow_transfer = ["present", "nokey", "192.0.2.1"]
"#
    );
    assert_eq!(
        lines(&text),
        vec![
            r#"test.toml: defaults.key: "absent" does not name a [[key]]"#,
            r#"test.toml: zone[0] (example.com).allow_transfer[1]: "nokey" is neither an IP address, a CIDR network nor the name of a [[key]]"#,
            r#"test.toml: zone[0] (example.com).key: "missing" does not name a [[key]]"#,
        ]
    );
}

#[test]
fn duplicate_zones_and_keys_are_errors() {
    let text = format!(
        r#"{SERVER}{ZONE}
[[zone]]
name = "EXAMPLE.COM."
primaries = ["127.0.0.1"]

[[key]]
name = "k"
algorithm = "hmac-sha256"
secret = "c2VjcmV0"

[[key]]
name = "K."
algorithm = "hmac-sha256"
secret = "c2VjcmV0"
"#
    );
    assert_eq!(
        lines(&text),
        vec![
            r#"test.toml: key[1] (K.).name: duplicate key name "K.", already defined at key[0]"#,
            r#"test.toml: zone[1] (EXAMPLE.COM.).name: duplicate zone "EXAMPLE.COM.", already defined at zone[0]"#,
        ]
    );
}

#[test]
fn bad_keys_are_errors_that_do_not_leak_the_secret() {
    let text = format!(
        r#"{SERVER}{ZONE}
[[key]]
name = "bad-b64"
algorithm = "hmac-sha256"
secret = "hunter2!hunter2!"

[[key]]
name = "empty"
algorithm = "hmac-sha256"
secret = ""

[[key]]
name = "truncated"
algorithm = "hmac-sha256"
secret = "c2VjcmV0c"

[[key]]
name = "bad algo"
algorithm = "hmac-sha3"

[[key]]
algorithm = "hmac-sha256"
secret = "c2VjcmV0"
"#
    );
    let shown = lines(&text);
    assert_eq!(shown.len(), 7, "{shown:#?}");
    assert_eq!(
        shown[0],
        "test.toml: key[0] (bad-b64).secret: is not valid base64: invalid character at offset 7"
    );
    assert_eq!(shown[1], "test.toml: key[1] (empty).secret: is empty");
    assert_eq!(
        shown[2],
        "test.toml: key[2] (truncated).secret: is not valid base64: truncated"
    );
    assert!(
        shown[3].starts_with(
            "test.toml: key[3] (bad algo).name: \"bad algo\" is not a valid domain name"
        ),
        "{}",
        shown[3]
    );
    assert!(
        shown[4].starts_with(
            "test.toml: key[3] (bad algo).algorithm: unknown TSIG algorithm \"hmac-sha3\""
        ),
        "{}",
        shown[4]
    );
    assert_eq!(
        shown[5],
        "test.toml: key[3] (bad algo): missing `secret` (or `secret_file`)"
    );
    assert_eq!(shown[6], "test.toml: key[4]: missing `name`");
    assert!(!shown.iter().any(|l| l.contains("hunter")));
}

#[test]
fn min_greater_than_max_is_an_error() {
    let text = format!(
        r#"{SERVER}
[defaults]
min_retry = "1h"
max_retry = "30m"

[[zone]]
name = "a.example"
primaries = ["127.0.0.1"]
min_refresh = "5w"

[[zone]]
name = "b.example"
primaries = ["127.0.0.1"]
max_expire = "1d"
min_expire = "2d"
"#
    );
    assert_eq!(
        lines(&text),
        vec![
            "test.toml: defaults.min_retry: min_retry (1h) is greater than max_retry (30m)",
            "test.toml: zone[0] (a.example).min_refresh: min_refresh (5w) is greater than max_refresh (4w)",
            "test.toml: zone[1] (b.example).min_expire: min_expire (2d) is greater than max_expire (1d)",
        ]
    );
}

#[test]
fn zero_limits_and_timeouts_are_errors() {
    let text = format!(
        "{SERVER}udp_workers = 0\n[defaults]\nmax_records = 0\ntransfer_timeout = \"0s\"\nixfr_history = 0\n{ZONE}max_transfer_bytes = 0\nmax_rrset_records = 0\nmax_types_per_name = 0\nidle_timeout = 0\n"
    );
    assert_eq!(
        lines(&text),
        vec![
            "test.toml: server.udp_workers: must be greater than zero",
            "test.toml: defaults.transfer_timeout: must be greater than zero",
            "test.toml: defaults.max_records: must be greater than zero",
            "test.toml: zone[0] (example.com).idle_timeout: must be greater than zero",
            "test.toml: zone[0] (example.com).max_transfer_bytes: must be greater than zero",
            "test.toml: zone[0] (example.com).max_rrset_records: must be greater than zero",
            "test.toml: zone[0] (example.com).max_types_per_name: must be greater than zero",
        ]
    );
}

#[test]
fn bad_networks_are_errors() {
    let text = format!(
        "{SERVER}[defaults]\nnotify_from = [\"10.0.0.0/33\", \"10.0.0.1/8\", \"nonsense\", \"2001:db8::/32\", \"192.0.2.7\"]\n{ZONE}allow_transfer = [\"fe80::1/200\", \"10.1.2.3/16\"]\n"
    );
    assert_eq!(
        lines(&text),
        vec![
            r#"test.toml: defaults.notify_from[0]: "10.0.0.0/33" is not an IP address or CIDR network"#,
            r#"test.toml: defaults.notify_from[1]: "10.0.0.1/8" has bits set after the prefix length (did you mean "10.0.0.0/8"?)"#,
            r#"test.toml: defaults.notify_from[2]: "nonsense" is not an IP address or CIDR network"#,
            r#"test.toml: zone[0] (example.com).allow_transfer[0]: "fe80::1/200" is not an IP address or CIDR network"#,
            r#"test.toml: zone[0] (example.com).allow_transfer[1]: "10.1.2.3/16" has bits set after the prefix length (did you mean "10.1.0.0/16"?)"#,
        ]
    );
}

#[test]
fn structural_requirements() {
    // No zone, no listen address, no data_dir.
    assert_eq!(
        lines("[server]\n"),
        vec![
            "test.toml: server.listen: at least one listen address is required",
            "test.toml: server: missing `data_dir`",
            "test.toml: zone: at least one [[zone]] or [[catalog]] is required",
        ]
    );
    // No [server] at all is a type error from serde.
    let p = problems(ZONE);
    assert!(
        p[0].message.contains("missing field `server`"),
        "{}",
        p[0].message
    );

    assert_eq!(
        lines(&format!("{SERVER}[[zone]]\nprimaries = []\n[[zone]]\nname = \"*.example\"\nprimaries = [\"127.0.0.1\"]\n[[zone]]\nname = \"a..b\"\nprimaries = [\"127.0.0.1\"]\n"))
            .iter()
            .map(|l| l.split(": ").take(2).collect::<Vec<_>>().join(": "))
            .collect::<Vec<_>>(),
        vec![
            "test.toml: zone[0]",
            "test.toml: zone[0].primaries",
            "test.toml: zone[1] (*.example).name",
            "test.toml: zone[2] (a..b).name",
        ]
    );
}

#[test]
fn server_options() {
    let config = parse(&format!(
        r#"
[server]
listen = ["[::1]:53", "127.0.0.1"]
data_dir = "relative/dir"
control = "[::1]:8053"
control_token = "tok"
log_format = "json"
log_level = "outpost=debug,warn"
udp_workers = 3
{ZONE}"#
    ))
    .unwrap();
    let s = &config.server;
    assert_eq!(
        s.listen,
        vec!["[::1]:53".parse().unwrap(), "127.0.0.1:53".parse().unwrap()]
    );
    assert_eq!(
        s.data_dir,
        std::env::current_dir().unwrap().join("relative/dir"),
        "relative paths are resolved against the working directory"
    );
    assert_eq!(s.control, Some("[::1]:8053".parse().unwrap()));
    assert_eq!(s.control_token.as_deref(), Some("tok"));
    assert_eq!(s.log_format, LogFormat::Json);
    assert_eq!(s.log_level, "outpost=debug,warn");
    assert_eq!(s.udp_workers, 3);
    assert!(
        !format!("{config:?}").contains("tok\""),
        "the token must not reach Debug output"
    );

    let p = problems(&format!(
        "[server]\nlisten = [\"127.0.0.1:53\"]\ndata_dir = \"\"\ncontrol_token = \"t\"\nlog_level = \"outpost=loud\"\n{ZONE}"
    ));
    let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "server.data_dir",
            "server.control_token",
            "server.log_level"
        ]
    );
    let p = problems(&format!("{SERVER}log_format = \"xml\"\n{ZONE}"));
    assert_eq!(p[0].path, "server.log_format");
    assert!(
        p[0].message.contains("unknown variant `xml`"),
        "{}",
        p[0].message
    );
}

#[test]
fn every_problem_is_collected() {
    let text = r#"
[server]
listen = ["nope"]
data_dir = "/d"

[defaults]
notify_from = ["x/y"]

[[key]]
name = "k"
algorithm = "hmac-sha256"
secret = "!!"

[[zone]]
name = "a.example"
primaries = ["1.2.3.4:70000"]
key = "k2"

[[zone]]
name = "a.example"
primaries = []
"#;
    let shown = lines(text);
    assert_eq!(shown.len(), 7, "{shown:#?}");
    assert!(shown.iter().all(|l| l.starts_with("test.toml: ")));
}

#[test]
fn seed_file_must_exist_and_allows_empty_primaries() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("example.com.zone");
    std::fs::write(&seed, "").unwrap();
    let text = format!(
        "{SERVER}[[zone]]\nname = \"example.com\"\nseed_file = \"{}\"\n",
        seed.display()
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.zones[0].seed_file.as_deref(), Some(seed.as_path()));
    assert!(config.zones[0].primaries.is_empty());

    let missing = dir.path().join("missing.zone");
    let p = problems(&format!(
        "{SERVER}[[zone]]\nname = \"example.com\"\nseed_file = \"{}\"\n[[zone]]\nname = \"b.example\"\nprimaries = [\"127.0.0.1\"]\nseed_file = \"{}\"\n",
        missing.display(),
        dir.path().display()
    ));
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(p[0].path, "zone[0] (example.com).seed_file");
    assert_eq!(
        p[0].message,
        format!("{} does not exist", missing.display())
    );
    assert_eq!(p[1].path, "zone[1] (b.example).seed_file");
    assert!(p[1].message.ends_with("is not a regular file"));
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outpost.toml");
    let err = Config::load(&path).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}: cannot read config file:", path.display())),
        "{shown}"
    );

    std::fs::write(&path, format!("{SERVER}{ZONE}")).unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.source, path);
    assert_eq!(
        config.zone(&name("example.com.")).unwrap().name,
        name("example.com.")
    );
    assert!(config.zone(&name("example.net.")).is_none());

    std::fs::write(&path, format!("{SERVER}{ZONE}bogus = 1\n")).unwrap();
    let shown = Config::load(&path).unwrap_err().to_string();
    assert!(
        shown.starts_with(&format!("{}:", path.display()))
            && shown.contains("zone[0] (example.com).bogus"),
        "{shown}"
    );
}

#[test]
fn reload_comparison_sees_zone_changes() {
    let a = parse(&format!("{SERVER}{ZONE}")).unwrap();
    let b = parse(&format!("{SERVER}{ZONE}")).unwrap();
    let c = parse(&format!("{SERVER}{ZONE}max_records = 7\n")).unwrap();
    assert_eq!(a.zones, b.zones);
    assert_ne!(a.zones, c.zones);
}

#[test]
fn access_checks() {
    let config = parse(&format!(
        r#"{SERVER}
[[key]]
name = "xfr"
algorithm = "hmac-sha256"
secret = "c2VjcmV0"

[[zone]]
name = "example.com"
primaries = ["192.0.2.1:5300"]
notify_from = ["198.51.100.0/24"]
allow_transfer = ["10.0.0.0/8", "xfr"]
"#
    ))
    .unwrap();
    let zone = &config.zones[0];
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();

    assert!(zone.notify_allowed(ip("192.0.2.1")));
    assert!(zone.notify_allowed(ip("::ffff:192.0.2.1")));
    assert!(zone.notify_allowed(ip("198.51.100.77")));
    assert!(!zone.notify_allowed(ip("192.0.2.2")));

    assert!(zone.transfer_allowed(ip("10.1.2.3"), None));
    assert!(zone.transfer_allowed(ip("::ffff:10.1.2.3"), None));
    assert!(!zone.transfer_allowed(ip("192.0.2.1"), None));
    assert!(zone.transfer_allowed(ip("192.0.2.1"), Some(&name("xfr."))));
    assert!(!zone.transfer_allowed(ip("192.0.2.1"), Some(&name("other."))));

    let nobody = parse(&format!("{SERVER}{ZONE}")).unwrap();
    assert!(!nobody.zones[0].transfer_allowed(ip("127.0.0.1"), None));
}

#[test]
fn example_and_docs_cover_every_key() {
    let example: toml::Table = include_str!("../../config/example-full.toml")
        .parse()
        .unwrap();
    let docs = include_str!("../../docs/config.md");
    let defaults = example["defaults"].as_table().unwrap();
    for key in raw::SETTING_KEYS {
        assert!(
            defaults.contains_key(*key),
            "example [defaults] lacks {key}"
        );
        assert!(
            docs.contains(&format!("`{key}`")),
            "docs/config.md lacks {key}"
        );
    }
    assert_eq!(defaults.len(), raw::SETTING_KEYS.len());
    let mut keys: Vec<&String> = example["server"].as_table().unwrap().keys().collect();
    keys.extend(example["key"][0].as_table().unwrap().keys());
    keys.extend(example["zone"][0].as_table().unwrap().keys());
    for key in keys {
        assert!(
            docs.contains(&format!("`{key}`")),
            "docs/config.md lacks {key}"
        );
    }
}

#[test]
fn secrets_from_files_by_absolute_path() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("xfr-key");
    std::fs::write(&secret, "  c2VjcmV0LWtleS1tYXRlcmlhbA==\n").unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:5353\"]\ndata_dir = \"/var/lib/outpost\"\n\
         control = \"127.0.0.1:8053\"\ncontrol_token_file = \"{}\"\n\n\
         [[key]]\nname = \"xfr-key\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"{}\"\n{ZONE}key = \"xfr-key\"\n",
        token.display(),
        secret.display()
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.server.control_token.as_deref(), Some("t0ken"));
    assert_eq!(
        c.zones[0].key.as_ref().unwrap().secret,
        b"secret-key-material"
    );

    // Both ways at once, a missing file, a file that is not base64.
    std::fs::write(&secret, "not base64!").unwrap();
    let text = text.replace("secret_file", "secret = \"c2VjcmV0\"\nsecret_file");
    let shown = lines(&text);
    assert!(
        shown
            .iter()
            .any(|l| l.contains("key[0] (xfr-key): `secret` and `secret_file` are both set")),
        "{shown:?}"
    );
    let text = text.replace("secret = \"c2VjcmV0\"\n", "");
    let shown = lines(&text);
    assert!(
        shown.iter().any(
            |l| l.contains("key[0] (xfr-key).secret_file: the secret in")
                && l.contains("is not valid base64")
        ),
        "{shown:?}"
    );
    assert!(
        !shown.iter().any(|l| l.contains("not base64!")),
        "{shown:?}"
    );
    std::fs::remove_file(&token).unwrap();
    let shown = lines(&text);
    assert!(
        shown
            .iter()
            .any(|l| l.contains("server.control_token_file: cannot read")),
        "{shown:?}"
    );
}

#[test]
fn source_addresses_one_per_family() {
    let c = parse(&format!(
        "{SERVER}[defaults]\nsource = \"192.0.2.10\"\n{ZONE}"
    ))
    .unwrap();
    let z = &c.zones[0];
    assert_eq!(z.source, vec!["192.0.2.10".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        z.source_for("127.0.0.1:53".parse().unwrap()),
        Some("192.0.2.10".parse().unwrap())
    );
    assert_eq!(z.source_for("[::1]:53".parse().unwrap()), None);
    let c = parse(&format!(
        "{SERVER}{ZONE}source = [\"192.0.2.10\", \"2001:db8::10\"]\n"
    ))
    .unwrap();
    assert_eq!(
        c.zones[0].source_for("[::1]:53".parse().unwrap()),
        Some("2001:db8::10".parse().unwrap())
    );
    let shown = lines(&format!(
        "{SERVER}{ZONE}source = [\"192.0.2.10\", \"192.0.2.11\", \"0.0.0.0\", \"192.0.2.12:53\"]\n"
    ));
    assert!(
        shown[0].contains("source[1]: \"192.0.2.11\": only one source address per address family"),
        "{shown:?}"
    );
    assert!(shown[1].contains("source[2]"), "{shown:?}");
    assert!(
        shown[2]
            .contains("source[3]: \"192.0.2.12:53\" is not an IP address (a source has no port)"),
        "{shown:?}"
    );
}

#[test]
fn control_must_not_share_a_listen_port() {
    let shown = lines(&format!(
        "[server]\nlisten = [\"0.0.0.0:5353\"]\ndata_dir = \"/var/lib/outpost\"\ncontrol = \"127.0.0.1:5353\"\n{ZONE}"
    ));
    assert!(
        shown[0].contains("server.control: 127.0.0.1:5353 is also listen[0] (0.0.0.0:5353)"),
        "{shown:?}"
    );
    // Another port, or another family's wildcard, is fine.
    parse(&format!(
        "[server]\nlisten = [\"[::]:5353\"]\ndata_dir = \"/var/lib/outpost\"\ncontrol = \"127.0.0.1:5353\"\n{ZONE}"
    ))
    .unwrap();
}

#[test]
fn tcp_and_control_limits_have_defaults_and_are_checked() {
    let config = parse(&format!("{SERVER}{ZONE}")).unwrap();
    assert_eq!(config.server.tcp, crate::config::TcpLimits::default());
    assert_eq!(
        config.server.control_limits,
        crate::config::ControlLimits::default()
    );
    let config = parse(&format!(
        "{SERVER}tcp_max_connections = 100\ntcp_max_connections_per_client = 7\n\
         tcp_idle_timeout = \"30s\"\ntcp_busy_idle_timeout = 2\ntcp_write_timeout = \"1m\"\n\
         max_transfers_out = 3\ncontrol_max_connections = 5\ncontrol_header_timeout = \"4s\"\n\
         control_idle_timeout = \"9s\"\n{ZONE}"
    ))
    .unwrap();
    let t = config.server.tcp;
    assert_eq!(
        (
            t.max_connections,
            t.max_connections_per_client,
            t.max_transfers_out
        ),
        (100, 7, 3)
    );
    assert_eq!(
        (t.idle_timeout, t.busy_idle_timeout, t.write_timeout),
        (
            Duration::from_secs(30),
            Duration::from_secs(2),
            Duration::from_secs(60)
        )
    );
    let c = config.server.control_limits;
    assert_eq!(
        (c.max_connections, c.header_timeout, c.idle_timeout),
        (5, Duration::from_secs(4), Duration::from_secs(9))
    );

    let shown = lines(&format!(
        "{SERVER}tcp_max_connections = 0\ntcp_max_connections_per_client = 0\n\
         tcp_idle_timeout = 0\ntcp_write_timeout = \"0s\"\nmax_transfers_out = 0\n\
         control_max_connections = 0\ncontrol_header_timeout = 0\ncontrol_idle_timeout = 0\n{ZONE}"
    ));
    for key in [
        "tcp_max_connections",
        "tcp_max_connections_per_client",
        "tcp_idle_timeout",
        "tcp_write_timeout",
        "max_transfers_out",
        "control_max_connections",
        "control_header_timeout",
        "control_idle_timeout",
    ] {
        let line = format!("test.toml: server.{key}: must be greater than zero");
        assert!(shown.contains(&line), "{line} not in {shown:#?}");
    }
    let shown = lines(&format!(
        "{SERVER}tcp_idle_timeout = \"5s\"\ntcp_busy_idle_timeout = \"6s\"\n{ZONE}"
    ));
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].starts_with(
            "test.toml: server.tcp_busy_idle_timeout: 6s is longer than tcp_idle_timeout (5s)"
        ),
        "{shown:?}"
    );
}

#[test]
fn a_control_endpoint_off_loopback_needs_a_token() {
    let public = |addr: &str, extra: &str| {
        format!(
            "[server]\nlisten = [\"127.0.0.1:53\"]\ndata_dir = \"/var/lib/outpost\"\ncontrol = \"{addr}\"\n{extra}{ZONE}"
        )
    };
    let shown = lines(&public("0.0.0.0:8053", ""));
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(
        shown[0].starts_with("test.toml: server.control: 0.0.0.0:8053 is not a loopback address"),
        "{shown:?}"
    );
    assert!(shown[0].contains("control_token") && shown[0].contains(CONTROL_TOKEN_ENV));
    assert!(parse(&public("192.0.2.1:8053", "")).is_err());
    // Loopback, IPv4 and IPv6: no token needed.
    for addr in ["127.0.0.1:8053", "127.1.2.3:8053", "[::1]:8053"] {
        assert!(parse(&public(addr, "")).is_ok(), "{addr}");
    }
    // A token in the file, or in the environment.
    let with_file = parse(&public("0.0.0.0:8053", "control_token = \"t\"\n")).unwrap();
    assert_eq!(with_file.server.control_token.as_deref(), Some("t"));
    let text = public("0.0.0.0:8053", "");
    let from_env =
        Config::from_toml_str_with_env(&text, "test.toml", Some("env-token".into())).unwrap();
    assert_eq!(from_env.server.control_token.as_deref(), Some("env-token"));
    // The file's wins; an empty environment value is no token.
    let both = Config::from_toml_str_with_env(
        &public("0.0.0.0:8053", "control_token = \"file\"\n"),
        "test.toml",
        Some("env".into()),
    )
    .unwrap();
    assert_eq!(both.server.control_token.as_deref(), Some("file"));
    assert!(Config::from_toml_str_with_env(&text, "test.toml", Some(String::new())).is_err());
    // Without `control`, the environment's token is not an error.
    let none =
        Config::from_toml_str_with_env(&format!("{SERVER}{ZONE}"), "test.toml", Some("x".into()))
            .unwrap();
    assert_eq!(none.server.control, None);
}

#[test]
fn the_docker_config_refuses_to_start_without_its_token() {
    let text = include_str!("../../config/docker.toml");
    let paths = |text: &str, env: Option<&str>| -> Vec<String> {
        match Config::from_toml_str_with_env(text, "docker.toml", env.map(String::from)) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.into_iter().map(|p| p.path).collect(),
        }
    };
    // The seed file lives in the image, not here: that problem aside, the
    // only one is the token file that is not mounted.
    let without: Vec<String> = paths(text, None)
        .into_iter()
        .filter(|p| !p.ends_with("seed_file"))
        .collect();
    assert_eq!(without, ["server.control_token_file"]);
    // Without the file key, the environment's token is what it needs.
    let env_only = text.replace("control_token_file = \"control-token\"\n", "");
    assert_ne!(env_only, text);
    let without: Vec<String> = paths(&env_only, None)
        .into_iter()
        .filter(|p| !p.ends_with("seed_file"))
        .collect();
    assert_eq!(without, ["server.control"]);
    let with: Vec<String> = paths(&env_only, Some("secret"))
        .into_iter()
        .filter(|p| !p.ends_with("seed_file"))
        .collect();
    assert!(with.is_empty(), "{with:?}");
}

#[test]
fn query_path_tables_defaults_and_errors() {
    let c = parse(&format!("{SERVER}{ZONE}")).unwrap();
    assert_eq!(c.rrl.responses_per_second, DEFAULT_RRL_RATE);
    assert!(c.rrl.enabled());
    assert_eq!(c.rrl.exempt.len(), 2, "loopback exempt by default");
    assert_eq!(c.cache.size, DEFAULT_ANSWER_CACHE);
    assert_eq!(c.cookies.secret, None);
    assert!(c.identity.nsid);
    assert!(
        c.identity
            .version
            .as_deref()
            .unwrap()
            .starts_with("Outpost ")
    );

    let off = parse(&format!(
        "{SERVER}{ZONE}\n[rrl]\nresponses_per_second = 0\n[cache]\nsize = 0\n[identity]\nidentity = \"\"\n"
    ))
    .unwrap();
    assert!(!off.rrl.enabled());
    assert_eq!(off.cache.size, 0);
    assert_eq!(off.identity.identity, None);

    let bad = lines(&format!(
        "{SERVER}{ZONE}
[rrl]
window = \"2h\"
ipv4_prefix_length = 33
exempt = [\"10.0.0.1/8\", \"nonsense\"]
table_size = 3
[cookies]
secret = \"0011\"
previous_secret = \"zz\"
"
    ));
    for expected in [
        "rrl.window: must be from 1s to 1h",
        "rrl.ipv4_prefix_length: must be at most 32",
        "rrl.exempt[0]: \"10.0.0.1/8\" has bits set after the prefix length",
        "rrl.exempt[1]: \"nonsense\" is not an IP address or CIDR network",
        "rrl.table_size: must be from 16 to 16777216 entries",
        "cookies.secret: 2 octets: a SipHash-2-4 key is 16 octets (32 hex digits)",
        "cookies.previous_secret: not hexadecimal",
    ] {
        assert!(
            bad.iter().any(|l| l.contains(expected)),
            "{expected:?} not in {bad:#?}"
        );
    }
    assert!(
        lines(&format!("{SERVER}{ZONE}\n[rrl]\nrate = 5\n"))[0].contains("unknown field `rate`")
    );
}

#[test]
fn catalogs_give_their_settings_to_members() {
    let cfg = Config::from_toml_str(
        r#"
[server]
listen = ["127.0.0.1:5300"]
data_dir = "/tmp/outpost-test"

[defaults]
min_refresh = "1m"

[[catalog]]
name = "Catalog.Home.Example"
primaries = ["192.0.2.53"]
on_expire = "keep-serving"
member_removal_grace = "2h"

[catalog.group.partners]
primaries = ["192.0.2.54:5353"]
min_expire = "30d"
"#,
        "test.toml",
    )
    .unwrap();
    let cat = &cfg.catalogs[0];
    assert_eq!(cat.name.to_string(), "catalog.home.example.");
    assert_eq!(cat.member_removal_grace, Duration::from_secs(7200));
    // The catalog zone itself is transferred like any zone.
    let zone = cfg.zones.iter().find(|z| z.name == cat.name).unwrap();
    assert_eq!(zone.role, ZoneRole::Catalog);
    let member: Name = "m.example.".parse().unwrap();
    let plain = cat.member_config(&member, &[]);
    assert_eq!(plain.role, ZoneRole::Member(cat.name.clone()));
    assert_eq!(plain.on_expire, OnExpire::KeepServing);
    assert_eq!(plain.timers.min_refresh, Duration::from_secs(60));
    assert_eq!(plain.primaries, vec!["192.0.2.53:53".parse().unwrap()]);
    let grouped = cat.member_config(&member, &["other".into(), "partners".into()]);
    assert_eq!(grouped.primaries, vec!["192.0.2.54:5353".parse().unwrap()]);
    assert_eq!(grouped.timers.min_expire, Duration::from_secs(30 * 86_400));
    assert_eq!(
        grouped.on_expire,
        OnExpire::KeepServing,
        "the catalog's own settings under the group's"
    );
}

#[test]
fn catalog_mistakes_are_named() {
    assert_eq!(
        lines(
            r#"
[server]
listen = ["127.0.0.1:5300"]
data_dir = "/tmp/outpost-test"

[[zone]]
name = "cat.example"
primaries = ["192.0.2.1"]

[[catalog]]
name = "cat.example"

[[catalog]]
name = "other.example"
primaries = ["192.0.2.1"]
[catalog.group.g]
key = "missing-key"
"#
        ),
        vec![
            "test.toml: catalog[0] (cat.example).name: duplicate: \"cat.example\" is already a [[zone]] or a [[catalog]]",
            "test.toml: catalog[0] (cat.example).primaries: no primaries: a catalog zone is transferred from its primaries, which also serve its members",
            "test.toml: catalog[1] (other.example).group.g.key: \"missing-key\" does not name a [[key]]",
        ]
    );
}
