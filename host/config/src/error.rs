//! Errors found while reading the config file or the environment.

use std::path::PathBuf;

use crate::Redactor;

/// A config problem. The message names the file, the key path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source} (set CONSERVER_CONFIG_FILE to an existing YAML file)")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML or does not have the expected shape.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with the location.
        message: String,
    },
    /// A value is present but wrong.
    #[error("config file {}{}: {}{problem}", path.display(), at_line(*.line), quoted_key(key))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted key path, e.g. `chains.main.links[0]` (empty: the problem is
        /// the line's).
        key: String,
        /// The line the key is on (1-based), when it could be found.
        line: Option<usize>,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// An environment variable holds something unusable.
    #[error("environment variable {name}={value:?} is invalid: {problem}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is expected.
        problem: String,
    },
}

impl ConfigError {
    /// The same error with every substituted value in its text replaced by the
    /// name of its variable (see [`Redactor`]).
    pub fn redacted(self, redactor: &Redactor) -> Self {
        if redactor.is_empty() {
            return self;
        }
        match self {
            Self::Parse { path, message } => Self::Parse { path, message: redactor.redact(&message) },
            Self::Invalid { path, key, line, problem } => {
                Self::Invalid { path, key: redactor.redact(&key), line, problem: redactor.redact(&problem) }
            }
            other => other,
        }
    }
}

fn at_line(line: Option<usize>) -> String {
    line.map(|line| format!(" line {line}")).unwrap_or_default()
}

fn quoted_key(key: &str) -> String {
    if key.is_empty() { String::new() } else { format!("`{key}` ") }
}
