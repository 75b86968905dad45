//! A minimal SCRAM client for driving the server in tests (RFC 5802 §3, §5).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::credentials::{ScramCredentials, salted_password};
use crate::scram::encode_saslname;
use crate::{ChannelBindingType, HashAlg, crypto};

/// The GS2 flag the test client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientCbind {
    /// `n`
    No,
    /// `y`
    Yes,
    /// `p=<type>`
    Bind(ChannelBindingType),
}

pub(crate) struct TestClient {
    hash: HashAlg,
    username: String,
    authzid: Option<String>,
    password: String,
    client_nonce: String,
    cbind: ClientCbind,
    /// The channel-binding data the client sees on its side of TLS.
    cb_data: Vec<u8>,
    /// Extension attributes appended to client-final (before the proof).
    pub(crate) final_extensions: String,
    client_first_bare: String,
    server_signature: Vec<u8>,
}

impl TestClient {
    pub(crate) fn new(hash: HashAlg, username: &str, password: &str) -> TestClient {
        TestClient {
            hash,
            username: username.to_owned(),
            authzid: None,
            password: password.to_owned(),
            client_nonce: "clientNONCE+/0123456789".to_owned(),
            cbind: ClientCbind::No,
            cb_data: Vec::new(),
            final_extensions: String::new(),
            client_first_bare: String::new(),
            server_signature: Vec::new(),
        }
    }

    pub(crate) fn with_nonce(mut self, nonce: &str) -> TestClient {
        self.client_nonce = nonce.to_owned();
        self
    }

    pub(crate) fn with_authzid(mut self, authzid: &str) -> TestClient {
        self.authzid = Some(authzid.to_owned());
        self
    }

    pub(crate) fn with_cbind(mut self, cbind: ClientCbind, cb_data: &[u8]) -> TestClient {
        self.cbind = cbind;
        self.cb_data = cb_data.to_vec();
        self
    }

    pub(crate) fn gs2_header(&self) -> String {
        let flag = match self.cbind {
            ClientCbind::No => "n".to_owned(),
            ClientCbind::Yes => "y".to_owned(),
            ClientCbind::Bind(cb_type) => format!("p={}", cb_type.name()),
        };
        let authzid =
            self.authzid.as_deref().map(|authzid| format!("a={}", encode_saslname(authzid))).unwrap_or_default();
        format!("{flag},{authzid},")
    }

    pub(crate) fn client_first(&mut self) -> Vec<u8> {
        self.client_first_bare = format!("n={},r={}", encode_saslname(&self.username), self.client_nonce);
        format!("{}{}", self.gs2_header(), self.client_first_bare).into_bytes()
    }

    /// Answers a server-first-message; panics on anything unexpected.
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Vec<u8> {
        let server_first = std::str::from_utf8(server_first).unwrap();
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            let (name, value) = attribute.split_at(2);
            match name {
                "r=" => nonce = Some(value.to_owned()),
                "s=" => salt = Some(STANDARD.decode(value).unwrap()),
                "i=" => iterations = Some(value.parse::<u32>().unwrap()),
                _ => {}
            }
        }
        let nonce = nonce.unwrap();
        assert!(nonce.starts_with(&self.client_nonce), "server must echo our nonce");
        assert!(nonce.len() > self.client_nonce.len(), "server must add its nonce");
        let salt = salt.unwrap();
        let iterations = iterations.unwrap();
        let salted_password = salted_password(self.hash, &self.password, &salt, iterations).unwrap();
        let keys = ScramCredentials::from_salted_password(self.hash, &salted_password, &salt, iterations).unwrap();
        let client_key = crypto::hmac(self.hash, &salted_password, b"Client Key").unwrap();

        let mut cbind_input = self.gs2_header().into_bytes();
        if matches!(self.cbind, ClientCbind::Bind(_)) {
            cbind_input.extend_from_slice(&self.cb_data);
        }
        let without_proof = format!("c={},r={nonce}{}", STANDARD.encode(&cbind_input), self.final_extensions);
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = crypto::hmac(self.hash, &keys.stored_key, auth_message.as_bytes()).unwrap();
        let proof = crypto::xor(&client_key, &client_signature);
        self.server_signature = crypto::hmac(self.hash, &keys.server_key, auth_message.as_bytes()).unwrap();
        format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes()
    }

    /// Checks the server-final-message `v=`.
    pub(crate) fn verify_server_final(&self, server_final: &[u8]) -> bool {
        let expected = format!("v={}", STANDARD.encode(&self.server_signature));
        server_final == expected.as_bytes()
    }
}
