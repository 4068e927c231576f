//! Mapping throughput on 10,000 generated indicators, in one run:
//! (a) `parse`: NDJSON lines into the typed model with serde_json;
//! (b) `parse_map_serialize`: the same, then mapped with the integration defaults and written
//!     as NDJSON into a reused buffer.
//! `cargo xtask bench` runs this and prints indicators/s, MB/s and the ratio b/a.

use std::hint::black_box;

use anomali_mapping::{MappingSettings, Received, map_indicator};
use anomali_model::Indicator;
use benches::generate_indicators;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const INDICATORS: usize = 10_000;

fn mapping(c: &mut Criterion) {
    let input = generate_indicators(INDICATORS, 42);
    let lines: Vec<&[u8]> = input
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let settings = MappingSettings::integration_defaults();
    let received_at = chrono::Utc::now();
    write_input_size(input.len());

    let mut group = c.benchmark_group("mapping");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(Indicator::from_slice(line).expect("generated input parses"));
            }
        })
    });
    group.bench_function("parse_map", |b| {
        b.iter(|| {
            for line in &lines {
                let indicator = Indicator::from_slice(line).expect("generated input parses");
                let received = Received {
                    at: received_at,
                    original: None,
                };
                black_box(map_indicator(indicator, &received, &settings));
            }
        })
    });
    let mut out = Vec::with_capacity(input.len() * 2);
    group.bench_function("parse_map_serialize", |b| {
        b.iter(|| {
            out.clear();
            for line in &lines {
                let indicator = Indicator::from_slice(line).expect("generated input parses");
                let received = Received {
                    at: received_at,
                    original: None,
                };
                let document = map_indicator(indicator, &received, &settings);
                document.write_json(&mut out);
                out.push(b'\n');
            }
            black_box(out.len());
        })
    });
    group.finish();
}

/// Leaves the input size beside criterion's results, for the MB/s figures of `cargo xtask bench`.
fn write_input_size(bytes: usize) {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        let path = std::path::Path::new(&home).join("mapping-input.json");
        let _ = std::fs::create_dir_all(&home);
        let _ = std::fs::write(
            path,
            format!("{{\"indicators\":{INDICATORS},\"bytes\":{bytes}}}"),
        );
    }
}

criterion_group!(benches, mapping);
criterion_main!(benches);
