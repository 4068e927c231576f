//! Setup on start: what the cluster offers, then the templates and the latest index (idempotent).

use elasticsearch::http::Method;
use serde_json::Value;

use crate::capabilities::Capabilities;
use crate::client::EsClient;
use crate::error::EsError;
use crate::names::Stream;
use crate::templates;
use crate::upgrade::alias_holders;

/// Reads the modules every node has and turns them into [`Capabilities`].
pub async fn detect_capabilities(client: &EsClient) -> Result<Capabilities, EsError> {
    let answer = client
        .json(
            Method::Get,
            "/_nodes/plugins?filter_path=nodes.*.modules.name",
            None,
        )
        .await?;
    if answer.status != 200 {
        return Err(status_error(
            "GET _nodes/plugins",
            answer.status,
            &answer.body,
        ));
    }
    let nodes: Vec<Vec<String>> = answer.body["nodes"]
        .as_object()
        .map(|nodes| {
            nodes
                .values()
                .map(|node| {
                    node["modules"]
                        .as_array()
                        .map(|m| {
                            m.iter()
                                .filter_map(|m| m["name"].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    let Some(first) = nodes.first() else {
        return Ok(Capabilities::MINIMAL);
    };
    // A module counts only when every node has it.
    let common = first
        .iter()
        .filter(|m| nodes.iter().all(|n| n.contains(m)))
        .map(String::as_str);
    Ok(Capabilities::from_modules(common))
}

/// Writes `stream`'s ILM policy (when the cluster has ILM) and source template, and creates its
/// latest index (normally [`Stream::latest_index`]) with its alias when it does not exist. Safe to run at every start. When another index
/// is the alias's explicit write index (an older version), the latest index is created without
/// the alias: Elasticsearch refuses two write indices, and
/// [`upgrade_latest_index`](crate::upgrade_latest_index) moves the alias after copying.
pub async fn ensure_setup(
    client: &EsClient,
    capabilities: Capabilities,
    stream: Stream,
    latest_index: &str,
    latest_alias: &str,
) -> Result<(), EsError> {
    if capabilities.ilm {
        let answer = client
            .json(
                Method::Put,
                &format!("/_ilm/policy/{}", stream.source_policy()),
                Some(&templates::source_policy()),
            )
            .await?;
        expect_ok("PUT ILM policy", &answer.body, answer.status)?;
    }
    let answer = client
        .json(
            Method::Put,
            &format!("/_index_template/{}", stream.source_template()),
            Some(&templates::source_index_template(stream, capabilities)),
        )
        .await?;
    expect_ok("PUT index template", &answer.body, answer.status)?;
    let exists = client
        .json(Method::Head, &format!("/{latest_index}"), None)
        .await?;
    if exists.status == 404 {
        let mut body = templates::latest_index(stream, capabilities);
        let other_writer = alias_holders(client, latest_alias)
            .await?
            .iter()
            .any(|holder| holder.index != latest_index && holder.is_write_index);
        body["aliases"] = if other_writer {
            serde_json::json!({})
        } else {
            serde_json::json!({ latest_alias: {"is_write_index": true} })
        };
        let answer = client
            .json(Method::Put, &format!("/{latest_index}"), Some(&body))
            .await?;
        // Another instance may have created it in between.
        if answer.status != 400 || !answer.body.to_string().contains("resource_already_exists") {
            expect_ok("create the latest index", &answer.body, answer.status)?;
        }
    }
    Ok(())
}

fn expect_ok(what: &str, body: &Value, status: u16) -> Result<(), EsError> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(status_error(what, status, body))
    }
}

pub(crate) fn status_error(what: &str, status: u16, body: &Value) -> EsError {
    let mut text = body.to_string();
    text.truncate(500);
    EsError::Status {
        what: what.to_owned(),
        status,
        body: text,
    }
}
