//! Reading a request body within its limits: the size limit (on decompressed bytes, so no zip
//! bomb gets through) and the in-flight byte budget shared by all requests.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over `max_body_bytes` (413).
    TooLarge(u64),
    /// The in-flight budget is used up (503).
    Busy,
    /// The connection failed while reading (400).
    Read(String),
    /// The client stopped sending the body (408).
    Stalled,
    /// Not valid gzip (400).
    BadGzip(String),
}

/// Budget permits held for one request; released when dropped.
#[derive(Debug, Default)]
pub(crate) struct Reservation(Option<OwnedSemaphorePermit>);

impl Reservation {
    fn reserve(&mut self, budget: &Arc<Semaphore>, bytes: usize) -> Result<(), BodyError> {
        let bytes = u32::try_from(bytes).map_err(|_| BodyError::Busy)?;
        let permit = budget
            .clone()
            .try_acquire_many_owned(bytes)
            .map_err(|_| BodyError::Busy)?;
        match &mut self.0 {
            Some(held) => held.merge(permit),
            None => self.0 = Some(permit),
        }
        Ok(())
    }
}

/// Reads the whole body, refusing more than `limit` bytes.
pub(crate) async fn read_body(
    mut body: Incoming,
    idle_timeout: Duration,
    declared_length: Option<u64>,
    limit: u64,
    budget: &Arc<Semaphore>,
    reservation: &mut Reservation,
) -> Result<Bytes, BodyError> {
    if declared_length.is_some_and(|length| length > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut collected = BytesMut::new();
    // A client that stops sending must not hold its share of the in-flight budget forever.
    while let Some(frame) = tokio::time::timeout(idle_timeout, body.frame())
        .await
        .map_err(|_| BodyError::Stalled)?
    {
        let frame = frame.map_err(|error| BodyError::Read(error.to_string()))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if collected.len() as u64 + chunk.len() as u64 > limit {
            return Err(BodyError::TooLarge(limit));
        }
        reservation.reserve(budget, chunk.len())?;
        collected.extend_from_slice(&chunk);
    }
    Ok(collected.freeze())
}

/// Decompresses a gzip body, refusing more than `limit` decompressed bytes.
pub(crate) fn gunzip(
    compressed: &[u8],
    limit: u64,
    budget: &Arc<Semaphore>,
    reservation: &mut Reservation,
) -> Result<Bytes, BodyError> {
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = decoder
            .read(&mut chunk)
            .map_err(|error| BodyError::BadGzip(error.to_string()))?;
        if read == 0 {
            break;
        }
        if out.len() as u64 + read as u64 > limit {
            return Err(BodyError::TooLarge(limit));
        }
        reservation.reserve(budget, read)?;
        out.extend_from_slice(&chunk[..read]);
    }
    Ok(Bytes::from(out))
}

/// A Go duration, as Filebeat's `wait_for_completion_timeout` takes it: `1m`, `30s`, `1h30m`,
/// `1.5s`, `500ms`. Negative or unitless values are refused.
pub(crate) fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let fail = || format!("invalid duration {text:?}: expected a value such as 30s, 1m or 1h30m");
    if text.is_empty() || text.starts_with(['-', '+']) {
        return Err(fail());
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(fail)?;
        if number_end == 0 {
            return Err(fail());
        }
        let value: f64 = rest[..number_end].parse().map_err(|_| fail())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(fail()),
        };
        total += value * seconds_per_unit;
        rest = &rest[unit_end..];
    }
    if !total.is_finite() || total > 86_400.0 * 365.0 {
        return Err(fail());
    }
    // Shorter than a commit can ever take: it would only turn some successes into 504s.
    if total < 0.001 {
        return Err(format!("invalid duration {text:?}: must be at least 1ms"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in [
            "0",
            "0s",
            "1ns",
            "+",
            "+1s",
            "",
            "-1s",
            "10",
            "1x",
            "s",
            "1m-",
            "abc",
            "1..5s",
            "999999999h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gunzip_bounds_the_decompressed_size() {
        let budget = Arc::new(Semaphore::new(1 << 30));
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20_000, "a good bomb is small: {}", bomb.len());
        let mut reservation = Reservation::default();
        assert_eq!(
            gunzip(&bomb, 1024 * 1024, &budget, &mut reservation),
            Err(BodyError::TooLarge(1024 * 1024))
        );
        let mut reservation = Reservation::default();
        assert_eq!(
            gunzip(&gzip(b"{}"), 10, &budget, &mut reservation).unwrap(),
            Bytes::from_static(b"{}")
        );
        let mut reservation = Reservation::default();
        assert!(matches!(
            gunzip(b"not gzip", 10, &budget, &mut reservation),
            Err(BodyError::BadGzip(_))
        ));
    }

    #[test]
    fn the_budget_is_shared_and_released() {
        let budget = Arc::new(Semaphore::new(100));
        let mut first = Reservation::default();
        first.reserve(&budget, 80).unwrap();
        let mut second = Reservation::default();
        assert_eq!(second.reserve(&budget, 30), Err(BodyError::Busy));
        drop(first);
        second.reserve(&budget, 30).unwrap();
        assert_eq!(budget.available_permits(), 70);
    }
}
