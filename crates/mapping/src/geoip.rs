//! GeoIP enrichment (rule 16) from a MaxMind City database, like Elasticsearch's `geoip`
//! processor with its default City properties.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anomali_model::{GeoFields, GeoLocation};
use maxminddb::{Reader, geoip2};
use thiserror::Error;

/// A MaxMind City (or Country) database, loaded into memory; cheap to clone and share.
#[derive(Clone)]
pub struct GeoIp {
    reader: Arc<Reader<Vec<u8>>>,
    path: PathBuf,
}

/// Why a GeoIP database could not be used.
#[derive(Debug, Error)]
#[error("cannot use GeoIP database {path}: {reason}")]
pub struct GeoIpError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong (the reader's complaint, or the wrong kind of database).
    pub reason: String,
}

impl fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoIp")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl GeoIp {
    /// Loads the database at `path` and checks that it can be read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GeoIpError> {
        let path = path.as_ref().to_path_buf();
        let reader = Reader::open_readfile(&path).map_err(|source| GeoIpError {
            path: path.clone(),
            reason: source.to_string(),
        })?;
        // A City or Country database has what threat.indicator.geo needs; an ASN database
        // would open fine and silently add nothing.
        let kind = reader.metadata().database_type.clone();
        if !(kind.contains("City") || kind.contains("Country")) {
            return Err(GeoIpError {
                path,
                reason: format!(
                    "it is a {kind:?} database; a City (or Country) database is needed"
                ),
            });
        }
        Ok(Self {
            reader: Arc::new(reader),
            path,
        })
    }

    /// The geo fields for `ip`, or `None` when the database knows nothing useful about it
    /// (private addresses, for example). A damaged record counts as unknown.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoFields> {
        let result = self.reader.lookup(ip).ok()?;
        let city: geoip2::City<'_> = result.decode().ok()??;
        let country_iso_code = city.country.iso_code.map(str::to_owned);
        // Elasticsearch reports the most specific subdivision, prefixed by the country code.
        let subdivision = city.subdivisions.last();
        let region_iso_code = match (city.country.iso_code, subdivision.and_then(|s| s.iso_code)) {
            (Some(country), Some(region)) => Some(format!("{country}-{region}")),
            _ => None,
        };
        let location = match (city.location.latitude, city.location.longitude) {
            (Some(lat), Some(lon)) => Some(GeoLocation { lat, lon }),
            _ => None,
        };
        let geo = GeoFields {
            city_name: city.city.names.english.map(str::to_owned),
            continent_name: city.continent.names.english.map(str::to_owned),
            country_iso_code,
            country_name: city.country.names.english.map(str::to_owned),
            location,
            region_iso_code,
            region_name: subdivision.and_then(|s| s.names.english).map(str::to_owned),
        };
        (!geo.is_empty()).then_some(geo)
    }
}
