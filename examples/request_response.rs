//! `request_response`: MQTT request/response with plover, a responder and a
//! requester in one program.
//!
//! ```text
//! cargo run --example request_response                  # localhost:1883, MQTT 5.0
//! cargo run --example request_response -- -h broker.local -p 1884
//! cargo run --example request_response -- -V 311       # the 3.1.1 convention
//! ```
//!
//! The responder subscribes to a service topic with its own stream
//! (`Client::subscribe_stream`) and answers each request with its payload
//! in upper case (`Client::respond`). The requester asks once, then three
//! times at once (the answers are matched to the questions by correlation
//! data), then asks a topic nobody serves and times out
//! (`Client::request`). Exit status 0 when all of that happened as
//! described, 1 otherwise.

use std::process::ExitCode;
use std::time::Duration;

use plover::{Client, ClientError, ProtocolVersion, QoS};

struct Args {
    host: String,
    port: u16,
    version: ProtocolVersion,
}

const USAGE: &str = "usage: request_response [-h host] [-p port] [-V 5|311]

  -h  the broker's host (default localhost)
  -p  its port (default 1883)
  -V  the MQTT version, 5 (default) or 311";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "localhost".to_owned(),
        port: 1883,
        version: ProtocolVersion::V5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--host" => args.host = value()?,
            "-p" | "--port" => {
                let v = value()?;
                args.port = v.parse().map_err(|_| format!("invalid port {v:?}"))?;
            }
            "-V" | "--protocol-version" => {
                args.version = match value()?.as_str() {
                    "5" | "mqttv5" => ProtocolVersion::V5,
                    "311" | "mqttv311" => ProtocolVersion::V311,
                    v => return Err(format!("unknown protocol version {v:?}")),
                }
            }
            "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Topics and client ids of their own, so runs side by side on one
    // broker do not answer each other.
    let run_id = std::process::id();
    let service = format!("plover/example/{run_id}/upper");
    println!(
        "connecting to {}:{} with MQTT {}",
        args.host, args.port, args.version
    );

    // The responder.
    let responder = Client::builder(format!("rr-responder-{run_id}"))
        .protocol(args.version)
        .build();
    responder.connect(&args.host, args.port, 30).await?;
    let (_, mut requests) = responder
        .subscribe_stream(&service, QoS::AtLeastOnce)
        .await?;
    println!("responder: serving {service}");
    let answering = responder.clone();
    let serving = tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            let Some(parts) = request.request_parts() else {
                println!("responder: ignored a message that is not a request");
                continue;
            };
            let question = String::from_utf8_lossy(&parts.payload).into_owned();
            let answer = question.to_uppercase();
            println!(
                "responder: request {question:?} (correlation {}) -> {answer:?} on {}",
                hex(parts.correlation_data.as_deref().unwrap_or_default()),
                parts.response_topic
            );
            if let Err(e) = answering.respond(&request, answer).await {
                eprintln!("responder: cannot answer: {e}");
            }
        }
    });

    // The requester.
    let requester = Client::builder(format!("rr-requester-{run_id}"))
        .protocol(args.version)
        .build();
    requester.connect(&args.host, args.port, 30).await?;
    let timeout = Duration::from_secs(5);

    let answer = requester.request(&service, "hello", timeout).await?;
    println!(
        "requester: \"hello\" -> {:?}",
        answer.payload_str().unwrap_or("(not text)")
    );
    let mut ok = answer.payload == "HELLO";

    // Three at once: each answer finds its own request.
    let words = ["alpha", "beta", "gamma"];
    let answers = futures::future::join_all(
        words
            .iter()
            .map(|word| requester.request(&service, *word, timeout)),
    )
    .await;
    for (word, answer) in words.iter().zip(answers) {
        let answer = answer?;
        let text = answer.payload_str().unwrap_or("(not text)");
        println!("requester: {word:?} -> {text:?} (at the same time)");
        ok &= text == word.to_uppercase();
    }

    // Nobody serves this one.
    let nobody = format!("plover/example/{run_id}/nobody");
    match requester
        .request(&nobody, "anyone?", Duration::from_millis(500))
        .await
    {
        Err(ClientError::Timeout(after)) => {
            println!("requester: no answer on {nobody} within {after:?}: timed out");
        }
        Ok(answer) => {
            println!("requester: unexpected answer {:?}", answer.payload);
            ok = false;
        }
        Err(e) => return Err(e.into()),
    }

    requester.disconnect().await?;
    serving.abort();
    responder.disconnect().await?;
    if ok {
        println!("done: every answer matched its request");
        Ok(())
    } else {
        Err("an answer did not match its request".into())
    }
}
