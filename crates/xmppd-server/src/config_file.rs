//! Loading `xmppd.toml`: syntax, unknown keys and semantic checks, each
//! reported with the key path it concerns.

use std::path::Path;

use xmppd_core::Config;

/// Reads and validates the configuration. `None` means built-in defaults.
/// Every problem found is returned, not just the first.
pub fn load(path: Option<&Path>) -> Result<Config, Vec<String>> {
    let config = match path {
        None => Config::default(),
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
            parse(&text).map_err(|e| vec![format!("{}: {e}", path.display())])?
        }
    };
    let problems: Vec<String> = config.validate().iter().map(ToString::to_string).collect();
    if problems.is_empty() { Ok(config) } else { Err(problems) }
}

/// Parses TOML text into a [`Config`], naming the key path on type errors
/// and unknown keys.
pub fn parse(text: &str) -> Result<Config, String> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().to_owned();
        if path.is_empty() || path == "." { message } else { format!("{path}: {message}") }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_the_key_path() {
        let err = parse("[c2s]\nmax_stanza_bytes = \"big\"\n").unwrap_err();
        assert!(err.starts_with("c2s.max_stanza_bytes"), "{err}");
        let err = parse("[c2s]\nmax_stanza_byte = 5\n").unwrap_err();
        assert!(err.contains("max_stanza_byte"), "{err}");
        let err = parse("[listen]\nc2s = [\"not an address\"]\n").unwrap_err();
        assert!(err.starts_with("listen.c2s[0]"), "{err}");
    }

    #[test]
    fn empty_file_means_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.server.hosts, vec!["localhost".to_owned()]);
    }
}
