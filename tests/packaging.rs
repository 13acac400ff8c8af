//! What ships besides the binary: the systemd unit and its install, the
//! container image, the toolchain pin, the test script. The image is built
//! and run with whichever container engine works here (docker, podman); on
//! a machine with none, or none that can fetch the base images, the test
//! says why and checks only what can be read.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use common::dns::{Q, build_query, exchange_timeout};
use common::peers::free_port;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap()
}

/// The unit's Documentation= points at files install.sh installs, and its
/// LoadCredential= files at the directory it makes root-only.
#[test]
fn install_puts_what_the_unit_points_at() {
    let dest = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg(Path::new(ROOT).join("packaging/install.sh"))
        .env("DESTDIR", dest.path())
        .env("OUTPOST_BIN", env!("CARGO_BIN_EXE_outpost"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let unit = std::fs::read_to_string(dest.path().join("etc/systemd/system/outpost.service"))
        .expect("unit installed");
    let docs: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Documentation="))
        .collect();
    assert!(!docs.is_empty());
    for doc in docs {
        let path = doc
            .strip_prefix("file://")
            .unwrap_or_else(|| panic!("Documentation={doc} is not a file:// URL"));
        let installed = dest.path().join(path.trim_start_matches('/'));
        assert!(installed.is_file(), "{doc} not installed");
    }
    let bin = dest.path().join("usr/local/bin/outpost");
    assert!(bin.is_file());
    assert!(unit.contains("ExecStart=/usr/local/bin/outpost serve"));
    use std::os::unix::fs::PermissionsExt;
    let creds = dest.path().join("etc/outpost/credentials");
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for l in unit
        .lines()
        .filter_map(|l| l.strip_prefix("LoadCredential="))
    {
        let (_, file) = l.split_once(':').unwrap();
        assert!(file.starts_with("/etc/outpost/credentials/"), "{l}");
    }
}

/// The pins agree with each other and with the README.
#[test]
fn toolchain_pin_and_minimum_rust_are_stated() {
    let cargo: toml::Table = read("Cargo.toml").parse().unwrap();
    let minimum = cargo["package"]["rust-version"]
        .as_str()
        .unwrap()
        .to_string();
    let pin: toml::Table = read("rust-toolchain.toml").parse().unwrap();
    let channel = pin["toolchain"]["channel"].as_str().unwrap().to_string();
    let version = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(
        version(&channel) >= version(&minimum),
        "{channel} < {minimum}"
    );
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("Rust {minimum}")),
        "README does not name the minimum Rust {minimum}"
    );
    assert!(
        readme.contains("rustup"),
        "README does not say how to get it"
    );
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("rust:{channel}-")),
        "the image builds with another Rust than rust-toolchain.toml's {channel}"
    );
}

/// What can be read of the image recipe without building it.
#[test]
fn dockerfile_is_portable_and_lean() {
    let dockerfile = read("Dockerfile");
    for line in dockerfile.lines() {
        if let Some(image) = line
            .strip_prefix("ARG ")
            .and_then(|a| a.split_once("_IMAGE="))
        {
            assert!(
                image.1.starts_with("docker.io/"),
                "{line}: podman needs a fully qualified name"
            );
        }
        if let Some(from) = line.strip_prefix("FROM ") {
            assert!(
                from.starts_with("${") || from.starts_with("docker.io/"),
                "{line}"
            );
        }
    }
    assert!(dockerfile.contains("HEALTHCHECK"));
    assert!(
        !dockerfile.contains("ca-certificates\n") && !dockerfile.contains("ca-certificates \\")
    );
    assert!(dockerfile.contains("CARGO_PROFILE_RELEASE_STRIP=symbols"));
    let ignore = read(".dockerignore");
    let first = ignore
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty());
    assert_eq!(first, Some("*"), "everything excluded first: {ignore}");
    assert!(!ignore.contains("!target"));
}

/// scripts/test: no dnsperf (no test uses it), no sudo assumed, and the
/// packages the tests use (chromium, promtool) installed.
#[test]
fn test_script_installs_what_tests_use() {
    let script = read("scripts/test");
    assert!(
        !script.contains("dnsperf"),
        "scripts/test still asks for dnsperf"
    );
    assert!(script.contains("command -v sudo"), "sudo assumed");
    for package in ["chromium", "prometheus"] {
        assert!(script.contains(package), "{package} not installed");
    }
}

/// A container engine that works here, if any: (program, why not).
fn engine() -> Result<&'static str, String> {
    let mut why = Vec::new();
    for engine in ["docker", "podman"] {
        match Command::new(engine).arg("info").output() {
            Ok(o) if o.status.success() => return Ok(engine),
            Ok(o) => why.push(format!(
                "{engine} info failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )),
            Err(e) => why.push(format!("{engine}: {e}")),
        }
    }
    Err(why.join("; "))
}

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Builds the image and runs it: it answers for the bundled zone, its
/// health check passes, the binary is stripped and small, no CA bundle.
/// Skips (saying why) without a working engine or without access to the
/// base images' registry.
#[test]
fn container_image_builds_and_serves() {
    let engine = match engine() {
        Ok(e) => e,
        Err(why) => {
            eprintln!(
                "SKIPPED container_image_builds_and_serves: no container engine works here ({why})"
            );
            return;
        }
    };
    let dockerfile = read("Dockerfile");
    let images: Vec<String> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("ARG ").and_then(|a| a.split_once("_IMAGE=")))
        .map(|(_, image)| image.trim().to_string())
        .collect();
    for image in &images {
        let have = run(Command::new(engine).args(["image", "inspect", image]))
            .status
            .success();
        if !have {
            let pull = run(Command::new(engine).args(["pull", image]));
            if !pull.status.success() {
                eprintln!(
                    "SKIPPED container_image_builds_and_serves: {engine} cannot fetch {image}: {}",
                    String::from_utf8_lossy(&pull.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                );
                return;
            }
        }
    }
    let tag = format!("localhost/outpost-test:{}", std::process::id());
    let build = run(Command::new(engine)
        .args(["build", "-t", &tag, "."])
        .current_dir(ROOT));
    assert!(
        build.status.success(),
        "{engine} build: {}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let secrets = tempfile::tempdir().unwrap();
    let token = secrets.path().join("control-token");
    std::fs::write(&token, "container-test-token\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (dns, control) = (free_port(), free_port());
    let name = format!("outpost-test-{}", std::process::id());
    let started = run(Command::new(engine).args([
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        &format!("127.0.0.1:{dns}:53/udp"),
        "-p",
        &format!("127.0.0.1:{dns}:53/tcp"),
        "-p",
        &format!("127.0.0.1:{control}:8053/tcp"),
        "-v",
        &format!("{}:/run/secrets/control-token:ro", token.display()),
        &tag,
    ]));
    struct Cleanup(&'static str, String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new(self.0).args(["rm", "-f", &self.1]).output();
            let _ = Command::new(self.0).args(["rmi", "-f", &self.2]).output();
        }
    }
    let _cleanup = Cleanup(engine, name.clone(), tag.clone());
    assert!(started.status.success(), "{started:?}");
    let addr = SocketAddr::from(([127, 0, 0, 1], dns));
    let start = Instant::now();
    loop {
        let q = build_query("example.com.", RecordType::MX, Q::udp());
        if let Ok(answer) = exchange_timeout(addr, &q, false, Duration::from_millis(500)) {
            let m = hickory_proto::op::Message::from_vec(&answer).unwrap();
            assert_eq!(m.answers.len(), 3, "{m:?}");
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let logs = run(Command::new(engine).args(["logs", &name]));
            panic!(
                "the container does not answer: {}",
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let health =
        run(Command::new(engine).args(["exec", &name, "/usr/local/bin/outpost", "health"]));
    assert!(health.status.success(), "{health:?}");
    let status = outpost::control::request(
        SocketAddr::from(([127, 0, 0, 1], control)),
        "GET",
        "/status",
        Some("container-test-token"),
    );
    assert!(status.is_ok(), "{status:?}");
    let size = run(Command::new(engine).args([
        "run", "--rm", "--entrypoint", "/bin/sh", &tag, "-c",
        "stat -c %s /usr/local/bin/outpost; test ! -e /etc/ssl/certs/ca-certificates.crt && echo no-ca",
    ]));
    let text = String::from_utf8_lossy(&size.stdout);
    let bytes: u64 = text.lines().next().unwrap().trim().parse().unwrap();
    assert!(bytes < 20 << 20, "binary of {bytes} octets: not stripped?");
    assert!(text.contains("no-ca"), "{text}");
    eprintln!("{engine}: image built and served; binary {bytes} octets");
}
