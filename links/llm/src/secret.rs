//! Secrets granted to the link (`secrets:` in its config), read when an option
//! does not give a credential. Surrounding whitespace (a trailing newline in a
//! `NAME_FILE`) is dropped; an empty value counts as absent.
//!
//! With the `testing` feature (the links' unit tests), secrets come only from
//! [`crate::testing::grant_secrets`], never from the process environment, so
//! tests do not depend on the machine they run on.

/// The value of the granted secret `name`, if it is granted and set.
pub fn secret(name: &str) -> Option<String> {
    lookup(name).map(|value| value.trim().to_string()).filter(|value| !value.is_empty())
}

#[cfg(not(any(test, feature = "testing")))]
fn lookup(name: &str) -> Option<String> {
    conserver_link_sdk::secrets::get(name).ok()
}

#[cfg(any(test, feature = "testing"))]
fn lookup(name: &str) -> Option<String> {
    crate::testing::granted_secret(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_trimmed_and_empty_ones_are_absent() {
        crate::testing::grant_secrets(&[("A", " key\n"), ("B", "  ")]);
        assert_eq!(secret("A").as_deref(), Some("key"));
        assert_eq!(secret("B"), None);
        assert_eq!(secret("C"), None);
    }
}
