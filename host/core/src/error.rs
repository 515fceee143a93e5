//! Why an incoming document is not an acceptable vCon.

/// A document refused at ingest. Each variant names the field involved so the
/// client can fix it; the API maps every variant to HTTP 422.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VconError {
    /// The body is not JSON at all.
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("a vCon must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// Neither `uuid` nor `vcon` is present.
    #[error("field `uuid` is required (a document with neither `uuid` nor `vcon` is not a vCon)")]
    MissingUuid,
    /// `uuid` is present but unusable.
    #[error("field `uuid` is not a valid UUID: {0}")]
    BadUuid(String),
    /// A field has the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// Dotted path of the field, e.g. `parties` or `dialog[2].duration`.
        field: String,
        /// What was expected, e.g. `a string`.
        expected: &'static str,
    },
}

impl VconError {
    /// The dotted path of the field at fault, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::NotJson(_) | Self::NotAnObject(_) => None,
            Self::MissingUuid | Self::BadUuid(_) => Some("uuid"),
            Self::WrongType { field, .. } => Some(field),
        }
    }
}
