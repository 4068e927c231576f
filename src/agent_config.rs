//! The units Elastic Agent hands over, as a `serve` configuration.
//!
//! - INPUT unit: the policy input as Fleet renders it, with at most one stream of each kind: the
//!   `ti_anomali.intelligence` stream carries the poller's keys (as `intelligence:` in the YAML
//!   file), any other stream the webhook's (as `webhook:`); without a webhook stream nothing
//!   listens. Streams may carry `serve`'s own keys (`sweep_interval_seconds`,
//!   `source_retention_days`, `geoip_db`, `shipping`); the namespace is the input's
//!   `data_stream.namespace`.
//! - OUTPUT unit: the policy's Elasticsearch output (`hosts`, `protocol`, `api_key` or
//!   `username`/`password`, `ssl.certificate_authorities`, `ssl.ca_trusted_fingerprint`,
//!   `ssl.verification_mode`); other output keys (Beats' tuning) do not apply and are ignored.
//!
//! Errors name the key as the policy spells it.

use std::path::Path;

use serde_json::{Map, Value, json};

/// The dataset of the polled stream; any other stream is the webhook's.
const INTELLIGENCE_DATASET: &str = "ti_anomali.intelligence";

/// `data_stream.dataset` of a stream.
trait StreamDataset {
    fn pointer_dataset(&self) -> Option<&str>;
}

impl StreamDataset for Map<String, Value> {
    fn pointer_dataset(&self) -> Option<&str> {
        self.get("data_stream")?.get("dataset")?.as_str()
    }
}

/// Keys Fleet adds to a stream that are not webhook settings.
const STREAM_METADATA: &[&str] = &["id", "data_stream", "_meta", "condition"];
/// `serve` keys that may sit in the stream beside the webhook's.
const SERVE_KEYS: &[&str] = &[
    "sweep_interval_seconds",
    "source_retention_days",
    "geoip_db",
    "shipping",
];

/// A unit configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnitConfigError {
    /// The key, dotted, as the policy spells it.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for UnitConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> UnitConfigError {
    UnitConfigError {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// The `serve` configuration (as JSON) for an input unit's and the output unit's `source`.
/// `data_dir` is the component's working folder; a CA given inline is written there.
pub(crate) fn serve_config_json(
    input: &Value,
    output: &Value,
    data_dir: &Path,
) -> Result<Value, UnitConfigError> {
    let mut config = Map::new();
    config.insert(
        "data_dir".to_owned(),
        Value::String(data_dir.display().to_string()),
    );
    let namespace = match input.pointer("/data_stream/namespace") {
        None | Some(Value::Null) => "default",
        Some(Value::String(namespace)) => namespace,
        Some(_) => return Err(invalid("data_stream.namespace", "must be a string")),
    };
    config.insert("namespace".to_owned(), Value::String(namespace.to_owned()));

    let streams = match input.get("streams") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(streams)) => streams.clone(),
        Some(_) => return Err(invalid("streams", "must be a list")),
    };
    let mut webhook: Option<Map<String, Value>> = None;
    let mut intelligence: Option<Map<String, Value>> = None;
    for (n, stream) in streams.into_iter().enumerate() {
        let Value::Object(stream) = stream else {
            return Err(invalid(&format!("streams[{n}]"), "must be an object"));
        };
        let polled = stream.pointer_dataset() == Some(INTELLIGENCE_DATASET);
        let mut keys = Map::new();
        for (key, value) in stream {
            if STREAM_METADATA.contains(&key.as_str()) {
                continue;
            }
            if SERVE_KEYS.contains(&key.as_str()) {
                config.insert(key, value);
            } else {
                keys.insert(key, value);
            }
        }
        let (slot, what) = if polled {
            (&mut intelligence, "intelligence")
        } else {
            (&mut webhook, "webhook")
        };
        if slot.is_some() {
            return Err(invalid(
                &format!("streams[{n}]"),
                format!("a second {what} stream: give at most one of each"),
            ));
        }
        *slot = Some(keys);
    }
    let webhook = match (webhook, &intelligence) {
        (Some(webhook), _) => webhook,
        // Polling alone: no listener.
        (None, Some(_)) => Map::from_iter([("enabled".to_owned(), Value::Bool(false))]),
        (None, None) => Map::new(),
    };
    config.insert("webhook".to_owned(), Value::Object(webhook));
    if let Some(intelligence) = intelligence {
        config.insert("intelligence".to_owned(), Value::Object(intelligence));
    }
    config.insert(
        "elasticsearch".to_owned(),
        elasticsearch_connection(output, data_dir)?,
    );
    Ok(Value::Object(config))
}

/// The `elasticsearch:` keys for the output unit's `source`.
fn elasticsearch_connection(output: &Value, data_dir: &Path) -> Result<Value, UnitConfigError> {
    match output.get("type").and_then(Value::as_str) {
        Some("elasticsearch") => {}
        Some(other) => {
            return Err(invalid(
                "type",
                format!("output type {other:?} is not supported (only elasticsearch)"),
            ));
        }
        None => return Err(invalid("type", "the output has no type")),
    }
    let protocol = match output.get("protocol") {
        None | Some(Value::Null) => "http",
        Some(Value::String(p)) if p == "http" || p == "https" => p.as_str(),
        Some(_) => return Err(invalid("protocol", "must be http or https")),
    };
    let hosts: Vec<String> = match output.get("hosts") {
        Some(Value::Array(hosts)) if !hosts.is_empty() => hosts
            .iter()
            .enumerate()
            .map(|(n, host)| match host.as_str() {
                Some(host) if host.contains("://") => Ok(host.to_owned()),
                Some(host) => Ok(format!("{protocol}://{host}")),
                None => Err(invalid(&format!("hosts[{n}]"), "must be a string")),
            })
            .collect::<Result<_, _>>()?,
        Some(Value::String(host)) => vec![if host.contains("://") {
            host.clone()
        } else {
            format!("{protocol}://{host}")
        }],
        _ => return Err(invalid("hosts", "the output needs at least one host")),
    };
    let mut connection = json!({ "hosts": hosts });
    for key in ["api_key", "username", "password"] {
        match output.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(value)) if value.is_empty() => {}
            Some(Value::String(value)) => {
                connection[key] = Value::String(value.clone());
            }
            Some(_) => return Err(invalid(key, "must be a string")),
        }
    }
    if let Some(ssl) = output.get("ssl").filter(|s| !s.is_null()) {
        let Some(ssl) = ssl.as_object() else {
            return Err(invalid("ssl", "must be an object"));
        };
        if let Some(authorities) = ssl.get("certificate_authorities").filter(|a| !a.is_null()) {
            let list: Vec<&str> = match authorities {
                Value::Array(list) => list
                    .iter()
                    .enumerate()
                    .map(|(n, ca)| {
                        ca.as_str().ok_or_else(|| {
                            invalid(
                                &format!("ssl.certificate_authorities[{n}]"),
                                "must be a string",
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Value::String(one) => vec![one.as_str()],
                _ => {
                    return Err(invalid(
                        "ssl.certificate_authorities",
                        "must be a list of PEM texts or file paths",
                    ));
                }
            };
            if let Some(file) = ca_file(&list, data_dir)? {
                connection["ca_file"] = Value::String(file);
            }
        }
        match ssl.get("ca_trusted_fingerprint") {
            None | Some(Value::Null) => {}
            Some(Value::String(fingerprint)) => {
                connection["ca_fingerprint"] = Value::String(fingerprint.clone());
            }
            Some(_) => return Err(invalid("ssl.ca_trusted_fingerprint", "must be a string")),
        }
        match ssl.get("verification_mode") {
            None | Some(Value::Null) => {}
            Some(Value::String(mode)) => {
                connection["verification_mode"] = Value::String(mode.clone());
            }
            Some(_) => return Err(invalid("ssl.verification_mode", "must be a string")),
        }
    }
    Ok(connection)
}

/// One CA file for the connection: a single path as it is; inline PEM texts (Fleet may send
/// either) or several paths gathered into `<data_dir>/output-ca.pem`.
fn ca_file(list: &[&str], data_dir: &Path) -> Result<Option<String>, UnitConfigError> {
    const KEY: &str = "ssl.certificate_authorities";
    match list {
        [] => Ok(None),
        [one] if !one.contains("-----BEGIN") => Ok(Some((*one).to_owned())),
        many => {
            let mut pem = String::new();
            for (n, entry) in many.iter().enumerate() {
                if entry.contains("-----BEGIN") {
                    pem.push_str(entry);
                } else {
                    let text = std::fs::read_to_string(entry).map_err(|error| {
                        invalid(
                            &format!("{KEY}[{n}]"),
                            format!("cannot read {entry}: {error}"),
                        )
                    })?;
                    pem.push_str(&text);
                }
                pem.push('\n');
            }
            std::fs::create_dir_all(data_dir)
                .map_err(|error| invalid(KEY, format!("cannot create the data folder: {error}")))?;
            let path = data_dir.join("output-ca.pem");
            std::fs::write(&path, pem).map_err(|error| {
                invalid(KEY, format!("cannot write {}: {error}", path.display()))
            })?;
            Ok(Some(path.display().to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn input() -> Value {
        json!({
            "id": "ti-anomali-webhook-1", "type": "ti-anomali", "name": "ti_anomali-1",
            "revision": 3, "data_stream": {"namespace": "prod"},
            "meta": {"package": {"name": "ti_anomali", "version": "2.0.0"}},
            "streams": [{
                "id": "ti-anomali-ti_anomali.threatstream-1",
                "data_stream": {"dataset": "ti_anomali.threatstream", "type": "logs"},
                "listen_address": "0.0.0.0", "listen_port": 8181, "url": "/",
                "hmac": {"key": "k", "type": "sha256", "header": "X-Filebeat-Signature", "prefix": "sha256="},
                "sweep_interval_seconds": 2,
                "shipping": {"max_in_flight": 4}
            }]
        })
    }

    fn output() -> Value {
        json!({"type": "elasticsearch", "hosts": ["es1:9200", "https://es2:9200"],
               "protocol": "https", "api_key": "id:key", "preset": "balanced",
               "ssl": {"ca_trusted_fingerprint": "ab:cd", "verification_mode": "full"}})
    }

    #[test]
    fn units_become_the_serve_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let config = serve_config_json(&input(), &output(), dir.path()).unwrap();
        assert_eq!(config["namespace"], "prod");
        assert_eq!(config["webhook"]["listen_port"], 8181);
        assert_eq!(config["webhook"]["hmac"]["key"], "k");
        assert!(config["webhook"].get("id").is_none());
        assert!(config["webhook"].get("data_stream").is_none());
        assert_eq!(config["sweep_interval_seconds"], 2);
        assert_eq!(config["shipping"]["max_in_flight"], 4);
        assert_eq!(
            config["elasticsearch"]["hosts"],
            json!(["https://es1:9200", "https://es2:9200"])
        );
        assert_eq!(config["elasticsearch"]["api_key"], "id:key");
        assert_eq!(config["elasticsearch"]["ca_fingerprint"], "ab:cd");
        assert!(
            config["elasticsearch"].get("preset").is_none(),
            "beats tuning keys do not apply"
        );
    }

    fn intelligence_stream() -> Value {
        json!({
            "id": "ti-anomali-ti_anomali.intelligence-1",
            "data_stream": {"dataset": "ti_anomali.intelligence", "type": "logs"},
            "username": "analyst", "api_key": "secret", "interval": "10m",
            "ssl": {"verification_mode": "certificate", "certificate_authorities": ["/etc/ca.pem"]}
        })
    }

    #[test]
    fn the_intelligence_stream_becomes_the_poller_beside_the_webhook() {
        let dir = tempfile::tempdir().unwrap();
        let mut both = input();
        both["streams"]
            .as_array_mut()
            .unwrap()
            .push(intelligence_stream());
        let config = serve_config_json(&both, &output(), dir.path()).unwrap();
        assert_eq!(config["webhook"]["listen_port"], 8181);
        assert_eq!(
            config["intelligence"],
            json!({"username": "analyst", "api_key": "secret", "interval": "10m",
                   "ssl": {"verification_mode": "certificate", "certificate_authorities": ["/etc/ca.pem"]}})
        );
        // What `serve` reads: the `ssl` block reaches the poller as the policy gave it.
        let poll: anomali_agent_input::poll::PollConfig =
            serde_json::from_value(config["intelligence"].clone()).unwrap();
        assert_eq!(
            poll.ssl.verification_mode,
            anomali_agent_input::poll::TlsVerification::Certificate
        );
        assert_eq!(poll.ssl.certificate_authorities, ["/etc/ca.pem"]);
    }

    #[test]
    fn the_intelligence_stream_alone_turns_the_listener_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut alone = input();
        alone["streams"] = json!([intelligence_stream()]);
        let config = serve_config_json(&alone, &output(), dir.path()).unwrap();
        assert_eq!(config["webhook"], json!({"enabled": false}));
        assert_eq!(config["intelligence"]["username"], "analyst");
    }

    #[test]
    fn an_inline_ca_is_written_to_the_data_folder() {
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        let output = json!({"type": "elasticsearch", "hosts": ["http://es:9200"],
                            "ssl": {"certificate_authorities": [pem]}});
        let config = serve_config_json(&input(), &output, dir.path()).unwrap();
        let file = config["elasticsearch"]["ca_file"].as_str().unwrap();
        assert!(std::fs::read_to_string(file).unwrap().contains("MIIB"));
    }

    #[test]
    fn bad_units_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (json!({"type": "logstash", "hosts": ["x"]}), "type"),
            (json!({"type": "elasticsearch"}), "hosts"),
            (json!({"type": "elasticsearch", "hosts": [1]}), "hosts[0]"),
            (
                json!({"type": "elasticsearch", "hosts": ["h"], "api_key": 5}),
                "api_key",
            ),
            (
                json!({"type": "elasticsearch", "hosts": ["h"], "ssl": {"certificate_authorities": 3}}),
                "ssl.certificate_authorities",
            ),
        ];
        for (output, key) in cases {
            let error = serve_config_json(&input(), &output, dir.path()).unwrap_err();
            assert_eq!(error.key, key, "{output}");
        }
        for (bad_input, key) in [
            (json!({"streams": "nope"}), "streams"),
            (json!({"streams": [{}, 3]}), "streams[1]"),
            (json!({"streams": [{}, {}]}), "streams[1]"),
            (
                json!({"streams": [
                    {"data_stream": {"dataset": "ti_anomali.intelligence"}},
                    {"data_stream": {"dataset": "ti_anomali.intelligence"}}
                ]}),
                "streams[1]",
            ),
        ] {
            let error = serve_config_json(&bad_input, &output(), dir.path()).unwrap_err();
            assert_eq!(error.key, key, "{bad_input}");
        }
    }
}
