//! `subscribe`: a look-alike of mosquitto 2.0's `mosquitto_sub`, built on
//! plover. Same flags, same output, same exit codes; `--help` lists them and
//! the few differences (any keepalive is accepted, `-d` writes to stderr).
//!
//! ```text
//! cargo run --example subscribe -- -t 'sensors/#' -v
//! cargo run --example subscribe -- -t a -t b -q 1 -C 10 -W 30
//! cargo run --example subscribe -- -V 5 -t a -F '%t %P %p'
//! cargo run --example subscribe -- -h broker.example --cafile ca.pem --cert me.crt --key me.key -t a
//! cargo run --example subscribe -- -L 'mqtts://user:pass@broker.example/sensors/#' -v
//! ```
//!
//! Messages print as the raw payload bytes followed by a newline (`-N`:
//! none), `TOPIC PAYLOAD` with `-v`, or as `-F` says. It runs until `-C`
//! messages were printed (exit 0), `-W` seconds passed (exit 27, "Timed
//! out"), or it is interrupted (exit 0). Like mosquitto_sub it reconnects
//! when the connection drops (`-d` shows it) and, with a clean session,
//! subscribes again; it exits 7 only if the client stops reconnecting.

mod cli;

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use cli::{Config, Tool, Trace, exit};
use plover::codec::{RetainHandling, SubscriptionOptions};
use plover::topic::matches;
use plover::{Client, ClientError, CloseReason, Message, ProtocolVersion};
use tokio::time::Instant;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match cli::parse_or_exit(Tool::Subscribe) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // -W counts from the start, connecting included, and is not reset by
    // messages: mosquitto_sub arms a single alarm(2).
    let deadline = config
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s.into()));
    let mut trace = Trace::new(&config);
    let connected = match deadline {
        Some(at) => match tokio::time::timeout_at(at, cli::connect(&config, &mut trace)).await {
            Ok(connected) => connected,
            Err(_) => {
                config.error("Timed out");
                return ExitCode::from(exit::TIMEOUT);
            }
        },
        None => cli::connect(&config, &mut trace).await,
    };
    let (client, link) = match connected {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    Subscriber {
        client,
        config,
        trace,
        deadline,
    }
    .run(link)
    .await
}

struct Subscriber {
    client: Client,
    config: Config,
    trace: Trace,
    deadline: Option<Instant>,
}

/// How the main loop ends.
enum End {
    /// -C reached, --retained-only done, stdout closed, -E.
    Done,
    /// -W ran out.
    TimedOut,
    /// SIGINT or SIGTERM.
    Interrupted,
    /// The connection ended; the exit code is already decided.
    Lost(ExitCode),
}

impl Subscriber {
    async fn run(self, link: cli::Link) -> ExitCode {
        let end = self.subscribe_and_print(link).await;
        let (config, trace) = (&self.config, &self.trace);
        match end {
            End::Done => {
                cli::disconnect(&self.client, config, trace, false).await;
                ExitCode::from(exit::OK)
            }
            End::TimedOut => {
                cli::disconnect(&self.client, config, trace, true).await;
                config.error("Timed out");
                ExitCode::from(exit::TIMEOUT)
            }
            End::Interrupted => {
                cli::disconnect(&self.client, config, trace, true).await;
                ExitCode::from(exit::OK)
            }
            End::Lost(code) => code,
        }
    }

    async fn subscribe_and_print(&self, mut link: cli::Link) -> End {
        let config = &self.config;
        // Both streams hold what arrives from now on; the messages stream
        // buffers from the moment the client was created, so retained
        // messages that follow the SUBACK are not missed.
        let mut messages = self.client.messages();
        let stop = interrupted();
        tokio::pin!(stop);

        let mut options = SubscriptionOptions::new(config.qos);
        if config.version == ProtocolVersion::V5 {
            options.retain_as_published = config.retain_as_published;
            // -R: with 5.0 the broker need not send retained messages at
            // all (mosquitto_sub asks the same); they are skipped below too.
            if config.no_retain {
                options.retain_handling = RetainHandling::DoNotSend;
            }
        }
        let filters: Vec<(&str, SubscriptionOptions)> = config
            .topics
            .iter()
            .map(|t| (t.as_str(), options))
            .collect();
        let subscribing = self
            .client
            .subscribe_many(&filters, config.props.subscribe.clone());
        // The link is followed meanwhile too: a connection that drops
        // before the SUBACK is traced when it happens, and a client that
        // stops for good ends the wait.
        let suback = tokio::select! {
            biased;
            () = sleep_until(self.deadline) => return End::TimedOut,
            () = &mut stop => return End::Interrupted,
            reason = link.stopped(&self.trace) => {
                return End::Lost(cli::lost(config, &self.trace, &reason));
            }
            suback = subscribing => suback,
        };
        let suback = match suback {
            Ok(suback) => suback,
            Err(ClientError::ConnectionClosed(reason)) => {
                return End::Lost(cli::lost(config, &self.trace, &reason));
            }
            // Gone between CONNACK and SUBSCRIBE.
            Err(ClientError::NotConnected) => {
                let reason = CloseReason::ConnectionLost;
                return End::Lost(cli::lost(config, &self.trace, &reason));
            }
            Err(other) => {
                config.error(format_args!("Error: {other}"));
                return End::Lost(ExitCode::from(exit::ERROR));
            }
        };
        let options_byte = match config.version {
            ProtocolVersion::V5 => {
                (u8::from(options.retain_as_published) << 3)
                    | ((options.retain_handling as u8) << 4)
            }
            _ => 0,
        };
        for topic in &config.topics {
            self.trace.client(format_args!(
                "sending SUBSCRIBE (Mid: {}, Topic: {topic}, QoS: {}, Options: 0x{options_byte:02x})",
                suback.packet_id,
                config.qos as u8
            ));
        }
        self.trace.client(format_args!("received SUBACK"));
        let codes: Vec<String> = suback
            .reason_codes
            .iter()
            .map(|c| c.as_u8().to_string())
            .collect();
        self.trace.line(format_args!(
            "Subscribed (mid: {}): {}",
            suback.packet_id,
            codes.join(", ")
        ));
        if suback.reason_codes.iter().all(|c| c.is_error()) {
            // mosquitto_sub disconnects, says this, and exits 0.
            config.error("All subscription requests were denied.");
            return End::Done;
        }
        if config.exit_after_sub {
            return End::Done;
        }

        let mut printed = 0u32;
        loop {
            // Time and signals first, so a flood of messages cannot hold
            // off -W. Then the link, so a drop and a reconnect are traced
            // in their place among the messages; it only ends the loop
            // seconds after the client stopped for good, so what arrived
            // before that is still printed. A dropped connection is not
            // an end: the client reconnects.
            let message = tokio::select! {
                biased;
                () = sleep_until(self.deadline) => return End::TimedOut,
                () = &mut stop => return End::Interrupted,
                reason = link.stopped(&self.trace) => {
                    return End::Lost(cli::lost(config, &self.trace, &reason));
                }
                message = messages.recv() => message,
            };
            let Some(message) = message else {
                return End::Lost(cli::lost(config, &self.trace, &CloseReason::ConnectionLost));
            };
            self.trace.client(format_args!(
                "received PUBLISH (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
                u8::from(message.dup),
                message.qos as u8,
                u8::from(message.retain),
                message.packet_id.map_or(0, |id| id.get()),
                message.topic,
                message.payload.len()
            ));
            // --retained-only: the first fresh message ends the run, unprinted.
            if config.retained_only && !message.retain {
                return End::Done;
            }
            if config.no_retain && message.retain {
                continue;
            }
            if config.filter_out.iter().any(|f| matches(f, &message.topic)) {
                continue;
            }
            if cli::emit(&render(config, &message)).is_err() {
                // stdout is gone (a closed pipe): mosquitto_sub stops, exit 0.
                return End::Done;
            }
            // -C counts what was printed, not what was filtered out.
            printed += 1;
            if config.count == Some(printed) {
                return End::Done;
            }
        }
    }
}

/// One message as mosquitto_sub prints it.
fn render(config: &Config, message: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.topic.len() + message.payload.len() + 2);
    if let Some(format) = &config.format {
        out = format.render(message, SystemTime::now());
        if config.eol {
            out.push(b'\n');
        }
    } else if config.verbose {
        if !message.payload.is_empty() {
            out.extend_from_slice(message.topic.as_bytes());
            out.push(b' ');
            out.extend_from_slice(&message.payload);
            if config.eol {
                out.push(b'\n');
            }
        } else if config.eol {
            // mosquitto_sub's way of showing a zero-length message.
            out.extend_from_slice(message.topic.as_bytes());
            out.extend_from_slice(b" (null)\n");
        }
    } else {
        out.extend_from_slice(&message.payload);
        if config.eol {
            out.push(b'\n');
        }
    }
    out
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, after which mosquitto_sub
/// disconnects and exits 0.
async fn interrupted() {
    {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
