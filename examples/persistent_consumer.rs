//! `persistent_consumer`: a consumer that gets what was published while it
//! was away, because the broker keeps its session.
//!
//! ```text
//! cargo run --example persistent_consumer -- --idle 1     # 1. subscribe, then stop
//! mosquitto_pub -t jobs/1 -m 'resize photo.jpg' -q 1      # 2. publish while it is away
//! cargo run --example persistent_consumer                 # 3. it gets jobs/1 at once
//! ```
//!
//! Three things make the broker hold messages for a client that is not
//! connected:
//!
//! - a **fixed client id** (`--id`): the session belongs to it;
//! - a **persistent session**: Clean Start 0 (3.1.1 "clean session" false),
//!   and with MQTT 5.0 a Session Expiry Interval saying how long the broker
//!   keeps it after a disconnect (here one hour; 3.1.1 keeps it until the
//!   broker's own limit);
//! - **QoS 1 (or 2)**, on both the subscription and the publish: QoS 0
//!   messages are not queued for absent clients.
//!
//! The CONNACK's "session present" flag says whether the broker still had
//! the session. When it did, the subscription is still there and the
//! queued messages follow right after the CONNACK; subscribing again is
//! only needed when it did not (the first run, or after expiry).
//! Messages are buffered by the client from the moment it is created, so
//! none of the queued ones is missed.

use std::process::ExitCode;
use std::time::Duration;

use plover::{Client, ClientError, ProtocolVersion, QoS};

const USAGE: &str =
    "usage: persistent_consumer [-h host] [-p port] [-V 5|311] [--id ID] [--topic FILTER]
                           [--count N] [--idle SECS]

  -h        the broker's host (default localhost)
  -p        its port (default 1883)
  -V        MQTT version, 5 (default) or 311
  --id      the client id the broker keeps the session for (default persistent-consumer)
  --topic   the filter to consume (default jobs/#)
  --count   stop after this many messages
  --idle    stop when no message came for this many seconds
            (default for both: run until Ctrl-C)";

struct Args {
    host: String,
    port: u16,
    version: ProtocolVersion,
    id: String,
    topic: String,
    count: Option<u64>,
    idle: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "localhost".to_owned(),
        port: 1883,
        version: ProtocolVersion::V5,
        id: "persistent-consumer".to_owned(),
        topic: "jobs/#".to_owned(),
        count: None,
        idle: None,
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
            "--id" => args.id = value()?,
            "--topic" => args.topic = value()?,
            "--count" => {
                let v = value()?;
                args.count = Some(v.parse().map_err(|_| bad(&v))?);
            }
            "--idle" => {
                let v = value()?;
                let secs: f64 = v.parse().map_err(|_| bad(&v))?;
                args.idle = Some(Duration::try_from_secs_f64(secs).map_err(|_| bad(&v))?);
            }
            "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if args.id.is_empty() {
        return Err("a persistent session needs a client id".to_owned());
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
    let mut builder = Client::builder(args.id.as_str())
        .protocol(args.version)
        .clean_start(false);
    if args.version == ProtocolVersion::V5 {
        // 5.0 ends a session with the connection unless told otherwise.
        builder = builder.session_expiry(3600);
    }
    let client = builder.build();
    // Taken before connecting: the queued messages may arrive right
    // behind the CONNACK.
    let mut messages = client.messages();
    let connack = client.connect(&args.host, args.port, 30).await?;

    if connack.session_present {
        println!(
            "session present: the broker kept our session for {:?}; \
             what was published while we were away comes first",
            args.id
        );
    } else {
        let granted = client.subscribe(&args.topic, QoS::AtLeastOnce).await?;
        println!(
            "new session for {:?}: subscribed to {} at QoS {granted}; from now on the broker \
             queues QoS 1 messages for us while we are away",
            args.id, args.topic
        );
    }

    let mut received = 0u64;
    loop {
        if args.count.is_some_and(|count| received >= count) {
            break;
        }
        let next = async {
            match args.idle {
                Some(idle) => tokio::time::timeout(idle, messages.recv()).await.ok(),
                None => Some(messages.recv().await),
            }
        };
        let message = tokio::select! {
            m = next => m,
            _ = tokio::signal::ctrl_c() => None,
        };
        // Idle too long, Ctrl-C, or the client is gone.
        let Some(Some(message)) = message else { break };
        received += 1;
        println!(
            "{} {} (QoS {}{})",
            message.topic,
            String::from_utf8_lossy(&message.payload),
            message.qos,
            if message.dup { ", redelivered" } else { "" }
        );
    }

    // A clean disconnect ends the connection, not the session: the broker
    // keeps queueing for us until we come back (or the expiry passes).
    client.disconnect().await?;
    println!("received {received} messages; disconnected, the session stays");
    Ok(())
}
