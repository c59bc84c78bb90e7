//! `automation`: a small home-automation engine. It subscribes with
//! wildcards to every room's temperature and sensor status, and publishes
//! commands in reaction: a thermostat for each room's heater.
//!
//! ```text
//! cargo run --example automation                    # localhost:1883
//! cargo run --example sensor -- --temperature 18    # in another terminal
//! mosquitto_pub -t home/office/temperature -m 23.5  # or by hand
//! mosquitto_sub -t 'home/+/heater/set' -v           # the commands
//! ```
//!
//! - `home/+/temperature`: `+` matches one topic level, so one
//!   subscription covers every room, present and future; the room is read
//!   back from the topic. Below `--low` (19 °C) the room's heater gets `on`
//!   on `home/<room>/heater/set`, above `--high` (21 °C) it gets `off`, and
//!   in between nothing changes (hysteresis, so that a reading wobbling
//!   around one threshold does not flip the heater every time). A command
//!   is only sent when it changes what the room's heater was told.
//! - `home/+/status`: a sensor's status, whose last will is `offline`
//!   (see `examples/sensor.rs`). A room whose sensor went offline gets its
//!   heater switched off: no heating on stale readings.
//!
//! Both filters share one stream (`Client::subscribe_many_stream`), which
//! keeps the order the broker sent them in. Retained messages (the last reading of each
//! room) arrive right after subscribing, so the engine starts from the
//! current state. Commands are QoS 1 and not retained: a command is an
//! event, not a state to replay to whoever subscribes later.

use std::collections::HashMap;
use std::process::ExitCode;

use plover::codec::{SubscribeProperties, SubscriptionOptions};
use plover::{Client, ClientError, Message, ProtocolVersion, QoS};

const USAGE: &str =
    "usage: automation [-h host] [-p port] [-V 5|311] [--low C] [--high C] [--count N]

  -h        the broker's host (default localhost)
  -p        its port (default 1883)
  -V        MQTT version, 5 (default) or 311
  --low     switch a room's heater on below this, °C (default 19)
  --high    switch it off above this, °C (default 21)
  --count   stop after handling this many messages (default: run until Ctrl-C)";

struct Args {
    host: String,
    port: u16,
    version: ProtocolVersion,
    low: f64,
    high: f64,
    count: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "localhost".to_owned(),
        port: 1883,
        version: ProtocolVersion::V5,
        low: 19.0,
        high: 21.0,
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
            "--low" => {
                let v = value()?;
                args.low = v.parse().map_err(|_| bad(&v))?;
            }
            "--high" => {
                let v = value()?;
                args.high = v.parse().map_err(|_| bad(&v))?;
            }
            "--count" => {
                let v = value()?;
                args.count = Some(v.parse().map_err(|_| bad(&v))?);
            }
            "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if args.low >= args.high {
        return Err("--low must be below --high".to_owned());
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

/// The room in `home/<room>/...`.
fn room(message: &Message) -> Option<String> {
    message.topic.split('/').nth(1).map(str::to_owned)
}

async fn run(args: Args) -> Result<(), ClientError> {
    let client = Client::builder(format!("automation-{}", std::process::id()))
        .protocol(args.version)
        .build();
    client.connect(&args.host, args.port, 30).await?;
    // Both filters in one SUBSCRIBE and one stream: messages then come in
    // the order the broker sent them, so a sensor's last reading and its
    // `offline` right after are handled in that order.
    let options = SubscriptionOptions::new(QoS::AtLeastOnce);
    let (suback, mut messages) = client
        .subscribe_many_stream(
            &[("home/+/temperature", options), ("home/+/status", options)],
            SubscribeProperties::default(),
        )
        .await?;
    if let Some(refused) = suback.reason_codes.iter().find(|code| code.is_error()) {
        return Err(ClientError::SubscribeRejected {
            reason: *refused,
            reason_string: suback.properties.reason_string.clone(),
        });
    }
    println!(
        "subscribed to home/+/temperature and home/+/status; heaters on below {} °C, off above {} °C",
        args.low, args.high
    );

    // What each room's heater was last told.
    let mut heaters: HashMap<String, bool> = HashMap::new();
    let mut handled = 0u64;
    while args.count.is_none_or(|count| handled < count) {
        let message = tokio::select! {
            message = messages.recv() => match message {
                Some(message) => message,
                None => break, // the client is gone
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        handled += 1;
        let Some(room) = room(&message) else { continue };
        let is_reading = message.topic.ends_with("/temperature");
        let text = message.payload_str().unwrap_or("").trim();
        let retained = if message.retain { " (retained)" } else { "" };
        let wanted = if is_reading {
            let Ok(celsius) = text.parse::<f64>() else {
                println!("{room}: ignoring reading {text:?}{retained}");
                continue;
            };
            println!("{room}: {celsius:.1} °C{retained}");
            if celsius < args.low {
                Some(true)
            } else if celsius > args.high {
                Some(false)
            } else {
                None
            }
        } else {
            println!("{room}: sensor {text}{retained}");
            // Offline (the sensor's will, or its goodbye): stop heating on
            // readings that are no longer fresh.
            (text == "offline").then_some(false)
        };
        if let Some(on) = wanted
            && heaters.get(&room) != Some(&on)
        {
            let topic = format!("home/{room}/heater/set");
            let command = if on { "on" } else { "off" };
            client
                .publish(&topic, command, QoS::AtLeastOnce, false)
                .await?
                .await?;
            heaters.insert(room, on);
            println!("  -> {topic} {command}");
        }
    }
    client.disconnect().await?;
    println!("handled {handled} messages");
    Ok(())
}
