//! `sensor`: a temperature sensor, the most common MQTT client there is.
//!
//! ```text
//! cargo run --example sensor                                  # localhost:1883, room "kitchen"
//! cargo run --example sensor -- -h broker.local --room bedroom --interval 10
//! mosquitto_sub -t 'home/#' -v                                # what it publishes
//! ```
//!
//! Two habits make a sensor's data useful to whoever subscribes later:
//!
//! - **Retained readings.** Each reading goes to `home/<room>/temperature`
//!   with the retain flag, so the broker keeps the latest one and hands it
//!   to every new subscriber at once: a dashboard opened now shows the
//!   temperature now, not after the next reading.
//! - **A status with a last will.** `home/<room>/status` says `online`
//!   (retained) after connecting, and the will, which the broker publishes
//!   if the sensor vanishes without saying goodbye (power cut, crash,
//!   network gone), says `offline` (retained too). On a clean stop (Ctrl-C,
//!   or after `--count` readings) the sensor publishes `offline` itself,
//!   since a clean DISCONNECT does not trigger the will.
//!
//! Readings are QoS 1 and each one waits for the broker's PUBACK, so a
//! printed reading is one the broker has. `examples/automation.rs` reacts
//! to these readings.

use std::process::ExitCode;
use std::time::Duration;

use plover::{Client, ClientError, ProtocolVersion, QoS};

const USAGE: &str = "usage: sensor [-h host] [-p port] [-V 5|311] [--room NAME] [--temperature C]
              [--interval SECS] [--count N]

  -h              the broker's host (default localhost)
  -p              its port (default 1883)
  -V              MQTT version, 311 (default) or 5
  --room          the room, i.e. the topic level under home/ (default kitchen)
  --temperature   the first reading, °C (default 21.0); later ones drift from it
  --interval      seconds between readings (default 5)
  --count         stop after this many readings (default: run until Ctrl-C)";

struct Args {
    host: String,
    port: u16,
    version: ProtocolVersion,
    room: String,
    temperature: f64,
    interval: Duration,
    count: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "localhost".to_owned(),
        port: 1883,
        version: ProtocolVersion::V311,
        room: "kitchen".to_owned(),
        temperature: 21.0,
        interval: Duration::from_secs(5),
        count: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let bad = |v: &str| format!("invalid value {v:?} for {flag}");
        match flag.as_str() {
            "-h" | "--host" => args.host = value()?,
            "-p" | "--port" => {
                let v = value()?;
                args.port = v.parse().map_err(|_| bad(&v))?;
            }
            "-V" => {
                args.version = match value()?.as_str() {
                    "5" => ProtocolVersion::V5,
                    "311" => ProtocolVersion::V311,
                    v => return Err(bad(v)),
                }
            }
            "--room" => args.room = value()?,
            "--temperature" => {
                let v = value()?;
                args.temperature = v.parse().map_err(|_| bad(&v))?;
            }
            "--interval" => {
                let v = value()?;
                let secs: f64 = v.parse().map_err(|_| bad(&v))?;
                args.interval = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| bad(&v))?;
            }
            "--count" => {
                let v = value()?;
                args.count = Some(v.parse().map_err(|_| bad(&v))?);
            }
            "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if args.room.is_empty() || args.room.contains(['/', '+', '#']) {
        return Err(format!("{:?} cannot be a single topic level", args.room));
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), ClientError> {
    let status_topic = format!("home/{}/status", args.room);
    let temperature_topic = format!("home/{}/temperature", args.room);

    let client = Client::builder(format!("sensor-{}", args.room))
        .protocol(args.version)
        .build();
    // The will must be set before connecting: it travels in CONNECT.
    client.will_set(&status_topic, "offline", QoS::AtLeastOnce, true)?;
    client.connect(&args.host, args.port, 30).await?;
    client
        .publish(&status_topic, "online", QoS::AtLeastOnce, true)
        .await?
        .await?;
    println!("{status_topic} online (retained; the will says offline)");

    let mut ticker = tokio::time::interval(args.interval);
    let mut sent = 0u64;
    let stopped_by_user = loop {
        if args.count.is_some_and(|count| sent >= count) {
            break false;
        }
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => break true,
        }
        let reading = format!("{:.1}", simulated_temperature(args.temperature, sent));
        // publish() queues; awaiting the handle waits for the PUBACK.
        client
            .publish(&temperature_topic, reading.clone(), QoS::AtLeastOnce, true)
            .await?
            .await?;
        sent += 1;
        println!("{temperature_topic} {reading} (retained, acknowledged)");
    };
    if stopped_by_user {
        println!("stopping");
    }

    // A clean goodbye: say offline ourselves, then disconnect (which tells
    // the broker to discard the will).
    client
        .publish(&status_topic, "offline", QoS::AtLeastOnce, true)
        .await?
        .await?;
    client.disconnect().await?;
    println!("{status_topic} offline; disconnected after {sent} readings");
    Ok(())
}

/// A reading that drifts slowly around `start`, like a room's temperature.
fn simulated_temperature(start: f64, n: u64) -> f64 {
    let t = n as f64;
    start + 0.6 * (t * 0.4).sin() + 0.15 * (t * 1.7).cos() - 0.15
}
