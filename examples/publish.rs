//! `publish`: a look-alike of mosquitto 2.0's `mosquitto_pub`, built on
//! plover. Same flags, same output, same exit codes; `--help` lists them and
//! the few differences (any keepalive is accepted, `-d` writes to stderr).
//!
//! ```text
//! cargo run --example publish -- -t a -m hello
//! cargo run --example publish -- -t sensors/temp -q 1 -r -m 21.5
//! printf 'one\ntwo\n' | cargo run --example publish -- -t lines -l -q 2
//! cargo run --example publish -- -V 5 -t a -m hi -D publish user-property unit celsius
//! cargo run --example publish -- -h broker.example --cafile ca.pem -t a -m over-tls
//! cargo run --example publish -- -L mqtts://user:pass@broker.example/sensors/temp -m 21.5
//! ```
//!
//! It exits 0 only once every message it read has been handed to the
//! broker and, at QoS 1 and 2, acknowledged (PUBACK, PUBCOMP), across
//! reconnects: like mosquitto_pub it reconnects when the connection drops
//! (`-d` shows it), and messages read meanwhile wait for the next
//! connection, unacknowledged ones are sent again. It exits 7
//! (libmosquitto's "connection lost") only if the client stops
//! reconnecting, e.g. when the broker refuses it on a reconnect.

mod cli;

use std::io::{BufRead, Read};
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use cli::{Config, Link, Source, Tool, Trace, exit};
use plover::{Client, ClientError, CloseReason, PublishHandle, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// The most a PUBLISH payload can be, as mosquitto_pub words its limit.
const MAX_PAYLOAD: usize = 268_435_455;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match cli::parse_or_exit(Tool::Publish) {
        Ok(config) => Arc::new(config),
        Err(code) => return code,
    };
    // Read the message before connecting, as mosquitto_pub does: a missing
    // file is reported without touching the network.
    let payload = match load(&config) {
        Ok(payload) => payload,
        Err(code) => return code,
    };
    let mut trace = Trace::new(&config);
    let (client, link) = match cli::connect(&config, &mut trace).await {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    let mut outbox = Outbox {
        link,
        client,
        config,
        trace,
        mid: 0,
    };
    let result = match payload {
        Some(payload) => outbox.repeat(payload).await,
        None => outbox.lines().await,
    };
    match result {
        Ok(()) => {
            cli::disconnect(&outbox.client, &outbox.config, &outbox.trace, false).await;
            ExitCode::from(exit::OK)
        }
        Err(code) => code,
    }
}

/// The message for `-m`, `-f`, `-s` and `-n`; `None` for `-l`, whose
/// messages are read one by one once connected.
fn load(config: &Config) -> Result<Option<Bytes>, ExitCode> {
    let failed = || Err(ExitCode::from(exit::ERROR));
    match &config.source {
        Some(Source::Message(m)) => Ok(Some(m.clone())),
        Some(Source::Null) | None => Ok(Some(Bytes::new())),
        Some(Source::StdinLines) => Ok(None),
        Some(Source::StdinWhole) => {
            let mut all = Vec::new();
            if std::io::stdin().lock().read_to_end(&mut all).is_err() {
                config.error("Error loading input from stdin.");
                return failed();
            }
            Ok(Some(all.into()))
        }
        Some(Source::File(path)) => match std::fs::read(path) {
            Ok(data) if data.len() > MAX_PAYLOAD => {
                config.error(format_args!(
                    "Error: File must be less than {MAX_PAYLOAD} bytes.\n"
                ));
                config.error(format_args!(
                    "Error loading input file \"{}\".",
                    path.display()
                ));
                failed()
            }
            Ok(data) => Ok(Some(data.into())),
            Err(_) => {
                config.error(format_args!(
                    "Error: Unable to open file \"{}\".",
                    path.display()
                ));
                config.error(format_args!(
                    "Error loading input file \"{}\".",
                    path.display()
                ));
                failed()
            }
        },
    }
}

/// What became of one message.
enum Delivery {
    /// Sent (QoS 0) or acknowledged (QoS 1, 2).
    Done,
    /// The broker answered with a failure code (5.0). mosquitto_pub warns
    /// and still exits 0: the broker did answer.
    Refused,
    /// The connection ended first; the message may not have arrived.
    Lost(CloseReason),
}

/// Sends messages and keeps count, as mosquitto numbers them (its "mid").
struct Outbox {
    client: Client,
    config: Arc<Config>,
    trace: Trace,
    /// Whether the client is still reconnecting or has stopped for good.
    link: Link,
    mid: u32,
}

impl Outbox {
    /// `-m`, `-f`, `-s`, `-n`: the message `--repeat` times, each one sent
    /// once the previous was delivered and `--repeat-delay` has passed, as
    /// mosquitto_pub does.
    async fn repeat(&mut self, payload: Bytes) -> Result<(), ExitCode> {
        for n in 1..=self.config.repeat {
            let handle = self.send(payload.clone()).await?;
            let delivery = settle(handle, self.config.clone(), self.trace.clone(), self.mid).await;
            if let Delivery::Lost(reason) = delivery {
                return Err(cli::lost(&self.config, &self.trace, &reason));
            }
            if n < self.config.repeat && !self.config.repeat_delay.is_zero() {
                tokio::time::sleep(self.config.repeat_delay).await;
            }
        }
        Ok(())
    }

    /// `-l`: a message per line of stdin, without its newline, sent as soon
    /// as it is read (acknowledgements are awaited alongside, not one by
    /// one), until end of file; then every acknowledgement is awaited.
    async fn lines(&mut self) -> Result<(), ExitCode> {
        let mut lines = read_lines();
        let mut pending = JoinSet::new();
        loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(Ok(payload)) => {
                        let handle = self.send(payload).await?;
                        pending.spawn(settle(
                            handle,
                            self.config.clone(),
                            self.trace.clone(),
                            self.mid,
                        ));
                    }
                    Some(Err(_)) => {
                        self.config.error("Error loading input from stdin.");
                        return Err(ExitCode::from(exit::ERROR));
                    }
                    None => break,
                },
                // Settle acknowledgements as they come, so that a lost
                // connection is noticed at once and the set stays small.
                Some(done) = pending.join_next(), if !pending.is_empty() => {
                    if let Ok(Delivery::Lost(reason)) = done {
                        return Err(cli::lost(&self.config, &self.trace, &reason));
                    }
                }
                // stdin may stay quiet for long; meanwhile the connection
                // may drop (the client reconnects: nothing to do) or the
                // client may stop for good.
                reason = self.link.stopped(&self.trace) => {
                    return Err(cli::lost(&self.config, &self.trace, &reason));
                }
            }
        }
        while let Some(done) = pending.join_next().await {
            if let Ok(Delivery::Lost(reason)) = done {
                return Err(cli::lost(&self.config, &self.trace, &reason));
            }
        }
        Ok(())
    }

    /// Queues one message; the handle resolves when the broker has it.
    async fn send(&mut self, payload: Bytes) -> Result<PublishHandle, ExitCode> {
        let config = &self.config;
        self.mid += 1;
        self.trace.client(format_args!(
            "sending PUBLISH (d0, q{}, r{}, m{}, '{}', ... ({} bytes))",
            config.qos as u8,
            u8::from(config.retain),
            self.mid,
            config.topics[0],
            payload.len()
        ));
        let sent = self
            .client
            .publish_with_properties(
                &config.topics[0],
                payload,
                config.qos,
                config.retain,
                config.props.publish.clone(),
            )
            .await;
        match sent {
            Ok(handle) => Ok(handle),
            Err(ClientError::NotConnected | ClientError::ConnectionClosed(_)) => {
                // The client stopped for good (while offline it takes
                // publishes); its events say why, if they do.
                let reason = tokio::time::timeout(
                    std::time::Duration::from_millis(200),
                    self.link.stopped(&self.trace),
                )
                .await
                .unwrap_or(CloseReason::ConnectionLost);
                Err(cli::lost(config, &self.trace, &reason))
            }
            Err(ClientError::PacketTooLarge { .. }) => {
                config.error("Error: Message payload is too large.");
                Err(ExitCode::from(exit::ERROR))
            }
            Err(other) => {
                config.error(format_args!("Error: {other}"));
                Err(ExitCode::from(exit::ERROR))
            }
        }
    }
}

/// Waits for one message's fate and traces the acknowledgements.
async fn settle(handle: PublishHandle, config: Arc<Config>, trace: Trace, mid: u32) -> Delivery {
    match handle.await {
        Ok(outcome) => {
            let id = outcome.packet_id.map_or(mid, |id| u32::from(id.get()));
            match config.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => trace.client(format_args!(
                    "received PUBACK (Mid: {id}, RC:{})",
                    outcome.reason_code.as_u8()
                )),
                QoS::ExactlyOnce => {
                    trace.client(format_args!("received PUBREC (Mid: {id})"));
                    trace.client(format_args!("sending PUBREL (m{id})"));
                    trace.client(format_args!(
                        "received PUBCOMP (Mid: {id}, RC:{})",
                        outcome.complete_reason.map_or(0, |r| r.as_u8())
                    ));
                }
            }
            Delivery::Done
        }
        Err(ClientError::PublishRejected {
            reason,
            reason_string,
        }) => {
            let packet = match config.qos {
                QoS::ExactlyOnce => "PUBREC",
                _ => "PUBACK",
            };
            trace.client(format_args!(
                "received {packet} (Mid: {mid}, RC:{})",
                reason.as_u8()
            ));
            config.error(format_args!(
                "Warning: Publish {mid} failed: {}.",
                reason.description()
            ));
            if let Some(why) = reason_string {
                config.error(why);
            }
            Delivery::Refused
        }
        Err(ClientError::ConnectionClosed(reason)) => Delivery::Lost(reason),
        Err(_) => Delivery::Lost(CloseReason::ConnectionLost),
    }
}

/// Reads stdin line by line on a thread of its own. tokio's stdin reads on
/// a blocking-pool thread that the runtime waits for at shutdown, so a
/// terminal that never sends end-of-file would keep the process alive after
/// an error; a plain thread does not hold up the exit.
fn read_lines() -> mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    // Only the newline goes, as in mosquitto_pub: a "\r"
                    // before it is part of the message, and an empty line
                    // is a zero-length message.
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.blocking_send(Ok(line.into())).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    rx
}
