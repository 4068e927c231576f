//! The two streams of the reference integration and where each one's documents go.
//!
//! - `threatstream` (pushed by Anomali's extension to the webhook): source data stream
//!   `logs-ti_anomali.threatstream-<ns>`, latest index `logs-ti_anomali_latest.threatstream-2`,
//!   expiry on `anomali.threatstream.deleted_at`.
//! - `intelligence` (polled from the Intelligence API): source data stream
//!   `logs-ti_anomali.intelligence-<ns>`, latest index `logs-ti_anomali_latest.intelligence-3`,
//!   expiry on `anomali.threatstream.deletion_scheduled_at`.

use anomali_model::EcsDocument;

/// One of the integration's data streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Indicators pushed to the webhook (`ti_anomali.threatstream`).
    Threatstream,
    /// Indicators polled from the Intelligence API (`ti_anomali.intelligence`).
    Intelligence,
}

impl Stream {
    /// Both streams.
    pub const ALL: [Stream; 2] = [Stream::Threatstream, Stream::Intelligence];

    /// The stream of documents of `dataset`; anything but the intelligence dataset is the
    /// threatstream one (the webhook's, and the only one before the poller existed).
    pub fn of_dataset(dataset: &str) -> Self {
        if dataset == EcsDocument::INTELLIGENCE_DATASET {
            Stream::Intelligence
        } else {
            Stream::Threatstream
        }
    }

    /// `event.dataset` and `data_stream.dataset`.
    pub fn dataset(self) -> &'static str {
        match self {
            Stream::Threatstream => EcsDocument::THREATSTREAM_DATASET,
            Stream::Intelligence => EcsDocument::INTELLIGENCE_DATASET,
        }
    }

    /// The source data stream's index template, also the prefix of its data streams.
    pub fn source_template(self) -> &'static str {
        match self {
            Stream::Threatstream => "logs-ti_anomali.threatstream",
            Stream::Intelligence => "logs-ti_anomali.intelligence",
        }
    }

    /// The ILM policy of the source data stream (5 days, as the reference).
    pub fn source_policy(self) -> &'static str {
        match self {
            Stream::Threatstream => "logs-ti_anomali.threatstream-default_policy",
            Stream::Intelligence => "logs-ti_anomali.intelligence-default_policy",
        }
    }

    /// The latest index, versioned as the reference's (a mapping change bumps the suffix).
    pub fn latest_index(self) -> &'static str {
        match self {
            Stream::Threatstream => "logs-ti_anomali_latest.threatstream-2",
            Stream::Intelligence => "logs-ti_anomali_latest.intelligence-3",
        }
    }

    /// The alias detection rules point at.
    pub fn latest_alias(self) -> &'static str {
        match self {
            Stream::Threatstream => "logs-ti_anomali_latest.threatstream",
            Stream::Intelligence => "logs-ti_anomali_latest.intelligence",
        }
    }

    /// The date after which an indicator leaves the latest index (the reference transform's
    /// retention field).
    pub fn expiry_field(self) -> &'static str {
        match self {
            Stream::Threatstream => "anomali.threatstream.deleted_at",
            Stream::Intelligence => "anomali.threatstream.deletion_scheduled_at",
        }
    }

    /// `input.type` as Fleet-ingested documents of the stream carry it: the webhook is the
    /// `http_endpoint` input; the reference polls with the CEL input.
    pub fn input_type(self) -> &'static str {
        match self {
            Stream::Threatstream => "http_endpoint",
            Stream::Intelligence => "cel",
        }
    }

    fn slot(self) -> usize {
        match self {
            Stream::Threatstream => 0,
            Stream::Intelligence => 1,
        }
    }
}

/// Where the documents go: the namespace of the source data streams and the latest aliases.
#[derive(Debug, Clone)]
pub struct IndexNames {
    /// The namespace of the source data streams, such as `default`.
    pub namespace: String,
    latest_aliases: [String; 2],
}

impl IndexNames {
    /// The reference's names in `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            latest_aliases: Stream::ALL.map(|stream| stream.latest_alias().to_owned()),
        }
    }

    /// The same, with `stream`'s latest documents under another alias (tests, benchmarks).
    pub fn with_latest_alias(mut self, stream: Stream, alias: impl Into<String>) -> Self {
        self.latest_aliases[stream.slot()] = alias.into();
        self
    }

    /// The source data stream of `stream`: `logs-ti_anomali.<stream>-<namespace>`.
    pub fn source(&self, stream: Stream) -> String {
        format!("{}-{}", stream.source_template(), self.namespace)
    }

    /// The latest alias of `stream`.
    pub fn latest_alias(&self, stream: Stream) -> &str {
        &self.latest_aliases[stream.slot()]
    }

    /// Every latest alias, comma-separated, for reads across both streams.
    pub fn all_latest_aliases(&self) -> String {
        self.latest_aliases.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stream_has_the_reference_names() {
        let names = IndexNames::new("prod");
        assert_eq!(
            names.source(Stream::Intelligence),
            "logs-ti_anomali.intelligence-prod"
        );
        assert_eq!(
            names.source(Stream::Threatstream),
            "logs-ti_anomali.threatstream-prod"
        );
        assert_eq!(
            Stream::of_dataset("ti_anomali.intelligence"),
            Stream::Intelligence
        );
        assert_eq!(
            Stream::of_dataset("ti_anomali.threatstream"),
            Stream::Threatstream
        );
        for stream in Stream::ALL {
            assert!(stream.latest_index().starts_with(stream.latest_alias()));
            assert_eq!(Stream::of_dataset(stream.dataset()), stream);
        }
        let names = names.with_latest_alias(Stream::Intelligence, "x");
        assert_eq!(
            names.all_latest_aliases(),
            "logs-ti_anomali_latest.threatstream,x"
        );
    }
}
