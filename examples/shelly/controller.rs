//! The controller side: JSON-RPC calls to a plug over MQTT, and watching
//! its status notifications.
//!
//! A call publishes `{"id":N,"src":SRC,"method":...}` to `<prefix>/rpc`
//! and waits for the answer the device publishes to `SRC/rpc`. While it
//! waits it also listens to `<prefix>/online`, which the device keeps
//! retained (`true`, or its will `false`), so that "the plug is offline"
//! and "nothing answered" are told apart: they have different fixes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use plover::{Client, Message, QoS, Subscription};
use tokio::time::Instant;

use super::json::Json;
use super::{BrokerOptions, SwitchStatus, Topics, explain, response_topic, rpc_request};

/// Called with every message the controller sends and receives, as
/// `→ topic payload` / `← topic payload` (the `--verbose` output).
pub type Trace = Arc<dyn Fn(&str) + Send + Sync>;

/// Why a command did not work. Each has its own exit status.
#[derive(Debug)]
pub enum Error {
    /// Connecting to the broker, or the connection, failed.
    Broker(String),
    /// The device's retained `<prefix>/online` says `false`.
    Offline { device: String },
    /// No answer within the timeout.
    NoAnswer {
        device: String,
        timeout: Duration,
        /// What `<prefix>/online` said meanwhile (`None`: nothing).
        online: Option<bool>,
    },
    /// The device answered with an error object.
    Rpc { code: i64, message: String },
    /// The device answered something we cannot read.
    BadAnswer(String),
}

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Broker(_) | Error::BadAnswer(_) => 1,
            Error::Offline { .. } => 3,
            Error::NoAnswer { .. } => 4,
            Error::Rpc { .. } => 5,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Broker(e) => write!(f, "broker: {e}"),
            Error::Offline { device } => write!(
                f,
                "plug offline: {device}/online is false (the broker published the plug's \
                 last will, or the plug said goodbye). Check that the plug has power and \
                 Wi-Fi and can reach the broker."
            ),
            Error::NoAnswer {
                device,
                timeout,
                online,
            } => {
                write!(f, "no answer from {device} within {timeout:?}. ")?;
                match online {
                    Some(true) => write!(
                        f,
                        "It says it is online ({device}/online is true), so check that \
                         \"RPC over MQTT\" is enabled in its MQTT settings."
                    ),
                    _ => write!(
                        f,
                        "Nothing was heard on {device}/online either. Check: is the device \
                         online? Is {device:?} its device id or custom MQTT topic prefix? Is \
                         MQTT enabled on it, pointing at this broker with these credentials, \
                         with \"RPC over MQTT\" turned on?"
                    ),
                }
            }
            Error::Rpc { code, message } => write!(f, "the plug refused: {message} (code {code})"),
            Error::BadAnswer(e) => write!(f, "unreadable answer from the plug: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// What `watch` reports.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// The switch's status, after a change.
    Reading(SwitchStatus),
    /// `<prefix>/online` changed.
    Online(bool),
}

/// A connection to the broker, talking to one plug.
pub struct Controller {
    client: Client,
    topics: Topics,
    src: String,
    next_id: u64,
    answers: Subscription,
    online_messages: Subscription,
    online: Option<bool>,
    timeout: Duration,
    trace: Option<Trace>,
}

impl Controller {
    /// Connects to the broker and subscribes to the answers and to the
    /// plug's `online` topic. `device` is the plug's topic prefix (its
    /// device id unless a custom prefix was set on it); `timeout` bounds
    /// each call.
    pub async fn connect(
        broker: &BrokerOptions,
        device: &str,
        timeout: Duration,
        trace: Option<Trace>,
    ) -> Result<Controller, Error> {
        if device.is_empty() || device.contains(['+', '#']) {
            return Err(Error::Broker(format!(
                "{device:?} cannot be a topic prefix (empty, or with a wildcard)"
            )));
        }
        // The device answers on `<src>/rpc`: a name of our own, so that two
        // controllers never read each other's answers.
        let src = format!("plover-shelly-{:08x}", super::random_u64() as u32);
        let client = Client::builder(src.clone())
            // A command-line tool: a lost connection is an error to report,
            // not something to wait out.
            .automatic_reconnect(false)
            .connect_timeout(Duration::from_secs(15))
            .build();
        broker.connect(&client, 30).await.map_err(Error::Broker)?;
        let topics = Topics::new(device);
        let mqtt = |e: plover::ClientError| Error::Broker(explain(&e));
        // One stream per subscription: the answers, and the plug's online
        // flag (whose retained value arrives right after the SUBACK).
        let (_, answers) = client
            .subscribe_stream(&response_topic(&src), QoS::AtLeastOnce)
            .await
            .map_err(mqtt)?;
        let (_, online_messages) = client
            .subscribe_stream(&topics.online(), QoS::AtLeastOnce)
            .await
            .map_err(mqtt)?;
        Ok(Controller {
            client,
            topics,
            src,
            next_id: 1,
            answers,
            online_messages,
            online: None,
            timeout,
            trace,
        })
    }

    /// The name answers are addressed to (`src` in the requests).
    pub fn src(&self) -> &str {
        &self.src
    }

    /// The request id the next call will use, so that a caller hiding
    /// some calls from its trace can say which ids those were.
    pub fn next_request_id(&self) -> u64 {
        self.next_id
    }

    /// The plug's topics.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// What `<prefix>/online` said last, if anything.
    pub fn online(&self) -> Option<bool> {
        self.online
    }

    fn trace(&self, arrow: &str, topic: &str, payload: &[u8]) {
        if let Some(trace) = &self.trace {
            trace(&format!(
                "{arrow} {topic}  {}",
                String::from_utf8_lossy(payload)
            ));
        }
    }

    /// Notes an `online` message; the plug being offline is an error.
    fn on_online(&mut self, message: &Message) -> Result<(), Error> {
        self.trace("←", &message.topic, &message.payload);
        match message.payload_str().map(str::trim) {
            Some("true") => self.online = Some(true),
            Some("false") => {
                self.online = Some(false);
                return Err(Error::Offline {
                    device: self.topics.prefix.clone(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Calls `method` with `params` (JSON text) and returns the `result`.
    ///
    /// Cancel safety: not cancel safe (an answer taken from the stream
    /// would be lost); it bounds its own waiting instead.
    pub async fn call(&mut self, method: &str, params: Option<&str>) -> Result<Json, Error> {
        let id = self.next_id;
        self.next_id += 1;
        let request = rpc_request(id, &self.src, method, params);
        let deadline = Instant::now() + self.timeout;
        let rpc_topic = self.topics.rpc();
        self.trace("→", &rpc_topic, request.as_bytes());
        let mqtt = |e: plover::ClientError| Error::Broker(explain(&e));
        // QoS 1, as the device uses: the broker's PUBACK says it has the
        // request, whether or not a device is there to read it.
        let ack = self
            .client
            .publish(&rpc_topic, request, QoS::AtLeastOnce, false)
            .await
            .map_err(mqtt)?;
        match tokio::time::timeout_at(deadline, ack).await {
            Ok(result) => {
                result.map_err(mqtt)?;
            }
            Err(_) => {
                return Err(Error::Broker(
                    "the broker did not acknowledge the request".into(),
                ));
            }
        }
        loop {
            tokio::select! {
                answer = self.answers.recv() => {
                    let Some(answer) = answer else {
                        return Err(Error::Broker("the connection to the broker ended".into()));
                    };
                    let Ok(frame) = Json::from_payload(&answer.payload) else {
                        continue;
                    };
                    // Answers to earlier calls that timed out are skipped.
                    if frame.get("id").and_then(Json::as_f64) != Some(id as f64) {
                        continue;
                    }
                    self.trace("←", &answer.topic, &answer.payload);
                    if let Some(error) = frame.get("error") {
                        return Err(Error::Rpc {
                            code: error.get("code").and_then(Json::as_f64).unwrap_or(0.0) as i64,
                            message: error
                                .get("message")
                                .and_then(Json::as_str)
                                .unwrap_or("(no message)")
                                .to_owned(),
                        });
                    }
                    return Ok(frame.get("result").cloned().unwrap_or(Json::Null));
                }
                online = self.online_messages.recv() => {
                    let Some(online) = online else {
                        return Err(Error::Broker("the connection to the broker ended".into()));
                    };
                    self.on_online(&online)?;
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Err(Error::NoAnswer {
                        device: self.topics.prefix.clone(),
                        timeout: self.timeout,
                        online: self.online,
                    });
                }
            }
        }
    }

    /// `Switch.Set`: turns the switch on or off (and back again after
    /// `toggle_after` seconds, if given). Returns whether it was on.
    pub async fn set(&mut self, on: bool, toggle_after: Option<f64>) -> Result<bool, Error> {
        let params = match toggle_after {
            Some(secs) => format!(r#"{{"id":0,"on":{on},"toggle_after":{secs}}}"#),
            None => format!(r#"{{"id":0,"on":{on}}}"#),
        };
        let result = self.call("Switch.Set", Some(&params)).await?;
        was_on(&result)
    }

    /// `Switch.Toggle`. Returns whether it was on.
    pub async fn toggle(&mut self) -> Result<bool, Error> {
        let result = self.call("Switch.Toggle", Some(r#"{"id":0}"#)).await?;
        was_on(&result)
    }

    /// `Switch.GetStatus`.
    pub async fn switch_status(&mut self) -> Result<SwitchStatus, Error> {
        let result = self.call("Switch.GetStatus", Some(r#"{"id":0}"#)).await?;
        SwitchStatus::from_json(&result)
            .ok_or_else(|| Error::BadAnswer(format!("no switch status in {result}")))
    }

    /// The status after a switch: a real plug needs a moment to measure
    /// the power a load draws, so while it reports the output on at 0 W
    /// this asks again, twice at most.
    pub async fn settled_status(&mut self) -> Result<SwitchStatus, Error> {
        let mut status = self.switch_status().await?;
        for _ in 0..2 {
            if !(status.output && status.apower < 0.05) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(750)).await;
            status = self.switch_status().await?;
        }
        Ok(status)
    }

    /// Reports the status now, then every change the plug publishes (its
    /// `status/switch:0` messages and `NotifyStatus` frames), until `limit`
    /// has passed or `count` readings were reported (`None`: no bound).
    /// Returns the number of readings.
    pub async fn watch(
        &mut self,
        limit: Option<Duration>,
        count: Option<usize>,
        mut report: impl FnMut(&WatchEvent),
    ) -> Result<usize, Error> {
        let mqtt = |e: plover::ClientError| Error::Broker(explain(&e));
        // Subscribe before asking for the current status, so that no
        // change between the two is missed.
        let (_, mut statuses) = self
            .client
            .subscribe_stream(&self.topics.switch_status(), QoS::AtLeastOnce)
            .await
            .map_err(mqtt)?;
        let (_, mut events) = self
            .client
            .subscribe_stream(&self.topics.events(), QoS::AtLeastOnce)
            .await
            .map_err(mqtt)?;
        let deadline = limit.map(|l| Instant::now() + l);
        let mut status = self.switch_status().await?;
        report(&WatchEvent::Reading(status.clone()));
        let mut readings = 1;
        let mut shown = status.summary();
        while count.is_none_or(|c| readings < c) {
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let changed = tokio::select! {
                message = statuses.recv() => {
                    let message = message.ok_or_else(closed)?;
                    self.trace("←", &message.topic, &message.payload);
                    match Json::from_payload(&message.payload) {
                        Ok(full) => {
                            status.merge(&full);
                            true
                        }
                        Err(_) => false,
                    }
                }
                message = events.recv() => {
                    let message = message.ok_or_else(closed)?;
                    self.trace("←", &message.topic, &message.payload);
                    // {"method":"NotifyStatus","params":{"ts":..,"switch:0":{..}}}
                    match Json::from_payload(&message.payload) {
                        Ok(frame) if frame.get("method").and_then(Json::as_str) == Some("NotifyStatus") => {
                            match frame.get("params").and_then(|p| p.get(super::SWITCH)) {
                                Some(changes) => {
                                    status.merge(changes);
                                    true
                                }
                                None => false,
                            }
                        }
                        _ => false,
                    }
                }
                message = self.online_messages.recv() => {
                    let message = message.ok_or_else(closed)?;
                    self.trace("←", &message.topic, &message.payload);
                    let now = match message.payload_str().map(str::trim) {
                        Some("true") => Some(true),
                        Some("false") => Some(false),
                        _ => None,
                    };
                    // Report changes, and "offline" even as the first
                    // word: a first "true" is only the retained greeting.
                    if now.is_some() && now != self.online {
                        if self.online.is_some() || now == Some(false) {
                            report(&WatchEvent::Online(now == Some(true)));
                        }
                        self.online = now;
                    }
                    false
                }
                () = sleep => break,
            };
            // A change usually arrives twice (the full status and a
            // NotifyStatus frame); report it once.
            if changed && status.summary() != shown {
                shown = status.summary();
                report(&WatchEvent::Reading(status.clone()));
                readings += 1;
            }
        }
        Ok(readings)
    }

    /// Disconnects cleanly.
    pub async fn close(self) {
        let _ = self.client.disconnect().await;
    }
}

fn closed() -> Error {
    Error::Broker("the connection to the broker ended".into())
}

fn was_on(result: &Json) -> Result<bool, Error> {
    result
        .get("was_on")
        .and_then(Json::as_bool)
        .ok_or_else(|| Error::BadAnswer(format!("no \"was_on\" in {result}")))
}
