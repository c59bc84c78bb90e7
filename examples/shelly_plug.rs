//! `shelly_plug`: switch a Shelly Plug S Gen3 on and off over MQTT, read
//! its power draw, and watch it, through any broker the plug is connected
//! to: HiveMQ Cloud, or mosquitto on your own network.
//!
//! ```text
//! export SHELLY_MQTT_HOST=xxxxxxxx.s1.eu.hivemq.cloud   # TLS on port 8883
//! export SHELLY_MQTT_USERNAME=plug-owner SHELLY_MQTT_PASSWORD=...
//! cargo run --example shelly_plug -- status --device shellyplugsg3-8cbfea9a1234
//! cargo run --example shelly_plug -- on     --device shellyplugsg3-8cbfea9a1234
//! cargo run --example shelly_plug -- watch  --device shellyplugsg3-8cbfea9a1234
//! # a local broker without TLS, and no plug at all: see examples/shelly_sim.rs
//! cargo run --example shelly_plug -- toggle --device shellyplugsg3-000000000001 --host localhost --no-tls
//! ```
//!
//! The plug needs MQTT enabled (Settings → MQTT in its web page or the
//! Shelly app) with the broker's address (`host:8883` and "Use SSL/TLS"
//! for HiveMQ Cloud), user name and password, and "RPC over MQTT" on;
//! "RPC status notifications over MQTT" or "Generic status update over
//! MQTT" make `watch` show changes as they happen.
//!
//! Switching uses Shelly's JSON-RPC over MQTT (`Switch.Set`, answered on
//! our own `<src>/rpc` topic) rather than the fire-and-forget
//! `command/switch:0` topic, so that what is printed is what the plug
//! confirmed. See `examples/shelly/controller.rs` for the MQTT side.

mod shelly;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shelly::controller::{Controller, Error, Trace, WatchEvent};
use shelly::{BROKER_USAGE, BrokerOptions, seconds};

const USAGE: &str = "\
usage: shelly_plug COMMAND --device ID [options]

commands:
  on                  switch on
  off                 switch off
  toggle              switch over
  status              the state, power draw and energy counter
  watch               power readings as the plug reports them, until Ctrl-C
  rpc METHOD [PARAMS] call any RPC method, e.g. rpc Shelly.GetDeviceInfo,
                      with PARAMS as JSON, e.g. '{\"id\":0}'

options:
  --device ID         the plug's device id (shellyplugsg3-xxxxxxxxxxxx) or the
                      custom MQTT topic prefix set on it [SHELLY_DEVICE]
  --timeout SECS      how long to wait for the plug's answer (default 10)
  --toggle-after SECS on/off: switch back after this long
  --for SECS          watch: stop after this long
  --count N           watch: stop after N readings
  -v, --verbose       show every MQTT message sent and received
  --help              this text

exit status: 0 done, 1 broker or other error, 2 bad arguments, 3 plug
offline, 4 no answer from the plug, 5 the plug refused the request";

enum Command {
    On,
    Off,
    Toggle,
    Status,
    Watch,
    Rpc {
        method: String,
        params: Option<String>,
    },
}

struct Args {
    command: Command,
    device: String,
    broker: BrokerOptions,
    timeout: Duration,
    toggle_after: Option<f64>,
    watch_for: Option<Duration>,
    watch_count: Option<usize>,
    verbose: bool,
}

/// The arguments, or `Ok(None)` for `--help`.
fn parse_args() -> Result<Option<Args>, String> {
    // An unusable environment variable is reported after the flags are
    // read, so that `--help` still works.
    let (mut broker, env_error) = match BrokerOptions::from_env() {
        Ok(broker) => (broker, None),
        Err(e) => (BrokerOptions::default(), Some(e)),
    };
    let mut device = std::env::var("SHELLY_DEVICE")
        .ok()
        .filter(|d| !d.is_empty());
    let mut words = Vec::new();
    let mut timeout = Duration::from_secs(10);
    let mut toggle_after = None;
    let mut watch_for = None;
    let mut watch_count = None;
    let mut verbose = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        if broker.flag(&arg, &mut value)? {
            continue;
        }
        match arg.as_str() {
            "--device" | "-d" => device = Some(value()?),
            "--timeout" => timeout = seconds(&arg, &value()?)?,
            "--toggle-after" => {
                let v = value()?;
                toggle_after = Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                        .ok_or_else(|| format!("--toggle-after takes seconds, not {v:?}"))?,
                );
            }
            "--for" => watch_for = Some(seconds(&arg, &value()?)?),
            "--count" => {
                let v = value()?;
                watch_count = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("--count takes a number, not {v:?}"))?,
                );
            }
            "-v" | "--verbose" => verbose = true,
            "--help" => return Ok(None),
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown option {flag:?}"));
            }
            word => words.push(word.to_owned()),
        }
    }
    if let Some(e) = env_error {
        return Err(e);
    }
    broker.check()?;
    let mut words = words.into_iter();
    let command = match words.next().as_deref() {
        Some("on") => Command::On,
        Some("off") => Command::Off,
        Some("toggle") => Command::Toggle,
        Some("status") => Command::Status,
        Some("watch") => Command::Watch,
        Some("rpc") => Command::Rpc {
            method: words.next().ok_or("rpc needs a method name")?,
            params: words.next(),
        },
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("which command? on, off, toggle, status, watch or rpc".to_owned()),
    };
    if let Some(extra) = words.next() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    let device = device.ok_or("which plug? give --device (or SHELLY_DEVICE)")?;
    if device.is_empty() || device.contains(['+', '#']) {
        return Err(format!("{device:?} cannot be a topic prefix"));
    }
    if toggle_after.is_some() && !matches!(command, Command::On | Command::Off) {
        return Err("--toggle-after goes with on or off".to_owned());
    }
    Ok(Some(Args {
        command,
        device,
        broker,
        timeout,
        toggle_after,
        watch_for,
        watch_count,
        verbose,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}\n\n{BROKER_USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("{USAGE}\n\n{BROKER_USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let trace: Option<Trace> = args.verbose.then(|| {
        Arc::new(|line: &str| {
            println!("  {line}");
        }) as Trace
    });
    let mut plug = Controller::connect(&args.broker, &args.device, args.timeout, trace).await?;
    let device = args.device.as_str();
    let result = match args.command {
        Command::On | Command::Off => {
            let on = matches!(args.command, Command::On);
            let was_on = plug.set(on, args.toggle_after).await?;
            println!(
                "{device}: switched {} (it was {})",
                on_off(on),
                on_off(was_on)
            );
            if let Some(secs) = args.toggle_after {
                println!("it switches {} again in {secs} s", on_off(!on));
            }
            confirm(&mut plug, on).await
        }
        Command::Toggle => {
            let was_on = plug.toggle().await?;
            println!("{device}: toggled from {}", on_off(was_on));
            confirm(&mut plug, !was_on).await
        }
        Command::Status => {
            let status = plug.switch_status().await?;
            println!("{device} is {}", status.summary());
            let details = status.details();
            if !details.is_empty() {
                println!("{details}");
            }
            Ok(())
        }
        Command::Watch => watch(&mut plug, device, &args).await,
        Command::Rpc {
            ref method,
            ref params,
        } => {
            let result = plug.call(method, params.as_deref()).await?;
            println!("{result}");
            Ok(())
        }
    };
    plug.close().await;
    result
}

fn on_off(on: bool) -> &'static str {
    if on { "ON" } else { "OFF" }
}

/// Reads the state back and prints what the plug says now.
async fn confirm(plug: &mut Controller, expected: bool) -> Result<(), Error> {
    let status = plug.settled_status().await?;
    println!("now {}", status.summary());
    if status.output != expected {
        println!(
            "note: the plug reports {} although it accepted the command \
             (an auto-off timer or a power limit may have switched it back)",
            on_off(status.output)
        );
    }
    Ok(())
}

async fn watch(plug: &mut Controller, device: &str, args: &Args) -> Result<(), Error> {
    println!(
        "watching {device} ({} and {}); Ctrl-C stops",
        plug.topics().switch_status(),
        plug.topics().events()
    );
    let started = Instant::now();
    let print = |event: &WatchEvent| {
        let at = started.elapsed().as_secs_f64();
        match event {
            WatchEvent::Reading(status) => println!("[{at:6.1}s] {}", status.summary()),
            WatchEvent::Online(true) => println!("[{at:6.1}s] the plug is online again"),
            WatchEvent::Online(false) => {
                println!("[{at:6.1}s] the plug went offline (its last will)")
            }
        }
        // Shown at once even when stdout is a pipe.
        let _ = std::io::stdout().flush();
    };
    tokio::select! {
        result = plug.watch(args.watch_for, args.watch_count, print) => {
            let readings = result?;
            println!("{readings} reading{}", if readings == 1 { "" } else { "s" });
        }
        _ = tokio::signal::ctrl_c() => println!("stopped"),
    }
    Ok(())
}
