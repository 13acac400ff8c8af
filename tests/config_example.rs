//! The shipped example must stay a valid configuration.

use outpost::config::{AclEntry, Config, OnExpire, ZonemdMode};
use std::path::Path;

#[test]
fn example_full_parses() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example-full.toml");
    // The example's relative paths (data_dir, seed_file) are resolved against
    // the working directory, so run from a scratch directory holding the seed
    // file. This is the only test in this binary, so changing the process-wide
    // cwd races with nothing.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/example.com.zone"), "").unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let cwd = std::env::current_dir().unwrap();

    let config = Config::load(&example).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.source, example);
    assert_eq!(config.server.listen.len(), 2);
    assert_eq!(config.server.data_dir, cwd.join("var/outpost"));
    assert_eq!(config.server.udp_workers, 2);
    // The example shows the defaults.
    assert_eq!(config.server.tcp, outpost::config::TcpLimits::default());
    assert_eq!(
        config.server.control_limits,
        outpost::config::ControlLimits::default()
    );
    assert_eq!(config.keys.len(), 2);
    assert_eq!(
        config.identity.identity.as_deref(),
        Some("outpost-1.partner.example.net")
    );
    assert_eq!(config.identity.version, None, "hidden");
    assert_eq!(config.rrl.responses_per_second, 200);
    assert_eq!(config.rrl.exempt.len(), 3);
    assert_eq!(config.rrl.window, std::time::Duration::from_secs(15));
    assert!(config.cookies.secret.is_some() && config.cookies.previous_secret.is_some());
    assert_eq!(config.cache.size, 64 << 20);
    // The two [[zone]], then the catalog zone.
    assert_eq!(config.zones.len(), 3);
    assert_eq!(
        config.server.refresh,
        outpost::config::RefreshLimits::default()
    );
    let cat = &config.catalogs[0];
    assert_eq!(cat.name.to_string(), "catalog.home.example.");
    assert_eq!(config.zones[2].name, cat.name);
    assert_eq!(
        cat.member_removal_grace,
        outpost::config::DEFAULT_MEMBER_REMOVAL_GRACE
    );
    assert_eq!(cat.members.on_expire, OnExpire::KeepServing);
    assert_eq!(
        cat.groups["partners"].primaries[0].to_string(),
        "192.0.2.54:53"
    );

    let com = &config.zones[0];
    assert_eq!(com.name.to_string(), "example.com.");
    assert_eq!(
        com.seed_file.as_deref(),
        Some(cwd.join("zones/example.com.zone").as_path())
    );
    assert_eq!(com.on_expire, OnExpire::KeepServing);
    assert_eq!(com.key.as_ref().unwrap().name.to_string(), "xfr-key.");
    assert_eq!(com.allow_transfer.len(), 2);
    // "16M" would be 16,000,000: the example must show the real default.
    assert_eq!(
        com.ixfr_history_bytes,
        outpost::config::DEFAULT_IXFR_HISTORY_BYTES
    );

    let org = &config.zones[1];
    assert_eq!(org.on_expire, OnExpire::Servfail);
    assert_eq!(org.key, None);
    assert_eq!(org.zonemd, ZonemdMode::Require);
    assert!(matches!(&org.allow_transfer[0], AclEntry::Key(k) if k.to_string() == "notify-key."));
}
