//! `.env` in the working directory, read at start as the Python server does
//! (python-dotenv's format and rules): each `KEY=value` line sets a variable the
//! environment does not already have; the real environment always wins.
//!
//! The format, as python-dotenv reads it: `#` comments and blank lines; an
//! optional `export `; values unquoted (trimmed, a ` #` starts a comment),
//! 'single-quoted' (literal) or "double-quoted" (`\n`, `\t`, `\"`, `\\` escapes,
//! may span lines); `${VAR}` and `${VAR:-default}` expanded in unquoted and
//! double-quoted values (from the environment, then from earlier lines). A bare
//! `$` is kept as it is, so a password holding one is not changed. A line that
//! cannot be parsed stops the start with its number (never its text, which may
//! hold a secret), rather than running with part of the settings;
//! `CONSERVER_DOTENV=0` skips the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What was read.
#[derive(Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The file.
    pub path: PathBuf,
    /// The variables it set (the names only: values may be secrets).
    pub set: Vec<String>,
}

/// Read `.env` from the working directory, if there is one, and set what it
/// names. Call first thing in `main`, before any other thread starts.
pub fn load() -> Result<Option<Loaded>, String> {
    if std::env::var("CONSERVER_DOTENV").is_ok_and(|v| matches!(v.trim(), "0" | "false" | "no")) {
        return Ok(None);
    }
    let path = Path::new(".env");
    if !path.is_file() {
        return Ok(None);
    }
    let shown = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read it: {e}", shown.display()))?;
    let pairs = parse(&text, |name| std::env::var(name).ok()).map_err(|e| format!("{}: {e}", shown.display()))?;
    let mut set = Vec::new();
    for (key, value) in pairs {
        if std::env::var_os(&key).is_none() {
            set_var(&key, &value);
            set.push(key);
        }
    }
    Ok(Some(Loaded { path: shown, set }))
}

/// Set a variable while the process has one thread (see [`load`]).
#[allow(unsafe_code)]
fn set_var(key: &str, value: &str) {
    // SAFETY: called from `main` before the runtime or any other thread starts,
    // so nothing reads the environment concurrently.
    unsafe { std::env::set_var(key, value) }
}

/// The `(key, value)` pairs of `text`, first occurrence of a key winning (as
/// python-dotenv without override); `env` looks up the environment for `${VAR}`.
pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut index = 0;
    while index < lines.len() {
        let number = index + 1;
        let line = lines[index].trim_start();
        index += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else {
            if is_key(line.trim()) {
                continue; // A bare name sets nothing (python-dotenv: no value).
            }
            return Err(format!("line {number} is not KEY=value; fix it or set CONSERVER_DOTENV=0 to skip the file"));
        };
        let key = key.trim();
        if !is_key(key) {
            return Err(format!("line {number}: the name before `=` is not a variable name"));
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(quote @ ('\'' | '"')) => {
                // The value runs to the closing quote, over lines if need be.
                let mut body = rest[1..].to_string();
                let end = loop {
                    if let Some(end) = closing_quote(&body, quote) {
                        break end;
                    }
                    let Some(next) = lines.get(index) else {
                        return Err(format!("line {number}: the {quote} quote is never closed"));
                    };
                    body.push('\n');
                    body.push_str(next);
                    index += 1;
                };
                let after = body[end + 1..].trim();
                if !after.is_empty() && !after.starts_with('#') {
                    return Err(format!("line {number}: text after the closing quote"));
                }
                let inner = &body[..end];
                if quote == '\'' {
                    inner.replace("\\'", "'").replace("\\\\", "\\")
                } else {
                    expand(&unescape(inner), &env, &seen)
                }
            }
            _ => {
                let unquoted = match rest.find(" #").or_else(|| rest.find("\t#")) {
                    Some(comment) => &rest[..comment],
                    None => rest,
                };
                expand(unquoted.trim(), &env, &seen)
            }
        };
        if !seen.contains_key(key) {
            seen.insert(key.to_string(), value.clone());
            pairs.push((key.to_string(), value));
        }
    }
    Ok(pairs)
}

fn is_key(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Where the closing `quote` is in `body` (skipping backslash escapes).
fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return Some(i);
        }
    }
    None
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other @ ('"' | '\\' | '\'')) => out.push(other),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// `${VAR}` and `${VAR:-default}` replaced (environment first, then earlier
/// lines); anything else, a bare `$` included, kept.
fn expand(text: &str, env: &impl Fn(&str) -> Option<String>, seen: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(length) = rest[start..].find('}') else { break };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + length];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let value = env(name).or_else(|| seen.get(name).cloned()).filter(|v| !v.is_empty() || default.is_none());
        out.push_str(&value.unwrap_or_else(|| default.unwrap_or_default().to_string()));
        rest = &rest[start + length + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text, no_env).unwrap()
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_string(), value.to_string())
    }

    #[test]
    fn python_dotenv_lines_read_as_python_reads_them() {
        let text = "# settings\n\nexport REDIS_URL=redis://redis:6379\nLOG_LEVEL = WARNING  # as Python spells it\nTITLE=a b\nSINGLE='lit ${X} \\n'\nDOUBLE=\"one\\ntwo\"\nPASSWORD=pa$$word\nBARE\n";
        assert_eq!(
            pairs(text),
            vec![
                pair("REDIS_URL", "redis://redis:6379"),
                pair("LOG_LEVEL", "WARNING"),
                pair("TITLE", "a b"),
                pair("SINGLE", "lit ${X} \\n"),
                pair("DOUBLE", "one\ntwo"),
                pair("PASSWORD", "pa$$word"),
            ]
        );
    }

    #[test]
    fn variables_expand_from_the_environment_then_earlier_lines() {
        let env = |name: &str| (name == "HOME_DIR").then(|| "/opt/c".to_string());
        let got =
            parse("BASE=/srv\nDATA=${BASE}/data\nCACHE=${HOME_DIR}/cache\nMISSING=${NOPE:-fallback}\n", env).unwrap();
        assert_eq!(got[1], pair("DATA", "/srv/data"));
        assert_eq!(got[2], pair("CACHE", "/opt/c/cache"));
        assert_eq!(got[3], pair("MISSING", "fallback"));
    }

    #[test]
    fn a_quoted_value_may_span_lines_and_the_first_definition_wins() {
        assert_eq!(
            pairs("KEY=\"-----BEGIN\nabc\n-----END\"\nKEY=second\n"),
            vec![pair("KEY", "-----BEGIN\nabc\n-----END")]
        );
    }

    #[test]
    fn a_broken_line_is_named_without_its_text() {
        let error = parse("OK=1\nthis line is broken s3cret\n", no_env).unwrap_err();
        assert!(error.contains("line 2") && !error.contains("s3cret"), "{error}");
        let error = parse("A=\"never closed s3cret\n", no_env).unwrap_err();
        assert!(error.contains("line 1") && !error.contains("s3cret"), "{error}");
    }
}
