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

/// Runs a command in the built image and returns its output.
type InImage = dyn Fn(&[&str]) -> std::process::Output;

/// How the image can be exercised on this machine.
enum Engine {
    /// docker or podman that builds and runs containers.
    Full(&'static str),
    /// Only buildah with chroot isolation: the engine's runtime cannot
    /// start containers here (a sandbox without cgroups or setrlimit), so
    /// the image is built and its root run in a chroot on the host's
    /// network instead. The reason is kept for the test's output.
    Chroot(String),
}

fn works(cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr)
            .lines()
            .last()
            .unwrap_or("")
            .to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The base images the Dockerfile names, fetched if need be.
fn base_images(engine: &str) -> Result<(), String> {
    let dockerfile = read("Dockerfile");
    for image in dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("ARG ").and_then(|a| a.split_once("_IMAGE=")))
        .map(|(_, image)| image.trim())
    {
        if works(Command::new(engine).args(["image", "inspect", image])).is_err() {
            works(Command::new(engine).args(["pull", image]))
                .map_err(|e| format!("{engine} cannot fetch {image}: {e}"))?;
        }
    }
    Ok(())
}

/// An engine that works here, or why none does.
fn engine() -> Result<Engine, String> {
    let mut why = Vec::new();
    for engine in ["docker", "podman"] {
        if let Err(e) = works(Command::new(engine).arg("info")) {
            why.push(format!("{engine} info: {e}"));
            continue;
        }
        base_images(engine)?;
        match works(Command::new(engine).args([
            "run",
            "--rm",
            "docker.io/library/debian:bookworm-slim",
            "true",
        ])) {
            Ok(()) => return Ok(Engine::Full(engine)),
            Err(e) => why.push(format!("{engine} cannot run a container here: {e}")),
        }
    }
    if works(Command::new("buildah").arg("--version")).is_ok() {
        base_images("buildah")?;
        return Ok(Engine::Chroot(why.join("; ")));
    }
    Err(why.join("; "))
}

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn wait_for_mx(addr: SocketAddr, log: impl Fn() -> String) {
    let start = Instant::now();
    loop {
        let q = build_query("example.com.", RecordType::MX, Q::udp());
        if let Ok(answer) = exchange_timeout(addr, &q, false, Duration::from_millis(500)) {
            let m = hickory_proto::op::Message::from_vec(&answer).unwrap();
            assert_eq!(m.answers.len(), 3, "{m:?}");
            return;
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!("the image's outpost does not answer: {}", log());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Builds the image and runs it: it answers for the bundled zone, its
/// health check passes, the control token comes from /run/secrets, the
/// binary is stripped and small, there is no CA bundle. Skips (saying why)
/// without a container engine or without access to the base images.
#[test]
fn container_image_builds_and_serves() {
    let engine = match engine() {
        Ok(e) => e,
        Err(why) => {
            eprintln!("SKIPPED container_image_builds_and_serves: {why}");
            return;
        }
    };
    let tag = format!("localhost/outpost-test:{}", std::process::id());
    let name = format!("outpost-test-{}", std::process::id());
    let secrets = tempfile::tempdir().unwrap();
    let token = secrets.path().join("control-token");
    std::fs::write(&token, "container-test-token\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (dns, control) = (free_port(), free_port());
    let mount = format!("{}:/run/secrets/control-token:ro", token.display());
    let _ = &mount;

    let (program, build): (&'static str, Vec<&str>) = match &engine {
        Engine::Full(e) => (e, vec!["build", "-t", &tag, "."]),
        Engine::Chroot(why) => {
            eprintln!("building with buildah --isolation chroot ({why})");
            (
                "buildah",
                vec!["bud", "--isolation", "chroot", "--layers", "-t", &tag, "."],
            )
        }
    };
    struct Cleanup(&'static str, String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let rm: &[&str] = if self.0 == "buildah" {
                &["rm"]
            } else {
                &["rm", "-f"]
            };
            let _ = Command::new(self.0).args(rm).arg(&self.1).output();
            let _ = Command::new(self.0).args(["rmi", "-f", &self.2]).output();
        }
    }
    let _cleanup = Cleanup(program, name.clone(), tag.clone());
    let built = run(Command::new(program).args(&build).current_dir(ROOT));
    assert!(
        built.status.success(),
        "{program} build: {}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], dns));
    let control_addr = SocketAddr::from(([127, 0, 0, 1], control));
    // Runs a command in the image: a throwaway container, or the working
    // container in a chroot.
    let exec: Box<InImage> = match &engine {
        Engine::Full(e) => {
            let started = run(Command::new(e).args([
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
                &mount,
                &tag,
            ]));
            assert!(started.status.success(), "{started:?}");
            let logs = || {
                let l = run(Command::new(e).args(["logs", &name]));
                String::from_utf8_lossy(&l.stderr).to_string()
            };
            wait_for_mx(addr, logs);
            let (e, name) = (*e, name.clone());
            Box::new(move |args: &[&str]| {
                let mut c = Command::new(e);
                c.args(["exec", &name]).args(args);
                run(&mut c)
            })
        }
        Engine::Chroot(_) => {
            let made = run(Command::new("buildah").args(["from", "--name", &name, &tag]));
            assert!(made.status.success(), "{made:?}");
            let mounted = run(Command::new("buildah").args(["mount", &name]));
            assert!(mounted.status.success(), "{mounted:?}");
            let root = std::path::PathBuf::from(String::from_utf8_lossy(&mounted.stdout).trim());
            // The image's own configuration with the addresses moved to free
            // loopback ports (a chroot shares the host's network), and the
            // token where a secret mount would put it.
            let shipped = read("config/docker.toml");
            std::fs::write(
                root.join("etc/outpost/outpost.toml"),
                shipped
                    .replace("0.0.0.0:53", &addr.to_string())
                    .replace("0.0.0.0:8053", &control_addr.to_string()),
            )
            .unwrap();
            std::fs::create_dir_all(root.join("run/secrets")).unwrap();
            std::fs::copy(&token, root.join("run/secrets/control-token")).unwrap();
            assert!(read("Dockerfile").contains("ENV CREDENTIALS_DIRECTORY=/run/secrets"));
            // As the image's user, in its working directory, with its
            // environment: what its ENTRYPOINT would run.
            let in_image = move |args: &[&str]| {
                let mut c = Command::new("/usr/sbin/chroot");
                c.arg("--userspec=5353:5353")
                    .arg(&root)
                    .args(["/bin/sh", "-c", "cd /var/lib/outpost && exec \"$@\"", "sh"])
                    .args(args)
                    .env_clear()
                    .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                    .env("CREDENTIALS_DIRECTORY", "/run/secrets");
                c
            };
            struct Kill(std::process::Child);
            impl Drop for Kill {
                fn drop(&mut self) {
                    let _ = self.0.kill();
                    let _ = self.0.wait();
                }
            }
            let log = secrets.path().join("outpost.log");
            let server = Kill(
                in_image(&["/usr/local/bin/outpost", "serve"])
                    .stderr(std::fs::File::create(&log).unwrap())
                    .spawn()
                    .unwrap(),
            );
            wait_for_mx(addr, || std::fs::read_to_string(&log).unwrap_or_default());
            Box::new(move |args: &[&str]| {
                let _keep = &server;
                run(&mut in_image(args))
            })
        }
    };
    // The image's HEALTHCHECK command, run as the engine would.
    let dockerfile = read("Dockerfile");
    let health_cmd: Vec<String> = dockerfile
        .split("CMD [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap()
        .split(',')
        .map(|w| w.trim().trim_matches('"').to_string())
        .collect();
    assert_eq!(health_cmd, ["/usr/local/bin/outpost", "health"]);
    let health = exec(&["/usr/local/bin/outpost", "health"]);
    assert!(health.status.success(), "{health:?}");
    // The token from /run/secrets guards the control endpoint.
    let err = outpost::control::request(control_addr, "GET", "/status", None).unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    outpost::control::request(control_addr, "GET", "/status", Some("container-test-token"))
        .unwrap();
    let size = exec(&[
        "/bin/sh",
        "-c",
        "stat -c %s /usr/local/bin/outpost; test ! -e /etc/ssl/certs/ca-certificates.crt && echo no-ca",
    ]);
    let text = String::from_utf8_lossy(&size.stdout).to_string();
    let bytes: u64 = text.lines().next().unwrap().trim().parse().unwrap();
    assert!(bytes < 20 << 20, "binary of {bytes} octets: not stripped?");
    assert!(text.contains("no-ca"), "{text}");
    eprintln!("{program}: image built and served; binary {bytes} octets");
}
