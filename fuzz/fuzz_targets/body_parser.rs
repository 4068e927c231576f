//! Any bytes as a request body: splitting and parsing never panic or hang, and every record
//! the splitter yields is exactly one JSON object that lies inside the input.
#![no_main]

use anomali_model::records;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let start = data.as_ptr() as usize;
    let mut count = 0usize;
    for record in records::split(data) {
        count += 1;
        // Each item consumes input, so there can never be more items than bytes.
        assert!(count <= data.len() + 1, "the splitter does not advance");
        let Ok(record) = record else { continue };
        let at = record.text.as_ptr() as usize;
        assert!(at >= start && at + record.text.len() <= start + data.len());
        assert!(record.text.starts_with('{'));
        assert!(record.line >= 1);
        if let Ok(indicator) = record.parse() {
            let again = serde_json::to_vec(&indicator).expect("an indicator serializes");
            assert!(anomali_model::Indicator::from_slice(&again).is_ok());
        }
    }
});
