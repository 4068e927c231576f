//! [`Capabilities`]: what a cluster offers, so the sink works on full and minimal clusters alike.

/// Features the sink uses when the cluster has them, and replaces when it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Index lifecycle management (the `x-pack-ilm` module): source retention by policy.
    pub ilm: bool,
    /// Data stream lifecycle (the `data-streams` module, which holds `DataStreamsPlugin`, the
    /// `_data_stream` APIs and the lifecycle service): source retention by `data_retention`.
    /// The minimal distribution creates data streams from templates (that is in the server) but
    /// has no such module, so neither the lifecycle nor `GET/DELETE _data_stream`.
    pub data_stream_lifecycle: bool,
    /// `constant_keyword` fields (`constant-keyword` module); else `keyword`.
    pub constant_keyword: bool,
    /// `wildcard` fields (`wildcard` module); else `keyword`.
    pub wildcard: bool,
    /// `match_only_text` fields (`mapper-extras` module); else `text`.
    pub match_only_text: bool,
}

impl Capabilities {
    /// A full default distribution.
    pub const FULL: Self = Self {
        ilm: true,
        data_stream_lifecycle: true,
        constant_keyword: true,
        wildcard: true,
        match_only_text: true,
    };

    /// What the minimal integ-test distribution offers (no module for any of these).
    pub const MINIMAL: Self = Self {
        ilm: false,
        data_stream_lifecycle: false,
        constant_keyword: false,
        wildcard: false,
        match_only_text: false,
    };

    /// Reads the capabilities from the module names of `GET _nodes/plugins` (every node must have
    /// a module for the cluster to offer it; pass the intersection).
    pub fn from_modules<'a>(modules: impl IntoIterator<Item = &'a str>) -> Self {
        let mut capabilities = Self::MINIMAL;
        for module in modules {
            match module {
                "x-pack-ilm" => capabilities.ilm = true,
                "data-streams" => capabilities.data_stream_lifecycle = true,
                "constant-keyword" | "x-pack-constant-keyword" => {
                    capabilities.constant_keyword = true
                }
                "wildcard" | "x-pack-wildcard" => capabilities.wildcard = true,
                "mapper-extras" => capabilities.match_only_text = true,
                _ => {}
            }
        }
        capabilities
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimal_distribution_offers_none_of_them() {
        // What `GET _nodes/plugins` lists on the 9.5.4 integ-test-zip.
        let modules = ["apm", "transport-netty4", "x-pack-core", "x-pack-security"];
        assert_eq!(Capabilities::from_modules(modules), Capabilities::MINIMAL);
    }

    #[test]
    fn a_full_distribution_offers_all() {
        let modules = [
            "x-pack-ilm",
            "constant-keyword",
            "wildcard",
            "mapper-extras",
            "data-streams",
        ];
        assert_eq!(Capabilities::from_modules(modules), Capabilities::FULL);
    }

    #[test]
    fn data_stream_lifecycle_comes_with_the_data_streams_module_alone() {
        let capabilities = Capabilities::from_modules(["x-pack-core", "data-streams"]);
        assert!(capabilities.data_stream_lifecycle);
        assert!(!capabilities.ilm);
    }
}
