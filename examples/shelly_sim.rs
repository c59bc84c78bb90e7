//! `shelly_sim`: a simulated Shelly Plug S Gen3 with a 60 W lamp plugged
//! in, speaking the device's MQTT topics and JSON, so that `shelly_plug`
//! can be tried (and is tested) without hardware.
//!
//! ```text
//! # terminal 1: a broker (mosquitto -p 1883 on this machine, say) and the plug
//! cargo run --example shelly_sim -- --host localhost --no-tls
//! # terminal 2: switch it, with the device id the simulator printed
//! cargo run --example shelly_plug -- on --device shellyplugsg3-... --host localhost --no-tls
//! ```
//!
//! It takes the same broker options as `shelly_plug` (HiveMQ Cloud works
//! too), announces itself on `<prefix>/online` with a last will, answers
//! RPC and command topics, and publishes status and `NotifyStatus` frames
//! on every change and every `--interval`. Ctrl-C (or SIGTERM) makes it
//! publish `online` = `false` and disconnect cleanly. The simulation
//! itself is in `examples/shelly/sim.rs`.

mod shelly;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use shelly::sim::{SimConfig, Simulator};
use shelly::{BROKER_USAGE, BrokerOptions, is_device_id, random_device_id, seconds};

const USAGE: &str = "\
usage: shelly_sim [options]

options:
  --device ID       the device id to use (default: a new random one,
                    shellyplugsg3-<12 hex digits>) [SHELLY_DEVICE]
  --prefix PREFIX   a custom MQTT topic prefix (default: the device id)
  --load WATTS      what the plugged-in load draws when on (default 60)
  --interval SECS   how often to publish fresh readings (default 2)
  --on              start switched on
  --help            this text";

/// The broker and what to simulate, or `Ok(None)` for `--help`.
fn parse_args() -> Result<Option<(BrokerOptions, SimConfig)>, String> {
    // An unusable environment variable is reported after the flags are
    // read, so that `--help` still works.
    let (mut broker, env_error) = match BrokerOptions::from_env() {
        Ok(broker) => (broker, None),
        Err(e) => (BrokerOptions::default(), Some(e)),
    };
    let mut device = std::env::var("SHELLY_DEVICE")
        .ok()
        .filter(|d| !d.is_empty());
    let mut prefix = None;
    let mut load = 60.0;
    let mut interval = None;
    let mut on = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        if broker.flag(&arg, &mut value)? {
            continue;
        }
        match arg.as_str() {
            "--device" | "-d" => device = Some(value()?),
            "--prefix" => prefix = Some(value()?),
            "--load" => {
                let v = value()?;
                load = v
                    .parse::<f64>()
                    .ok()
                    .filter(|w| w.is_finite() && (0.0..=3680.0).contains(w))
                    .ok_or_else(|| format!("--load takes 0 to 3680 watts, not {v:?}"))?;
            }
            "--interval" => {
                let every = seconds(&arg, &value()?)?;
                if every.is_zero() {
                    return Err("--interval must be more than 0".to_owned());
                }
                interval = Some(every);
            }
            "--on" => on = true,
            "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Some(e) = env_error {
        return Err(e);
    }
    broker.check()?;
    let device = device.unwrap_or_else(random_device_id);
    if !is_device_id(&device) {
        return Err(format!(
            "{device:?} is not a Plug S Gen3 device id (shellyplugsg3- and 12 lowercase hex digits)"
        ));
    }
    let mut config = SimConfig::new(&device);
    if let Some(prefix) = prefix {
        if prefix.is_empty() || prefix.contains(['+', '#']) {
            return Err(format!("{prefix:?} cannot be a topic prefix"));
        }
        config.prefix = prefix;
    }
    config.load_watts = load;
    config.initially_on = on;
    if let Some(every) = interval {
        config.report_every = every;
    }
    Ok(Some((broker, config)))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (broker, config) = match parse_args() {
        Ok(Some(parsed)) => parsed,
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
    let log = Arc::new(|line: &str| {
        println!("{line}");
        // Lines show up at once even when stdout is a pipe.
        let _ = std::io::stdout().flush();
    });
    let simulator = match Simulator::start(&broker, config.clone(), log).await {
        Ok(simulator) => simulator,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{} online at {} ({} W load, switched {}); RPC on {}/rpc; Ctrl-C stops",
        config.device_id,
        broker.describe(),
        config.load_watts,
        if config.initially_on { "on" } else { "off" },
        config.prefix
    );
    let _ = std::io::stdout().flush();
    shutdown_signal().await;
    simulator.stop().await;
    ExitCode::SUCCESS
}

/// Ctrl-C, or SIGTERM (what `kill` and service managers send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
