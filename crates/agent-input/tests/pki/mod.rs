//! Shared by the TLS tests: a CA, a server certificate for `localhost` and a client
//! certificate, all made by the test, written as PEM files in a temporary folder.

#![allow(dead_code, reason = "each test file uses a part")]

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// Files in `dir`: `ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    /// The client certificate followed by its key, as `reqwest::Identity::from_pem` takes it.
    pub client_identity_pem: String,
}

impl Pki {
    pub fn make() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["client.example".to_owned()])
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();
        write("ca.pem", ca.as_ref().pem());
        write("server.pem", server.pem());
        write("server.key", server_key.serialize_pem());
        write("client.pem", client.pem());
        write("client.key", client_key.serialize_pem());
        Self {
            ca_pem: ca.as_ref().pem(),
            client_identity_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
            dir,
        }
    }

    /// The path of one of the files, as text (as a configuration holds it).
    pub fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}
