//! `showcase`: a Shelly Plug S Gen3 switched on and off over MQTT, on any
//! machine, with no hardware and no account anywhere.
//!
//! ```text
//! cargo run --example showcase
//! ```
//!
//! 1. It needs a broker: if mosquitto is installed it starts one on a free
//!    port of 127.0.0.1 with a throwaway configuration (anonymous, no
//!    persistence) and stops it at the end; otherwise (or with
//!    `PLOVER_SHOWCASE_EMBEDDED=1`) it runs the small broker in
//!    `examples/mini_broker/`, built on plover's own packet codec.
//! 2. It starts the simulated plug of `examples/shelly_sim.rs` in this
//!    process, with a 60 W lamp plugged in.
//! 3. It runs the commands of `examples/shelly_plug.rs` against it
//!    (status, on, off, toggle, off with a timer that switches it back on,
//!    and a short watch of the power readings that sees the timer fire),
//!    showing each MQTT message and what the plug confirmed, and the full
//!    command line to run the same against your own broker.
//! 4. Finally it shows how an offline plug (exit status 3) is told apart
//!    from one that does not answer at all (exit status 4), with what to
//!    check for each.
//!
//! The same two programs control a real plug through HiveMQ Cloud; see
//! README.md, "Controlling a Shelly plug through HiveMQ Cloud".

mod mini_broker;
mod shelly;

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mini_broker::MiniBroker;
use shelly::controller::{Controller, Error, Trace, WatchEvent};
use shelly::sim::{SimConfig, Simulator, abbreviate};
use shelly::{BrokerOptions, random_device_id};

/// Set to 1 to use the embedded broker even when mosquitto is installed.
const FORCE_EMBEDDED: &str = "PLOVER_SHOWCASE_EMBEDDED";

#[tokio::main]
async fn main() -> ExitCode {
    println!("plover showcase: switching a Shelly Plug S Gen3 over MQTT");
    println!(
        "(the plug is simulated and the broker runs on this machine: no hardware, no account)"
    );
    println!();
    let broker = match LocalBroker::start().await {
        Ok(broker) => broker,
        Err(e) => {
            eprintln!("error: no broker to run the showcase on: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = run(&broker).await;
    broker.stop();
    match result {
        Ok(()) => {
            println!();
            println!("The same two programs work with a real plug and HiveMQ Cloud:");
            println!("  cargo run --example shelly_plug -- --help");
            println!("and README.md, \"Controlling a Shelly plug through HiveMQ Cloud\".");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(broker: &LocalBroker) -> Result<(), String> {
    let options = BrokerOptions::plain("127.0.0.1", broker.port());
    println!("broker      {}", broker.describe());

    // The plug, in this process: the code behind `shelly_sim`. Its RPC
    // answers show up in the controller's trace, so only its other news
    // is printed.
    let device = random_device_id();
    let mut config = SimConfig::new(&device);
    // Fresh readings every 300 ms, so that the short watch below sees a few.
    config.report_every = Duration::from_millis(300);
    let plug_log: shelly::sim::Log = Arc::new(|line: &str| {
        if !line.starts_with("rpc ") {
            say("  plug:", line);
        }
    });
    let sim = Simulator::start(&options, config, plug_log).await?;
    println!("plug        {device}, simulated, with a 60 W lamp plugged in: connected");
    println!("            with the will {device}/online = false (retained), and announced true");

    // The controller: the code behind `shelly_plug`. Its trace shows what
    // it sends (->) and receives (<-), abbreviated; it is muted while
    // reading back the state and while watching, and those calls are
    // named instead, so that the request ids in the trace do not seem to
    // skip numbers.
    let quiet = Arc::new(AtomicBool::new(false));
    let trace: Trace = {
        let quiet = quiet.clone();
        Arc::new(move |line: &str| {
            if !quiet.load(Ordering::Relaxed) {
                say(" ", &abbreviate(line, 140));
            }
        })
    };
    let mut plug = Controller::connect(
        &options,
        &device,
        Duration::from_secs(5),
        Some(trace.clone()),
    )
    .await
    .map_err(|e| e.to_string())?;
    println!(
        "controller  {}: sends requests to {device}/rpc, reads answers on {}/rpc",
        plug.src(),
        plug.src()
    );
    let fail = |e: Error| e.to_string();

    step("status");
    // Once, in full: what each `$ shelly_plug ...` line stands for.
    println!(
        "  (in full: cargo run --example shelly_plug -- status --device {device} \
         --host 127.0.0.1 --port {} --no-tls;",
        broker.port()
    );
    println!(
        "   for your own broker, --host and --port, or --url mqtts://USER:PASS@HOST, \
         instead of those)"
    );
    let status = plug.switch_status().await.map_err(fail)?;
    println!("  {device} is {}", status.summary());

    step("on");
    let was_on = plug.set(true, None).await.map_err(fail)?;
    confirm(
        &mut plug,
        &quiet,
        &format!("switched ON (it was {})", on_off(was_on)),
    )
    .await?;

    step("off");
    let was_on = plug.set(false, None).await.map_err(fail)?;
    confirm(
        &mut plug,
        &quiet,
        &format!("switched OFF (it was {})", on_off(was_on)),
    )
    .await?;

    step("toggle");
    let was_on = plug.toggle().await.map_err(fail)?;
    confirm(
        &mut plug,
        &quiet,
        &format!("toggled from {}", on_off(was_on)),
    )
    .await?;

    // Off, with the plug's own timer to switch it back on: the watch
    // below then sees a change, not only fresh readings.
    const BACK_ON_AFTER: f64 = 1.0;
    step(&format!("off --toggle-after {BACK_ON_AFTER}"));
    let was_on = plug.set(false, Some(BACK_ON_AFTER)).await.map_err(fail)?;
    confirm(
        &mut plug,
        &quiet,
        &format!(
            "switched OFF (it was {}); it switches ON again in {BACK_ON_AFTER} s",
            on_off(was_on)
        ),
    )
    .await?;

    step("watch --for 2.5");
    println!(
        "  (readings from {device}/status/switch:0 and NotifyStatus frames on {device}/events/rpc;"
    );
    println!(
        "   the first is request id {}, Switch.GetStatus, not traced)",
        plug.next_request_id()
    );
    quiet.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let readings = plug
        .watch(
            Some(Duration::from_millis(2500)),
            None,
            |event| match event {
                WatchEvent::Reading(status) => say(
                    &format!("  [{:4.1}s]", started.elapsed().as_secs_f64()),
                    &status.summary(),
                ),
                WatchEvent::Online(online) => say("  online:", &online.to_string()),
            },
        )
        .await
        .map_err(fail)?;
    quiet.store(false, Ordering::Relaxed);
    println!("  {readings} readings");

    println!();
    println!(
        "The plug shuts down (Ctrl-C in shelly_sim): it publishes online = false and disconnects."
    );
    sim.stop().await;
    step("status");
    match plug.switch_status().await {
        Err(e @ Error::Offline { .. }) => {
            println!("  error: {e}");
            println!(
                "  (shelly_plug exits with status {} for this)",
                e.exit_code()
            );
        }
        Err(e) => {
            return Err(format!(
                "expected the plug to be reported offline, got: {e}"
            ));
        }
        Ok(status) => {
            return Err(format!(
                "expected the plug to be reported offline, but it answered: {}",
                status.summary()
            ));
        }
    }
    plug.close().await;

    println!();
    println!("A plug that never answers (a wrong device id, or MQTT or \"RPC over MQTT\" off) is");
    println!("another matter: nothing is retained on its online topic, so only a timeout tells.");
    let nobody = random_device_id();
    step(&format!("status --device {nobody} --timeout 1"));
    let mut silent = Controller::connect(&options, &nobody, Duration::from_secs(1), Some(trace))
        .await
        .map_err(|e| e.to_string())?;
    let outcome = silent.switch_status().await;
    silent.close().await;
    match outcome {
        Err(e @ Error::NoAnswer { .. }) => {
            println!("  error: {e}");
            println!(
                "  (shelly_plug exits with status {} for this)",
                e.exit_code()
            );
        }
        Err(e) => return Err(format!("expected no answer, got: {e}")),
        Ok(status) => {
            return Err(format!(
                "expected no answer, but something answered: {}",
                status.summary()
            ));
        }
    }
    Ok(())
}

fn step(command: &str) {
    println!();
    println!("$ shelly_plug {command}");
}

/// Prints what the plug answered, then reads its state back
/// (`Switch.GetStatus`, not traced, but named with its request id) and
/// prints that.
async fn confirm(plug: &mut Controller, quiet: &AtomicBool, what: &str) -> Result<(), String> {
    println!("  {what}");
    let id = plug.next_request_id();
    quiet.store(true, Ordering::Relaxed);
    let status = plug.switch_status().await;
    quiet.store(false, Ordering::Relaxed);
    let status = status.map_err(|e| e.to_string())?;
    println!(
        "  the plug confirms (request id {id}, Switch.GetStatus, not traced): {}",
        status.summary()
    );
    Ok(())
}

fn on_off(on: bool) -> &'static str {
    if on { "ON" } else { "OFF" }
}

/// Prints a line at once, even when stdout is a pipe.
fn say(prefix: &str, line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{prefix} {line}");
    let _ = out.flush();
}

// ---------------------------------------------------------------------------
// The broker: mosquitto if there is one, else the embedded one.

enum LocalBroker {
    Mosquitto {
        child: Child,
        port: u16,
        program: PathBuf,
        version: String,
        dir: PathBuf,
    },
    Embedded {
        broker: MiniBroker,
        why: String,
    },
}

impl LocalBroker {
    async fn start() -> Result<LocalBroker, String> {
        let why = if std::env::var(FORCE_EMBEDDED).is_ok_and(|v| v == "1") {
            format!("{FORCE_EMBEDDED}=1")
        } else {
            match find_mosquitto() {
                Some(program) => match start_mosquitto(&program) {
                    Ok(broker) => return Ok(broker),
                    Err(e) => format!("{} did not start: {e}", program.display()),
                },
                None => "mosquitto is not installed".to_owned(),
            }
        };
        let broker = MiniBroker::start()
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
        Ok(LocalBroker::Embedded { broker, why })
    }

    fn port(&self) -> u16 {
        match self {
            LocalBroker::Mosquitto { port, .. } => *port,
            LocalBroker::Embedded { broker, .. } => broker.port(),
        }
    }

    fn describe(&self) -> String {
        match self {
            LocalBroker::Mosquitto {
                port,
                program,
                version,
                ..
            } => format!(
                "{version} ({}), started on 127.0.0.1:{port} for this run",
                program.display()
            ),
            LocalBroker::Embedded { broker, why } => format!(
                "plover's embedded demo broker (examples/mini_broker) on 127.0.0.1:{} ({why}; \
                 install mosquitto for a real one)",
                broker.port()
            ),
        }
    }

    fn stop(self) {
        match self {
            LocalBroker::Mosquitto { mut child, dir, .. } => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(dir);
            }
            LocalBroker::Embedded { broker, .. } => broker.stop(),
        }
    }
}

/// mosquitto on the PATH, or where packages put it (Debian and Ubuntu
/// install it in /usr/sbin, which is not on every user's PATH; Homebrew
/// in its own prefix).
fn find_mosquitto() -> Option<PathBuf> {
    let name = format!("mosquitto{}", std::env::consts::EXE_SUFFIX);
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(&name))
                .collect()
        })
        .unwrap_or_default();
    let usual = [
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
        "/opt/homebrew/sbin/mosquitto",
        "/usr/local/opt/mosquitto/sbin/mosquitto",
        r"C:\Program Files\mosquitto\mosquitto.exe",
    ]
    .map(PathBuf::from);
    on_path.into_iter().chain(usual).find(|p| p.is_file())
}

fn start_mosquitto(program: &Path) -> Result<LocalBroker, String> {
    let version = Command::new(program)
        .arg("-h")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(|l| l.trim().replace(" version ", " "))
        })
        .filter(|v| v.starts_with("mosquitto"))
        .unwrap_or_else(|| "mosquitto".to_owned());
    let dir = std::env::temp_dir().join(format!("plover-showcase-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut last_error = String::new();
    // The port is free when chosen but could be taken before mosquitto
    // binds it; a few tries settle that.
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "# written by plover's showcase, removed when it ends\n\
                 listener {port} 127.0.0.1\n\
                 allow_anonymous true\n\
                 persistence false\n\
                 log_dest stderr\n"
            ),
        )
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let log_path = dir.join("mosquitto.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let mut child = Command::new(program)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                last_error = format!("it exited ({status}): {}", log.trim());
                break;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(LocalBroker::Mosquitto {
                    child,
                    port,
                    program: program.to_owned(),
                    version,
                    dir,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                last_error = "it did not listen within 5 s".to_owned();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Err(last_error)
}
