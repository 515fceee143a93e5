//! Query strings with repeated keys (`?ingress_lists=a&ingress_lists=b`), which the
//! Python API uses and serde_urlencoded cannot read into a list.

/// Every value of `key` in `query`, in order.
pub fn all_values(query: Option<&str>, key: &str) -> Vec<String> {
    let Some(query) = query else {
        return Vec::new();
    };
    form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == key).map(|(_, v)| v.into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_keep_their_order_and_commas_stay_literal() {
        assert_eq!(all_values(Some("a=1&b=2&a=x%2Cy"), "a"), ["1", "x,y"]);
        assert!(all_values(None, "a").is_empty());
    }
}
