//! Shared fixtures for the criterion benchmarks in `benches/` (run them with `cargo xtask bench`).
//!
//! [`generate_indicators`] makes realistic ThreatStream indicators as NDJSON, deterministically
//! (same seed, same bytes), in roughly the upstream sample's mix: half file hashes, a quarter
//! URLs, the rest IPs, domains and e-mail addresses. Nothing large is committed.

use std::fmt::Write as _;

/// A small deterministic generator (xorshift64*), so runs compare like with like.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    fn word(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| char::from(ALPHABET[self.below(36) as usize]))
            .collect()
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }
}

/// `count` indicators, one JSON object per line.
pub fn generate_indicators(count: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(count * 700);
    for index in 0..count {
        let id = 1_000_000_000 + rng.below(3_000_000_000);
        let update_id = 1_000_000_000 + rng.below(3_000_000_000);
        let confidence = rng.below(102) as i64 - 1;
        let severity = ["low", "medium", "high", "very-high"][rng.below(4) as usize];
        let classification = if rng.below(2) == 0 {
            "private"
        } else {
            "public"
        };
        let circles: Vec<String> = (0..1 + rng.below(3))
            .map(|_| rng.below(1000).to_string())
            .collect();
        let mut line = format!(
            "{{\"added_at\":\"2020-10-08T12:22:11\",\"classification\":\"{classification}\",\
             \"confidence\":{confidence},\"date_first\":\"2020-10-09T18:{:02}:{:02}\",\
             \"date_last\":\"2020-10-09T18:{:02}:{:02}\",\"detail2\":\"imported by user {}\",\
             \"id\":{id},\"import_session_id\":{},\"resource_uri\":\"/api/v1/intelligence/P{}/\",\
             \"severity\":\"{severity}\",\"source\":\"Phony generated indicator\",\
             \"source_feed_id\":{},\"state\":\"active\",\"trusted_circle_ids\":\"{}\",\
             \"update_id\":{update_id}",
            rng.below(60),
            rng.below(60),
            rng.below(60),
            rng.below(60),
            rng.below(1000),
            rng.below(5000),
            rng.below(50_000_000_000),
            rng.below(4000),
            circles.join(","),
        );
        let detail = format!("{},popularity=low,{}", rng.word(6), rng.word(4));
        let _ = match index % 20 {
            0..=9 => {
                let len = [32, 32, 40, 64][rng.below(4) as usize];
                write!(
                    line,
                    ",\"itype\":\"mal_md5\",\"value_type\":\"md5\",\"md5\":\"{}\",\
                       \"maltype\":\"malware:{}\",\"detail\":\"{detail}\"",
                    rng.hex(len),
                    rng.word(5)
                )
            }
            10..=14 => write!(
                line,
                ",\"itype\":\"phish_url\",\"value_type\":\"url\",\
                 \"url\":\"https://{}.example.net/{}/{}?{}={}\",\"srcip\":\"192.168.{}.{}\",\
                 \"country\":\"US\",\"lat\":37.751,\"detail\":\"{detail}\"",
                rng.word(8),
                rng.word(5),
                rng.word(7),
                rng.word(4),
                rng.word(6),
                rng.below(256),
                rng.below(256),
            ),
            15..=17 => write!(
                line,
                ",\"itype\":\"mal_ip\",\"value_type\":\"ip\",\"srcip\":\"203.0.{}.{}\",\
                 \"asn\":\"{}\",\"org\":\"Example Hosting\",\"country\":\"FR\",\
                 \"lat\":48.8582,\"lon\":2.3387",
                rng.below(256),
                rng.below(256),
                rng.below(65000),
            ),
            18 => write!(
                line,
                ",\"itype\":\"c2_domain\",\"value_type\":\"domain\",\"domain\":\"{}.example.com\",\
                 \"srcip\":\"192.168.2.{}\",\"detail\":\"{detail}\"",
                rng.word(9),
                rng.below(256),
            ),
            _ => write!(
                line,
                ",\"itype\":\"phish_email\",\"value_type\":\"email\",\"email\":\"{}@example.org\"",
                rng.word(8),
            ),
        };
        line.push_str("}\n");
        out.push_str(&line);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_lines_are_indicators_and_deterministic() {
        let data = generate_indicators(200, 7);
        assert_eq!(data, generate_indicators(200, 7));
        let lines: Vec<&[u8]> = data
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 200);
        for line in lines {
            let value: serde_json::Value = serde_json::from_slice(line).unwrap();
            assert!(value.get("itype").is_some());
        }
    }
}
