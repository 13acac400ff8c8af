//! `kill -9` during `write_atomic`, over and over: the target must always be
//! exactly one complete version, and temp files must not pile up.
//!
//! The test re-executes its own binary as a child (`crash_child`, selected
//! by name and enabled by an environment variable). The child removes stale
//! temp files, as the server does at start, then rewrites a ~14 MB file
//! alternately with versions A and B until it is killed.

use outpost::persist::{cleanup_temp, write_atomic};
use rand::Rng;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "OUTPOST_PERSIST_CRASH_DIR";
const TARGET: &str = "big.zone";
const LINES: usize = 200_000;
const KILLS: usize = 24;

fn write_version(w: &mut dyn Write, version: char) -> io::Result<()> {
    for i in 0..LINES {
        writeln!(
            w,
            "host{i:06}.example. 3600 IN TXT \"version {version} line {i:06} of a large zone\""
        )?;
    }
    Ok(())
}

fn contents(version: char) -> Vec<u8> {
    let mut v = Vec::new();
    write_version(&mut v, version).unwrap();
    v
}

#[test]
#[ignore = "child process of kill_9_while_writing; run by that test"]
fn crash_child() {
    let dir = PathBuf::from(
        std::env::var_os(CHILD_ENV)
            .expect("crash_child is a helper of kill_9_while_writing, not a test of its own"),
    );
    cleanup_temp(&dir).unwrap();
    let target = dir.join(TARGET);
    loop {
        for version in ['B', 'A'] {
            write_atomic(&target, |w| write_version(w, version)).unwrap();
        }
    }
}

/// Kills the child if the test fails before it does.
struct Killer(Child);

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(dir: &Path, logs: &Path, n: usize) -> Killer {
    let log = |kind: &str| fs::File::create(logs.join(format!("child-{n}.{kind}"))).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_ENV, dir)
        .stdin(Stdio::null())
        .stdout(log("out"))
        .stderr(log("err"))
        .spawn()
        .expect("re-executing the test binary");
    Killer(child)
}

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != TARGET)
        .collect()
}

fn inode(path: &Path) -> u64 {
    fs::metadata(path).unwrap().ino()
}

#[test]
fn kill_9_while_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let logs = tmp.path().join("logs");
    fs::create_dir_all(&dir).unwrap();
    fs::create_dir_all(&logs).unwrap();
    let target = dir.join(TARGET);
    let (a, b) = (contents('A'), contents('B'));

    let started = Instant::now();
    write_atomic(&target, |w| write_version(w, 'A')).unwrap();
    let one_write = started.elapsed();
    let mut rng = rand::rng();
    let (mut mid_write, mut seen_a, mut seen_b, mut last_temps) = (0, 0, 0, 0);

    for n in 0..KILLS {
        let mut child = spawn_child(&dir, &logs, n);
        let before = inode(&target);
        if n % 2 == 1 {
            // Wait until the child has replaced the file at least once, so
            // that the kill lands somewhere in its steady write loop.
            let deadline = Instant::now() + Duration::from_secs(120);
            while inode(&target) == before {
                if let Some(status) = child.0.try_wait().unwrap() {
                    panic!(
                        "child {n} exited by itself ({status}); see {}",
                        logs.display()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "child {n} never completed a write"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Odd runs: anywhere in the next two writes. Even runs: anywhere from
        // start-up (stale temp cleanup, first create) to the third write.
        let span = one_write.mul_f64(if n % 2 == 1 { 2.0 } else { 3.0 });
        std::thread::sleep(span.mul_f64(rng.random::<f64>()));
        child.0.kill().unwrap();
        let status = child.0.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "child {n} was not killed by SIGKILL but ended with {status}; see {}",
            logs.display()
        );

        let got = fs::read(&target).unwrap();
        if got == a {
            seen_a += 1;
        } else if got == b {
            seen_b += 1;
        } else {
            panic!(
                "kill {n}: {} is torn: {} bytes, neither version A nor B ({} bytes)",
                target.display(),
                got.len(),
                a.len()
            );
        }
        let temps = temp_files(&dir);
        assert!(temps.len() <= 1, "kill {n}: temp files pile up: {temps:?}");
        mid_write += temps.len();
        last_temps = temps.len();
    }

    eprintln!(
        "{KILLS} kills, one write {one_write:?}: {mid_write} mid-write, final A {seen_a} times, B {seen_b} times"
    );
    // The kills must really have hit writes in progress, and the child must
    // really have replaced the file, or the checks above proved nothing.
    assert!(mid_write >= KILLS / 4, "only {mid_write} kills hit a write");
    assert!(
        seen_a > 0 && seen_b > 0,
        "A {seen_a} times, B {seen_b} times"
    );
    assert_eq!(cleanup_temp(&dir).unwrap(), last_temps);
    assert!(temp_files(&dir).is_empty());
}
