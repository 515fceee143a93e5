//! What a link's config grants it beyond computing on its vCon: outbound HTTP to
//! the hosts on its allow-list (with time and size caps), and the secrets it
//! names. Secret values are read once, when the link is loaded, from the
//! environment or the file named by `<NAME>_FILE`, and are scrubbed from anything
//! the link writes to the log or reports as a failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use conserver_config::AllowedHost;

/// Caps on a link's outbound HTTP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time to connect (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time from sending the request to the first byte of the answer.
    pub first_byte_timeout: Duration,
    /// Longest pause between two chunks of the answer's body.
    pub between_bytes_timeout: Duration,
    /// Largest answer body, in bytes.
    pub max_response_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(60),
            between_bytes_timeout: Duration::from_secs(30),
            max_response_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A link's capabilities, fixed when it is loaded.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Hosts the link may send HTTP requests to (empty: none).
    pub allowed_hosts: Vec<AllowedHost>,
    /// Caps on those requests.
    pub http: HttpLimits,
    /// Secret name → value (`None`: granted but not set on this host).
    pub secrets: BTreeMap<String, Option<String>>,
    /// Further values to scrub from logs and failure reasons (credentials found
    /// in the link's options).
    pub sensitive: Vec<String>,
}

impl Grants {
    /// Grants for these allow-list entries and secret names, reading the secrets'
    /// values from the environment (`NAME`, else the file at `NAME_FILE`).
    pub fn new(allowed_hosts: Vec<AllowedHost>, secret_names: &[String]) -> Self {
        Self::with_environment(allowed_hosts, secret_names, |name| std::env::var(name).ok())
    }

    /// Like [`Grants::new`], reading variables through `env`.
    pub fn with_environment(
        allowed_hosts: Vec<AllowedHost>,
        secret_names: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let secrets = secret_names.iter().map(|name| (name.clone(), read_secret(name, &env))).collect();
        Self { allowed_hosts, http: HttpLimits::default(), secrets, sensitive: Vec::new() }
    }

    /// Also scrub the values of option keys that look like credentials (`*key*`,
    /// `*token*`, `*secret*`, `*password*`), at any depth of `options`.
    pub fn with_sensitive_options(mut self, options: &serde_json::Value) -> Self {
        collect_sensitive(options, false, &mut self.sensitive);
        self
    }

    /// Every value to scrub, longest first (so a value containing another is
    /// replaced whole).
    pub(crate) fn scrub_list(&self) -> Arc<[String]> {
        let mut values: Vec<String> =
            self.secrets.values().flatten().chain(self.sensitive.iter()).filter(|v| v.len() >= 4).cloned().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        values.into()
    }
}

fn read_secret(name: &str, env: &impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(value) = env(name)
        && !value.is_empty()
    {
        return Some(value);
    }
    let path = env(&format!("{name}_FILE"))?;
    // Only small regular files: a FIFO would hang the loader, /dev/zero fill memory.
    match conserver_config::read_secret_file(std::path::Path::new(&path)) {
        Ok(text) => Some(text.trim_end_matches(['\n', '\r']).to_string()),
        Err(problem) => {
            tracing::warn!(secret = name, "the file {name}_FILE names {problem}; the secret is not granted");
            None
        }
    }
}

fn looks_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["key", "token", "secret", "password", "authorization"].iter().any(|word| key.contains(word))
}

fn collect_sensitive(value: &serde_json::Value, sensitive: bool, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) if sensitive => out.push(text.clone()),
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                collect_sensitive(value, sensitive || looks_sensitive(key), out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_sensitive(item, sensitive, out);
            }
        }
        _ => {}
    }
}

/// `text` with every value in `scrub` replaced by `[redacted]`.
pub(crate) fn scrub(text: &str, values: &[String]) -> String {
    let mut out = text.to_string();
    for value in values {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_in_options_are_scrubbed() {
        let grants = Grants::default().with_sensitive_options(&json!({
            "OPENAI_API_KEY": "sk-live-123",
            "model": "gpt-4",
            "auth": {"access_token": "tok-999"},
            "headers": {"Authorization": "Bearer abc-def"}
        }));
        let list = grants.scrub_list();
        assert_eq!(
            scrub("key sk-live-123, token tok-999, Bearer abc-def, model gpt-4", &list),
            "key [redacted], token [redacted], [redacted], model gpt-4"
        );
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "from-file\n").unwrap();
        let env = |name: &str| match name {
            "CONSERVER_TEST_GRANT_A" => Some("from-env".to_string()),
            "CONSERVER_TEST_GRANT_B_FILE" => Some(file.display().to_string()),
            _ => None,
        };
        let grants = Grants::with_environment(
            Vec::new(),
            &["CONSERVER_TEST_GRANT_A".into(), "CONSERVER_TEST_GRANT_B".into(), "CONSERVER_TEST_GRANT_C".into()],
            env,
        );
        assert_eq!(grants.secrets["CONSERVER_TEST_GRANT_A"].as_deref(), Some("from-env"));
        assert_eq!(grants.secrets["CONSERVER_TEST_GRANT_B"].as_deref(), Some("from-file"));
        assert_eq!(grants.secrets["CONSERVER_TEST_GRANT_C"], None);
        assert_eq!(scrub("x from-env y from-file", &grants.scrub_list()), "x [redacted] y [redacted]");
    }

    #[test]
    fn secret_files_are_small_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; conserver_config::MAX_SECRET_FILE_BYTES as usize + 1]).unwrap();
        let dir_path = dir.path().display().to_string();
        let big_path = big.display().to_string();
        let env = |name: &str| match name {
            // A device would never end; a FIFO would block the loader for ever.
            "CONSERVER_TEST_GRANT_ZERO_FILE" => Some("/dev/zero".to_string()),
            "CONSERVER_TEST_GRANT_DIR_FILE" => Some(dir_path.clone()),
            "CONSERVER_TEST_GRANT_BIG_FILE" => Some(big_path.clone()),
            _ => None,
        };
        let names: Vec<String> = ["ZERO", "DIR", "BIG"].iter().map(|n| format!("CONSERVER_TEST_GRANT_{n}")).collect();
        let grants = Grants::with_environment(Vec::new(), &names, env);
        for name in &names {
            assert_eq!(grants.secrets[name], None, "{name}");
        }
    }
}
