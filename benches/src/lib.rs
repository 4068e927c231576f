//! Criterion benchmarks live in `benches/`; run them with `cargo xtask bench`.
