//! Secrets out of what is printed: a URL's password (`scheme://user:password@host`)
//! and the values of query parameters named like credentials (`token`, `key`,
//! `password`, `sig`, …) become `***`, for every log line and error message that
//! shows a configured URL (a Redis URL, a webhook, a follower, a storage).

/// Query parameter names (lower-case, `-` and `_` removed) whose values are
/// credentials, beyond those ending in a credential word ([`SECRET_SUFFIXES`]).
const SECRET_PARAMS: &[&str] = &["key", "pass", "pwd", "sig", "auth", "authorization", "code", "xamzcredential"];

/// Endings of query parameter names whose values are credentials (`api_key`,
/// `access_token`, `ssl_password`, `X-Amz-Signature`, `X-Goog-Credential`, …).
const SECRET_SUFFIXES: &[&str] = &["token", "key", "secret", "password", "signature", "credential", "passwd"];

/// `url` with its password and credential-like query values replaced by `***`.
/// A password holding `/`, `?` or `#` unencoded is still found: the user info
/// ends at the last `@` followed by a plain `host[:port]`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let mut split = None;
    for (at, _) in rest.match_indices('@') {
        let host_end = rest[at + 1..].find(['/', '?', '#']).map_or(rest.len(), |i| at + 1 + i);
        let host = &rest[at + 1..host_end];
        if !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:[]%".contains(c)) {
            split = Some(at);
        }
    }
    let (authority_shown, tail) = match split {
        Some(at) => {
            let user_info = &rest[..at];
            let host_end = rest[at + 1..].find(['/', '?', '#']).map_or(rest.len(), |i| at + 1 + i);
            let shown = match user_info.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_string(),
            };
            (format!("{shown}@{}", &rest[at + 1..host_end]), &rest[host_end..])
        }
        None => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            (rest[..authority_end].to_string(), &rest[authority_end..])
        }
    };
    format!("{scheme}://{authority_shown}{}", redact_query(tail))
}

/// The path, query and fragment of a URL with credential-like query values hidden.
fn redact_query(tail: &str) -> String {
    let Some((path, query_and_fragment)) = tail.split_once('?') else { return tail.to_string() };
    let (query, fragment) = match query_and_fragment.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query_and_fragment, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_param(name) => format!("{name}=***"),
            _ => pair.to_string(),
        })
        .collect();
    let mut out = format!("{path}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    let folded: String = name.chars().filter(|c| *c != '-' && *c != '_').collect::<String>().to_ascii_lowercase();
    SECRET_PARAMS.contains(&folded.as_str()) || SECRET_SUFFIXES.iter().any(|suffix| folded.ends_with(suffix))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_in_urls_are_never_shown() {
        assert_eq!(redact_url("redis://:s3cret@redis:6379/0"), "redis://:***@redis:6379/0");
        assert_eq!(redact_url("rediss://default:s3cret@r.example:6380"), "rediss://default:***@r.example:6380");
        assert_eq!(redact_url("redis://s3cret@redis"), "redis://***@redis");
        assert_eq!(redact_url("redis://a:b@c@host/1?x=@"), "redis://a:***@host/1?x=@");
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn credential_query_values_are_hidden_and_others_kept() {
        assert_eq!(
            redact_url("https://hooks.example/in?api_key=s3cret&list=calls#top"),
            "https://hooks.example/in?api_key=***&list=calls#top"
        );
        assert_eq!(
            redact_url("https://b.example/o?X-Amz-Signature=abc&X-Amz-Credential=def&part=1"),
            "https://b.example/o?X-Amz-Signature=***&X-Amz-Credential=***&part=1"
        );
        assert_eq!(redact_url("https://u:p@h/x?token=t"), "https://u:***@h/x?token=***");
        assert_eq!(redact_url("https://h/x?page=1&sort=up"), "https://h/x?page=1&sort=up");
        assert_eq!(
            redact_url("https://h/x?ssl_password=a&auth_token=b&X-Goog-Signature=c&list=d"),
            "https://h/x?ssl_password=***&auth_token=***&X-Goog-Signature=***&list=d"
        );
    }

    #[test]
    fn a_password_with_unencoded_separators_is_still_hidden() {
        assert_eq!(redact_url("redis://:ab/cd@redis:6379"), "redis://:***@redis:6379");
        assert_eq!(redact_url("redis://u:a?b#c@redis:6379/0"), "redis://u:***@redis:6379/0");
        assert_eq!(redact_url("mongodb://u:p@ss@h1:27017/db"), "mongodb://u:***@h1:27017/db");
    }
}
