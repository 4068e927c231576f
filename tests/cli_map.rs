//! `ti-anomali map` as a user runs it: real binary, real files, real exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn ti_anomali(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // The binary may exit (bad arguments) before reading its input: a closed pipe is fine.
    if let Err(error) = child.stdin.take().expect("stdin").write_all(stdin) {
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::BrokenPipe,
            "write stdin: {error}"
        );
    }
    child.wait_with_output().expect("the binary ends")
}

fn documents(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each output line is a JSON document"))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const GOOD_1: &str =
    r#"{"id": 1, "itype": "mal_ip", "srcip": "203.0.113.9", "added_at": "2026-01-01T00:00:00"}"#;
const GOOD_3: &str = r#"{"id": 3, "itype": "mal_domain", "domain": "bad.example", "added_at": "2026-01-01T00:00:00"}"#;

#[test]
fn a_malformed_line_is_named_and_the_others_are_still_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.ndjson");
    std::fs::write(
        &input,
        format!("{GOOD_1}\n{{\"id\": 2, \"itype\": }}\n{GOOD_3}\n"),
    )
    .unwrap();
    let output = ti_anomali(&["map", "--input", input.to_str().unwrap()], b"");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let docs = documents(&output);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["anomali"]["threatstream"]["id"], "1");
    assert_eq!(docs[1]["anomali"]["threatstream"]["id"], "3");
    let message = stderr(&output);
    assert!(
        message.contains("mixed.ndjson: line 2 column 20: malformed JSON"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
}

#[test]
fn a_non_object_line_is_named() {
    let output = ti_anomali(&["map"], format!("{GOOD_1}\n[1, 2]\n").as_bytes());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(documents(&output).len(), 1);
    assert!(
        stderr(&output).contains("<stdin>: line 2: expected a JSON object"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn arrays_and_concatenated_objects_are_read() {
    let array = format!("[\n{GOOD_1},\n{GOOD_3}\n]");
    let output = ti_anomali(&["map", "--input", "-"], array.as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(documents(&output).len(), 2);

    let concatenated = format!("{GOOD_1}{GOOD_3}\n{{\n  \"id\": 4\n}}");
    let output = ti_anomali(&["map"], concatenated.as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    let ids: Vec<Value> = documents(&output)
        .iter()
        .map(|d| d["anomali"]["threatstream"]["id"].clone())
        .collect();
    assert_eq!(ids, ["1", "3", "4"]);
}

#[test]
fn flags_apply_expiry_tags_and_the_original_event() {
    let output = ti_anomali(
        &[
            "map",
            "--ioc-expiration-duration",
            "1m",
            "--tag",
            "forwarded",
            "--tag",
            "team-a",
            "--preserve-original-event",
        ],
        format!("{GOOD_1}\n").as_bytes(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = &documents(&output)[0];
    assert_eq!(
        doc["anomali"]["threatstream"]["deleted_at"],
        "2026-01-01T00:01:00.000Z"
    );
    assert_eq!(
        doc["tags"],
        serde_json::json!(["preserve_original_event", "forwarded", "team-a"])
    );
    assert_eq!(doc["event"]["original"], GOOD_1);
}

#[test]
fn without_flags_nothing_optional_is_applied() {
    let output = ti_anomali(&["map"], GOOD_1.as_bytes());
    let doc = &documents(&output)[0];
    assert!(
        doc["anomali"]["threatstream"].get("deleted_at").is_none(),
        "{doc}"
    );
    assert!(doc.get("tags").is_none(), "{doc}");
    assert!(doc["event"].get("original").is_none(), "{doc}");
}

#[test]
fn empty_input_maps_to_nothing() {
    let output = ti_anomali(&["map"], b"\n \n");
    assert!(output.status.success());
    assert!(output.stdout.is_empty());
}

#[test]
fn configuration_errors_are_reported_once_with_exit_code_2() {
    let output = ti_anomali(
        &["map", "--ioc-expiration-duration", "90x"],
        GOOD_1.as_bytes(),
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("invalid ioc_expiration_duration \"90x\""),
        "{message}"
    );
    assert!(output.stdout.is_empty());

    let output = ti_anomali(&["map", "--input", "/nonexistent/indicators.ndjson"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot read /nonexistent/indicators.ndjson"),
        "{}",
        stderr(&output)
    );

    let dir = tempfile::tempdir().unwrap();
    let not_a_db = dir.path().join("fake.mmdb");
    std::fs::write(&not_a_db, b"not a maxmind database").unwrap();
    let output = ti_anomali(
        &["map", "--geoip-db", not_a_db.to_str().unwrap()],
        GOOD_1.as_bytes(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot use GeoIP database"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn binary_garbage_does_not_crash() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let output = ti_anomali(&["map"], &garbage);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(!stderr(&output).contains("panicked"));
}

#[test]
fn closed_output_and_error_pipes_end_quietly_with_the_right_status() {
    let input = format!("{{\"id\": }}\n{}", format!("{GOOD_1}\n").repeat(20_000));
    for (close_stdout, close_stderr) in [(true, false), (false, true), (true, true)] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ti-anomali"))
            .arg("map")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if close_stdout {
            drop(child.stdout.take());
        }
        if close_stderr {
            drop(child.stderr.take());
        }
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "one bad record was met: {close_stdout} {close_stderr}"
        );
        assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
    }
}
