//! Why an incoming document is not an acceptable vCon.

use std::fmt;

/// One thing wrong with a document, located by its path (`["dialog", "0",
/// "duration"]`) so the client can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path from the document root; empty for the document itself.
    pub path: Vec<String>,
    /// Machine-readable kind (`missing`, `uuid_parsing`, `type_error`, `value_error`).
    pub kind: &'static str,
    /// What is wrong, naming the field.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(path: &[&str], kind: &'static str, message: impl Into<String>) -> Self {
        Self { path: path.iter().map(|s| (*s).to_string()).collect(), kind, message: message.into() }
    }

    /// The path written as `dialog[0].duration`.
    pub fn field(&self) -> String {
        let mut out = String::new();
        for part in &self.path {
            if part.parse::<usize>().is_ok() {
                out.push_str(&format!("[{part}]"));
            } else {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(part);
            }
        }
        out
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A document refused at ingest. The API maps every variant to HTTP 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VconError {
    /// The body is not JSON at all (or has numbers, strings or nesting JSON cannot
    /// represent: NaN, 1e400, lone surrogates, more than 128 levels).
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("a vCon must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// The object is not a valid vCon; every problem found is listed.
    #[error("{}", .0.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
}

impl VconError {
    /// The problems, one per invalid field (a single root problem for non-objects).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            Self::NotJson(message) => {
                vec![Problem::new(&[], "json_invalid", format!("body is not valid JSON: {message}"))]
            }
            Self::NotAnObject(got) => {
                vec![Problem::new(&[], "model_attributes_type", format!("a vCon must be a JSON object, got {got}"))]
            }
            Self::Invalid(problems) => problems.clone(),
        }
    }
}
