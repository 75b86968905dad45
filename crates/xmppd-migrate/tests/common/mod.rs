//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use xmppd_jid::DomainJid;
use xmppd_migrate::{Error, Reader, UserData};

/// A fixture under `tests/data/`.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// Everything a reader yields: the users and the errors, in order.
pub struct Outcome {
    pub users: Vec<(DomainJid, UserData)>,
    pub errors: Vec<Error>,
}

impl Outcome {
    pub fn user(&self, host: &str, name: &str) -> &UserData {
        self.users
            .iter()
            .find(|(domain, user)| domain.as_str() == host && user.username == name)
            .map(|(_, user)| user)
            .unwrap_or_else(|| panic!("no user {name}@{host} in {:?}", self.names()))
    }

    pub fn names(&self) -> Vec<String> {
        self.users.iter().map(|(host, user)| format!("{}@{host}", user.username)).collect()
    }

    /// The fatal error that ended the reading, if any.
    pub fn fatal(&self) -> Option<&Error> {
        self.errors.last().filter(|error| error.is_fatal())
    }
}

pub fn run(reader: Reader<'_>) -> Outcome {
    let mut outcome = Outcome { users: Vec::new(), errors: Vec::new() };
    for item in reader {
        match item {
            Ok(user) => outcome.users.push(user),
            Err(error) => outcome.errors.push(error),
        }
    }
    outcome
}

pub fn read(text: &str) -> Outcome {
    run(Reader::new(text.as_bytes()))
}

/// Reads `text` delivering it `chunk` bytes per read.
pub fn read_chunked(text: &str, chunk: usize) -> Outcome {
    run(Reader::new(Chunked { data: text.as_bytes(), chunk }))
}

struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let count = self.chunk.min(buf.len()).min(self.data.len());
        buf[..count].copy_from_slice(&self.data[..count]);
        self.data = &self.data[count..];
        Ok(count)
    }
}

/// (line, column) of an error's location.
pub fn position(error: &Error) -> (u64, u64) {
    let location = error.location().unwrap();
    (location.line, location.column)
}
