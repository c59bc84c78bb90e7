//! A simulated Shelly Plug S Gen3 with a lamp plugged in: the MQTT side of
//! the real device, close enough for the controller to be tried and tested
//! without hardware.
//!
//! It connects with the will `<prefix>/online` = `false` (retained) and
//! then publishes `true` there (retained), answers JSON-RPC on
//! `<prefix>/rpc` and the plain commands on `<prefix>/command/switch:0` and
//! `<prefix>/command`, and after every change, and every report interval,
//! publishes the switch's full status on `<prefix>/status/switch:0` and a
//! `NotifyStatus` frame on `<prefix>/events/rpc`. Its readings are
//! plausible for a mains socket in Europe: about 230 V and 50 Hz, the
//! lamp's watts (with a little noise) when on and 0.0 W when off, an
//! energy counter that adds up, and a device temperature that drifts up
//! under load.

use std::sync::Arc;
use std::time::Duration;

use plover::{Client, ConnectionEvent, Message, QoS};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::json::{self, Json};
use super::{BrokerOptions, SWITCH, SwitchStatus, Topics, response_topic, rpc_error, unix_time};

/// Where the simulator says what it does (stdout for `shelly_sim`).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `shellyplugsg3-<12 hex>`; also the MQTT client id, as on the device.
    pub device_id: String,
    /// The topic prefix (the device id unless set otherwise).
    pub prefix: String,
    /// What the plugged-in load draws when on, W.
    pub load_watts: f64,
    /// How often to publish fresh readings.
    pub report_every: Duration,
    /// Whether the switch starts on.
    pub initially_on: bool,
}

impl SimConfig {
    /// A 60 W lamp, off, reporting every two seconds.
    pub fn new(device_id: &str) -> SimConfig {
        SimConfig {
            device_id: device_id.to_owned(),
            prefix: device_id.to_owned(),
            load_watts: 60.0,
            report_every: Duration::from_secs(2),
            initially_on: false,
        }
    }
}

/// A small, fast pseudo-random generator (xorshift64*), for the noise on
/// the readings.
struct Noise(u64);

impl Noise {
    /// A number in [-1, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        bits as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// The plug's state and its meter: no I/O, so the same model serves the
/// example and its tests.
pub struct Plug {
    config: SimConfig,
    output: bool,
    source: String,
    voltage: f64,
    freq: f64,
    apower: f64,
    energy_wh: f64,
    /// mWh in the current minute, and in the last three whole ones.
    minute_mwh: f64,
    by_minute: [f64; 3],
    minute_ts: i64,
    temperature_c: f64,
    /// When the meter last ran (Unix seconds).
    measured_at: f64,
    started_at: f64,
    /// `toggle_after`: when to switch to which state.
    pub timer: Option<(Instant, bool)>,
    noise: Noise,
}

impl Plug {
    pub fn new(config: SimConfig) -> Plug {
        let now = unix_time();
        let mut plug = Plug {
            output: config.initially_on,
            config,
            source: "init".to_owned(),
            voltage: 230.0,
            freq: 50.0,
            apower: 0.0,
            energy_wh: 0.0,
            minute_mwh: 0.0,
            by_minute: [0.0; 3],
            minute_ts: now as i64 / 60 * 60,
            temperature_c: 31.5,
            measured_at: now,
            started_at: now,
            timer: None,
            noise: Noise(super::random_u64() | 1),
        };
        plug.measure(now);
        plug
    }

    pub fn output(&self) -> bool {
        self.output
    }

    /// Switches; returns whether it was on. Takes a fresh reading, as the
    /// real device reports the new power along with the new state.
    pub fn set(&mut self, on: bool, source: &str) -> bool {
        let was_on = self.output;
        self.measure(unix_time());
        self.output = on;
        self.source = source.to_owned();
        self.timer = None;
        self.measure(unix_time());
        was_on
    }

    /// Runs the meter up to `now`: energy used since the last reading,
    /// then fresh (slightly noisy) figures.
    pub fn measure(&mut self, now: f64) {
        let elapsed = (now - self.measured_at).max(0.0);
        self.measured_at = now;
        let mwh = self.apower * elapsed / 3600.0 * 1000.0;
        self.energy_wh += mwh / 1000.0;
        // Minutes that ended since the last reading move into by_minute.
        let minute = now as i64 / 60 * 60;
        while self.minute_ts < minute {
            self.by_minute = [self.minute_mwh, self.by_minute[0], self.by_minute[1]];
            self.minute_mwh = 0.0;
            self.minute_ts += 60;
            // After a long pause, catch up without looping for ever.
            if minute - self.minute_ts > 180 {
                self.minute_ts = minute;
            }
        }
        self.minute_mwh += mwh;

        // Mains wanders around its nominal values.
        self.voltage = (self.voltage + self.noise.next() * 0.4).clamp(226.0, 234.0);
        self.freq = 50.0 + self.noise.next() * 0.03;
        // A lamp is a resistive load: its power goes with the voltage squared.
        self.apower = if self.output {
            let nominal = self.config.load_watts * (self.voltage / 230.0).powi(2);
            (nominal + self.noise.next() * 0.3).max(0.0)
        } else {
            0.0
        };
        // The relay and the load warm the plug up; it cools when off.
        let target = 31.5 + self.apower * 0.08;
        self.temperature_c += (target - self.temperature_c) * 0.05;
    }

    pub fn status(&self) -> SwitchStatus {
        SwitchStatus {
            id: 0,
            source: self.source.clone(),
            output: self.output,
            apower: self.apower,
            voltage: self.voltage,
            current: if self.voltage > 0.0 {
                self.apower / self.voltage
            } else {
                0.0
            },
            freq: self.freq,
            energy_total: self.energy_wh,
            energy_by_minute: self.by_minute,
            minute_ts: self.minute_ts,
            temperature_c: self.temperature_c,
        }
    }

    /// A `NotifyStatus` frame for `<prefix>/events/rpc`, carrying `changes`
    /// (a JSON object of the switch's fields that changed).
    pub fn notify_status(&self, changes: &str) -> String {
        format!(
            r#"{{"src":{},"dst":{},"method":"NotifyStatus","params":{{"ts":{:.2},{}:{changes}}}}}"#,
            json::string(&self.config.device_id),
            json::string(&Topics::new(&self.config.prefix).events_dst()),
            unix_time(),
            json::string(SWITCH),
        )
    }

    /// The fields a switch or a fresh reading changes.
    pub fn changes(&self, switched: bool) -> String {
        let s = self.status();
        let readings = format!(
            r#""apower":{:.1},"voltage":{:.1},"current":{:.3}"#,
            s.apower, s.voltage, s.current
        );
        if switched {
            format!(
                r#"{{"id":0,"output":{},"source":{},{readings}}}"#,
                s.output,
                json::string(&s.source)
            )
        } else {
            format!(r#"{{"id":0,{readings}}}"#)
        }
    }

    /// `Shelly.GetStatus`: every component; only the switch is real here.
    fn device_status(&self) -> String {
        let now = unix_time();
        format!(
            concat!(
                r#"{{"ble":{{}},"cloud":{{"connected":false}},"mqtt":{{"connected":true}},"#,
                r#""switch:0":{},"sys":{{"mac":{},"restart_required":false,"#,
                r#""unixtime":{},"uptime":{},"ram_size":260000,"ram_free":112000}},"#,
                r#""wifi":{{"sta_ip":"192.168.1.50","status":"got ip","ssid":"home","rssi":-58}}}}"#
            ),
            self.status().to_json(),
            json::string(&self.mac()),
            now as i64,
            (now - self.started_at) as i64,
        )
    }

    /// `Shelly.GetDeviceInfo`.
    fn device_info(&self) -> String {
        format!(
            concat!(
                r#"{{"name":null,"id":{},"mac":{},"slot":0,"model":"S3PL-00112EU","gen":3,"#,
                r#""fw_id":"simulated-by-plover","ver":"1.0.0","app":"PlugSG3","auth_en":false,"#,
                r#""auth_domain":null}}"#
            ),
            json::string(&self.config.device_id),
            json::string(&self.mac()),
        )
    }

    /// The MAC address a device id is made of, in capitals.
    fn mac(&self) -> String {
        self.config
            .device_id
            .rsplit('-')
            .next()
            .unwrap_or("")
            .to_uppercase()
    }

    /// Handles one JSON-RPC request. Returns the topic and text of the
    /// answer (`None` when there is nowhere to send one: no `src`) and
    /// whether the switch changed.
    pub fn rpc(&mut self, request: &[u8]) -> (Option<(String, String)>, bool) {
        let Ok(frame) = Json::from_payload(request) else {
            return (None, false);
        };
        let Some(src) = frame.get("src").and_then(Json::as_str) else {
            return (None, false);
        };
        if src.is_empty() || src.contains(['+', '#']) {
            return (None, false);
        }
        let id = frame.get("id").cloned().unwrap_or(Json::Null);
        let method = frame.get("method").and_then(Json::as_str).unwrap_or("");
        let params = frame
            .get("params")
            .cloned()
            .unwrap_or(Json::Object(Vec::new()));
        let outcome = self.method(method, &params);
        let switched = outcome.is_ok() && matches!(method, "Switch.Set" | "Switch.Toggle");
        let body = match outcome {
            Ok(result) => format!(r#""result":{result}"#),
            Err((code, message)) => format!(
                r#""error":{{"code":{code},"message":{}}}"#,
                json::string(&message)
            ),
        };
        let answer = format!(
            r#"{{"id":{id},"src":{},"dst":{},{body}}}"#,
            json::string(&self.config.device_id),
            json::string(src),
        );
        (Some((response_topic(src), answer)), switched)
    }

    fn method(&mut self, method: &str, params: &Json) -> Result<String, (i64, String)> {
        let switch_id = || -> Result<(), (i64, String)> {
            match params.get("id") {
                Some(Json::Number(n)) if *n == 0.0 => Ok(()),
                Some(Json::Number(n)) => Err((
                    rpc_error::NOT_FOUND,
                    format!("Argument 'id', value {} not found!", json::number(*n)),
                )),
                Some(_) => Err((
                    rpc_error::INVALID_ARGUMENT,
                    "Invalid argument 'id': expected number!".to_owned(),
                )),
                None => Err((
                    rpc_error::INVALID_ARGUMENT,
                    "Missing required argument 'id'!".to_owned(),
                )),
            }
        };
        match method {
            "Switch.Set" => {
                switch_id()?;
                let on = match params.get("on") {
                    Some(Json::Bool(on)) => *on,
                    Some(_) => {
                        return Err((
                            rpc_error::INVALID_ARGUMENT,
                            "Invalid argument 'on': expected boolean!".to_owned(),
                        ));
                    }
                    None => {
                        return Err((
                            rpc_error::INVALID_ARGUMENT,
                            "Missing required argument 'on'!".to_owned(),
                        ));
                    }
                };
                let toggle_after = match params.get("toggle_after") {
                    None | Some(Json::Null) => None,
                    Some(Json::Number(secs)) if *secs > 0.0 && *secs <= 86_400.0 => Some(*secs),
                    Some(_) => {
                        return Err((
                            rpc_error::INVALID_ARGUMENT,
                            "Invalid argument 'toggle_after': expected seconds > 0!".to_owned(),
                        ));
                    }
                };
                let was_on = self.set(on, "MQTT");
                if let Some(secs) = toggle_after {
                    self.timer = Some((Instant::now() + Duration::from_secs_f64(secs), !on));
                }
                Ok(format!(r#"{{"was_on":{was_on}}}"#))
            }
            "Switch.Toggle" => {
                switch_id()?;
                let was_on = self.set(!self.output, "MQTT");
                Ok(format!(r#"{{"was_on":{was_on}}}"#))
            }
            "Switch.GetStatus" => {
                switch_id()?;
                self.measure(unix_time());
                Ok(self.status().to_json())
            }
            "Shelly.GetStatus" => {
                self.measure(unix_time());
                Ok(self.device_status())
            }
            "Shelly.GetDeviceInfo" => Ok(self.device_info()),
            other => Err((rpc_error::NO_HANDLER, format!("No handler for {other}"))),
        }
    }
}

/// A running simulator; [`stop`](Self::stop) it to say goodbye cleanly.
pub struct Simulator {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Simulator {
    /// Connects as the plug (with its will), announces it online, and
    /// starts answering in a task of its own.
    pub async fn start(
        broker: &BrokerOptions,
        config: SimConfig,
        log: Log,
    ) -> Result<Simulator, String> {
        let topics = Topics::new(&config.prefix);
        // The device's client id is its device id.
        let client = Client::builder(config.device_id.clone())
            .connect_timeout(Duration::from_secs(15))
            .build();
        // If the plug vanishes (power cut, Wi-Fi gone), the broker tells
        // everyone: retained, so late subscribers learn it too.
        client
            .will_set(&topics.online(), "false", QoS::AtLeastOnce, true)
            .map_err(|e| e.to_string())?;
        broker.connect(&client, 30).await?;
        let mut messages = client.messages();
        for topic in [topics.rpc(), topics.switch_command(), topics.command()] {
            client
                .subscribe(&topic, QoS::AtLeastOnce)
                .await
                .map_err(|e| format!("subscribe to {topic}: {e}"))?;
        }
        let mut plug = Plug::new(config.clone());
        announce(&client, &topics, &plug).await;

        let (stop_tx, mut stop_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut events = client.connection_events();
            let mut ticker = tokio::time::interval(config.report_every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await; // the first tick is immediate
            loop {
                let timer = plug.timer;
                tokio::select! {
                    _ = &mut stop_rx => break,
                    message = messages.recv() => match message {
                        Some(message) => handle(&client, &topics, &mut plug, &message, &log).await,
                        None => break,
                    },
                    _ = ticker.tick() => {
                        plug.measure(unix_time());
                        publish_status(&client, &topics, &plug, false).await;
                    }
                    () = async {
                        match timer {
                            Some((at, _)) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    } => {
                        if let Some((_, on)) = timer {
                            plug.set(on, "timer");
                            log(&format!("timer: switched {}", if on { "ON" } else { "OFF" }));
                            publish_status(&client, &topics, &plug, true).await;
                        }
                    }
                    event = events.recv() => match event {
                        // After a reconnect, say so again: the broker
                        // published our will when the connection broke.
                        Some(ConnectionEvent::Connected(_)) => {
                            log("reconnected");
                            announce(&client, &topics, &plug).await;
                        }
                        Some(ConnectionEvent::Disconnected(reason)) => {
                            log(&format!("connection lost ({reason}); reconnecting"));
                        }
                        Some(_) => {}
                        None => break,
                    },
                }
            }
            // Going away on purpose: no will is published after a clean
            // DISCONNECT, so say it ourselves.
            if let Ok(ack) = client
                .publish(&topics.online(), "false", QoS::AtLeastOnce, true)
                .await
            {
                let _ = tokio::time::timeout(Duration::from_secs(3), ack).await;
            }
            let _ = client.disconnect().await;
            log("offline: published online=false and disconnected");
        });
        Ok(Simulator {
            stop: Some(stop_tx),
            task,
        })
    }

    /// Publishes `online` = `false` and disconnects.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// `online` = `true` (retained) and the current status.
async fn announce(client: &Client, topics: &Topics, plug: &Plug) {
    if let Ok(ack) = client
        .publish(&topics.online(), "true", QoS::AtLeastOnce, true)
        .await
    {
        let _ = tokio::time::timeout(Duration::from_secs(5), ack).await;
    }
    publish_status(client, topics, plug, false).await;
}

/// The full status on `status/switch:0`, and a NotifyStatus frame.
async fn publish_status(client: &Client, topics: &Topics, plug: &Plug, switched: bool) {
    // Queued, not awaited: the loop carries on while the broker acknowledges.
    let _ = client
        .publish(
            &topics.switch_status(),
            plug.status().to_json(),
            QoS::AtLeastOnce,
            false,
        )
        .await;
    let _ = client
        .publish(
            &topics.events(),
            plug.notify_status(&plug.changes(switched)),
            QoS::AtLeastOnce,
            false,
        )
        .await;
}

async fn handle(client: &Client, topics: &Topics, plug: &mut Plug, message: &Message, log: &Log) {
    let topic = message.topic.as_str();
    let text = message.payload_str().unwrap_or("").trim();
    if topic == topics.rpc() {
        let (answer, switched) = plug.rpc(&message.payload);
        match answer {
            Some((to, answer)) => {
                log(&format!("rpc {}", describe_rpc(text, &answer)));
                if client
                    .publish(&to, answer, QoS::AtLeastOnce, false)
                    .await
                    .is_err()
                {
                    log("could not send the answer");
                }
            }
            None => log(&format!(
                "ignored an RPC request without a usable src: {text}"
            )),
        }
        if switched {
            publish_status(client, topics, plug, true).await;
        }
    } else if topic == topics.switch_command() {
        let on = match text {
            "on" => Some(true),
            "off" => Some(false),
            "toggle" => Some(!plug.output()),
            "status_update" => None,
            other => {
                log(&format!("unknown command {other:?} on {topic}"));
                return;
            }
        };
        match on {
            Some(on) => {
                plug.set(on, "MQTT");
                log(&format!(
                    "command {text:?}: switched {}",
                    if on { "ON" } else { "OFF" }
                ));
                publish_status(client, topics, plug, true).await;
            }
            None => publish_status(client, topics, plug, false).await,
        }
    } else if topic == topics.command() {
        if text == "status_update" {
            plug.measure(unix_time());
            publish_status(client, topics, plug, false).await;
        } else {
            log(&format!("unknown command {text:?} on {topic}"));
        }
    }
}

/// `Switch.Set {"id":0,"on":true} from SRC -> {"was_on":false}`, with a long
/// result shortened.
fn describe_rpc(request: &str, answer: &str) -> String {
    let request = Json::parse(request).unwrap_or(Json::Null);
    let answer = Json::parse(answer).unwrap_or(Json::Null);
    let method = request.get("method").and_then(Json::as_str).unwrap_or("?");
    let src = request.get("src").and_then(Json::as_str).unwrap_or("?");
    let params = request
        .get("params")
        .map(|p| format!(" {p}"))
        .unwrap_or_default();
    let outcome = match (answer.get("result"), answer.get("error")) {
        (Some(result), _) => abbreviate(&result.to_string(), 60),
        (None, Some(error)) => format!("error {}", error),
        (None, None) => "?".to_owned(),
    };
    format!("{method}{params} from {src} -> {outcome}")
}

/// `text`, cut to about `max` characters.
pub fn abbreviate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}
