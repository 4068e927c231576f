//! The data this workspace moves: ThreatStream indicators in, ECS documents out.
//!
//! - Input: [`Indicator`], one object as Anomali's Elastic Extension pushes it (or as the
//!   ThreatStream API returns it). Every field the reference integration knows has a named slot;
//!   values keep the JSON type they arrived with (ids and confidences come as numbers or strings),
//!   and unknown keys are kept in [`Indicator::unknown`], never dropped.
//! - Framing: [`records::split`] cuts a request body or file into one raw record per indicator
//!   (NDJSON, a JSON array, one object, or concatenated objects), in input order, each with the line
//!   it starts on. A malformed record yields an error naming its line and does not hide the others.
//! - Output: [`EcsDocument`], the ECS document the mapping crate builds. Serializing it never
//!   writes a null, an empty string, an empty array or an empty object.
//!
//! Nothing here does I/O; parsing never panics on input data.

mod ecs;
mod indicator;
pub mod json;
pub mod records;
mod timestamp;

pub use ecs::{
    AgentFields, AnomaliFields, AsFields, AsOrganization, DataStreamFields, DocumentRole,
    ECS_VERSION, EcsDocument, EcsVersion, EmailFields, ErrorFields, EventFields, FeedFields,
    FileFields, FileHash, GeoFields, GeoLocation, IndicatorFields, InputFields, LabelFields,
    Marking, RelatedFields, ThreatFields, ThreatstreamFields, Tlp, UrlFields, pruned,
};
pub use indicator::Indicator;
pub use json::{JsonError, write_json};
pub use records::{RawRecord, RecordError};
pub use timestamp::Timestamp;
