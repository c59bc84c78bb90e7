//! Test harness: a real mosquitto broker on a free loopback port, with its
//! own configuration, started per test and killed when dropped.
#![allow(dead_code)] // each test binary uses a different part of it

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("plover-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running mosquitto.
pub struct Broker {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
    config: String,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{tool}` is not installed: the integration tests need a real broker \
         (apt-get install -y mosquitto mosquitto-clients)"
    );
}

impl Broker {
    /// A plain listener allowing anonymous clients.
    pub fn start() -> Broker {
        Broker::start_with("allow_anonymous true\n")
    }

    /// A listener with extra configuration lines (`{dir}` in them is
    /// replaced by the broker's scratch directory).
    pub fn start_with(extra: &str) -> Broker {
        require("mosquitto");
        let dir = TempDir::new("mosquitto");
        // A port picked now may be taken by the time mosquitto binds it;
        // try a few.
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "listener {port} 127.0.0.1\nlog_dest stderr\nuser root\npersistence false\n{}",
                extra.replace("{dir}", &dir.path().display().to_string())
            );
            if let Some(child) = Broker::launch(&dir, port, &config) {
                return Broker {
                    child,
                    port,
                    dir,
                    config,
                };
            }
        }
        panic!("mosquitto did not start");
    }

    fn launch(dir: &TempDir, port: u16, config: &str) -> Option<Child> {
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, config).expect("write mosquitto.conf");
        let log = std::fs::File::create(dir.path().join("mosquitto.log")).expect("log file");
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mosquitto");
        let log_path = dir.path().join("mosquitto.log");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return None;
            }
            // The port accepting connections is not enough: between
            // free_port() and mosquitto's bind another test's broker may
            // have taken it, and then we would be talking to that one.
            // mosquitto says "... running" only once every listener of
            // its own is bound.
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let running = log
                .lines()
                .any(|l| l.contains("mosquitto version") && l.ends_with("running"));
            if running && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(child);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Stops the broker process (like a crash: no clean shutdown).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same configuration.
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if let Some(child) = Broker::launch(&self.dir, self.port, &self.config) {
                self.child = child;
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("mosquitto did not restart on port {}", self.port);
    }

    /// What mosquitto logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a mosquitto password file with one user, using mosquitto_passwd.
pub fn password_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    require("mosquitto_passwd");
    let path = dir.join("passwords");
    std::fs::File::create(&path)
        .and_then(|mut f| f.flush())
        .expect("create password file");
    let status = Command::new("mosquitto_passwd")
        .arg("-b")
        .arg(&path)
        .arg(user)
        .arg(password)
        .status()
        .expect("run mosquitto_passwd");
    assert!(status.success(), "mosquitto_passwd failed");
    path
}

/// Runs a future with a time limit, panicking with `what` if it passes.
pub async fn within<T>(what: &str, secs: u64, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs} s: {what}"),
    }
}

/// A client id unique within this test run.
pub fn client_id(tag: &str) -> String {
    format!(
        "plover-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------
// Helpers added for tests/client.rs and tests/interop_paho.rs.

impl Broker {
    /// Like [`Broker::start_with`], but `prepare` runs on the broker's
    /// scratch directory before mosquitto is launched, so files the
    /// configuration names (a password file, say) exist when it reads them.
    pub fn start_with_files(extra: &str, prepare: impl FnOnce(&Path)) -> Broker {
        require("mosquitto");
        let dir = TempDir::new("mosquitto");
        prepare(dir.path());
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "listener {port} 127.0.0.1\nlog_dest stderr\nuser root\npersistence false\n{}",
                extra.replace("{dir}", &dir.path().display().to_string())
            );
            if let Some(child) = Broker::launch(&dir, port, &config) {
                return Broker {
                    child,
                    port,
                    dir,
                    config,
                };
            }
        }
        panic!("mosquitto did not start");
    }

    /// Waits (at most `secs`) until mosquitto's log contains `needle`, and
    /// returns the log. mosquitto writes its log unbuffered, so a line there
    /// means the broker has finished handling what it describes.
    pub async fn wait_for_log(&self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {secs} s waiting for {needle:?} in the mosquitto log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A Python interpreter with paho-mqtt 2.x importable: a virtualenv under
/// `target/paho-venv`, created on first use.
///
/// The venv is built in a directory private to this process and renamed
/// into place when complete, so test binaries (or `cargo test` runs) racing
/// to create it never see a half-installed one: the loser of the rename
/// just uses the winner's. Within one binary a `OnceLock` builds it once.
pub fn paho_python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(build_paho_venv).clone()
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

fn paho_importable(python: &Path) -> bool {
    Command::new(python)
        .arg("-c")
        .arg("import paho.mqtt, sys; sys.exit(0 if paho.mqtt.__version__.startswith('2.') else 1)")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn build_paho_venv() -> PathBuf {
    require("python3");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let venv = target.join("paho-venv");
    if paho_importable(&venv_python(&venv)) {
        return venv_python(&venv);
    }
    std::fs::create_dir_all(&target).expect("create the target directory");
    let staging = target.join(format!(
        "paho-venv.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&staging);
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed ({}); the paho interop tests need Python 3 with venv \
             and pip able to install paho-mqtt 2.x.\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&staging),
        "python3 -m venv",
    );
    run(
        Command::new(venv_python(&staging))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--timeout",
                "60",
                "--retries",
                "2",
            ])
            .arg("paho-mqtt>=2,<3"),
        "pip install 'paho-mqtt>=2,<3'",
    );
    // A stale, broken venv in the way is replaced; a working one that
    // another process put there meanwhile wins and ours is discarded.
    if !paho_importable(&venv_python(&venv)) {
        let _ = std::fs::remove_dir_all(&venv);
        if std::fs::rename(&staging, &venv).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
    } else {
        let _ = std::fs::remove_dir_all(&staging);
    }
    let python = venv_python(&venv);
    assert!(
        paho_importable(&python),
        "paho-mqtt 2.x is not importable from {} after installing it",
        python.display()
    );
    python
}

// ---------------------------------------------------------------------------
// Helpers added for tests/resilience.rs.

impl Broker {
    /// Stops the broker cleanly (SIGTERM), as a service manager would: with
    /// `persistence true` mosquitto saves its sessions and queued messages
    /// first. `kill()` (SIGKILL) loses whatever was not autosaved.
    /// [`restart`](Broker::restart) starts it again afterwards.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(&pid)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    // It did not stop in time: do not leave it running.
                    self.kill();
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers added for the tests that run the examples (tests/examples_cli.rs,
// tests/patterns.rs, tests/request_response.rs, tests/shelly.rs).

/// How long building the examples may take before the test gives up.
const EXAMPLES_BUILD_LIMIT: Duration = Duration::from_secs(30 * 60);

/// An example's binary, freshly built: `target/<profile>/deps/NAME-HASH`
/// (this test) -> `target/<profile>/examples/NAME`.
///
/// `cargo test` builds the examples before running the tests, but
/// `cargo test --test NAME` does not, and the test would then run whatever
/// an earlier build left there. So the first call in each test process
/// runs `cargo build --examples --all-features` with the cargo, target
/// directory, target and profile this test was built with; when nothing
/// changed cargo only checks that and returns.
pub fn example(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let examples = match BUILT.get_or_init(build_examples) {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    };
    let path = examples.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} does not exist after building the examples",
        path.display()
    );
    path
}

/// Runs `cargo build --examples --all-features` for where this test binary
/// lives, and returns the examples' directory.
fn build_examples() -> Result<PathBuf, String> {
    use std::io::Read as _;
    let exe = std::env::current_exe().map_err(|e| format!("the test binary's path: {e}"))?;
    // target[/TRIPLE]/PROFILE/deps/NAME-HASH
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("the test binary does not live in target/<profile>/deps")?;
    let above = profile_dir
        .parent()
        .ok_or("the test binary does not live in a target directory")?;
    // Cargo marks the root of a target directory with CACHEDIR.TAG; one
    // level further up means a `--target TRIPLE` build.
    let (target_dir, triple) = if above.join("CACHEDIR.TAG").is_file() {
        (above, None)
    } else {
        let root = above
            .parent()
            .ok_or("no target directory above the triple")?;
        (root, above.file_name())
    };
    // `debug` is where the dev and test profiles build; any other
    // directory is named after its profile.
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--examples", "--all-features", "--profile"])
        .arg(&profile)
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(triple) = triple {
        command.arg("--target").arg(triple);
    }
    let what = format!("{command:?}");
    // What cargo set for this test process describes this crate, not the
    // build; passed on, it would differ from the outer cargo's environment,
    // and build scripts that watch such variables (ring's does) would make
    // both builds rebuild everything, each time. Cargo's configuration
    // variables (CARGO_HOME, CARGO_PROFILE_*, ...) stay.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let describes_the_crate = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_"]
            .iter()
            .any(|prefix| key.starts_with(prefix))
            || matches!(
                key,
                "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            );
        if describes_the_crate {
            command.env_remove(key);
        }
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    // Drained as it comes, so a chatty build cannot fill a pipe and stall.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + EXAMPLES_BUILD_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let output = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    match status {
        Some(status) if status.success() => Ok(profile_dir.join("examples")),
        Some(status) => Err(format!(
            "building the examples failed ({status}): {what}\n{output}"
        )),
        None => Err(format!(
            "building the examples took longer than {EXAMPLES_BUILD_LIMIT:?}: {what}\n{output}"
        )),
    }
}
