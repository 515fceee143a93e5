//! `${VAR}` and `${VAR:-default}` in config files, resolved from the environment
//! before the YAML is parsed. `${VAR}` also reads the file named by `VAR_FILE`
//! (Docker and Kubernetes secrets), with its trailing newline removed. Values are
//! inserted as text, as docker compose does: quote the reference (`"${PASSWORD}"`)
//! when the value may contain YAML syntax. Comment lines are left alone.
//!
//! The values read from the environment or from files are secrets as often as
//! not (the API token, Docker secrets), so errors never show them: every value
//! substituted is remembered in a [`Redactor`], which replaces it in any message
//! with the name of the variable it came from. `*_FILE` files are read only when
//! they are regular files, up to [`MAX_SECRET_FILE_BYTES`].

use std::io::Read as _;
use std::path::Path;

use crate::ConfigError;

/// The largest `*_FILE` a reference may read (1 MiB).
pub const MAX_SECRET_FILE_BYTES: u64 = 1024 * 1024;

/// Values shorter than this are not redacted (they would garble messages and
/// are no secret worth the name).
const MIN_REDACTED_LEN: usize = 4;

/// The values substituted into a config, to be removed from messages.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// (value as it may appear in a message, the variable's name).
    values: Vec<(String, String)>,
}

impl Redactor {
    fn remember(&mut self, name: &str, value: &str) {
        let mut forms = vec![value.to_string(), value.escape_debug().to_string(), value.escape_default().to_string()];
        if let Ok(json) = serde_json::to_string(value) {
            forms.push(json.trim_matches('"').to_string());
        }
        forms.extend(value.lines().map(|line| line.trim().to_string()));
        for form in forms {
            if form.chars().count() >= MIN_REDACTED_LEN && !self.values.iter().any(|(v, _)| *v == form) {
                self.values.push((form, name.to_string()));
            }
        }
        // Longest first, so a value containing another is replaced whole.
        self.values.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
    }

    /// `text` with every substituted value replaced by `<value of ${NAME}>`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (value, name) in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("<value of ${{{name}}}>"));
            }
        }
        out
    }

    /// Whether anything was substituted from the environment or a file.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Replace every reference in `text` (`lookup` reads an environment variable),
/// and say what was substituted (for redaction).
pub fn substitute_redacting(
    text: &str,
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Redactor), ConfigError> {
    let mut redactor = Redactor::default();
    let mut out = String::with_capacity(text.len());
    for (number, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') || !line.contains("${") {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(invalid(path, number, "has `${` without a closing `}`".into()));
            };
            let reference = &after[..end];
            let (name, default) = match reference.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (reference, None),
            };
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(invalid(
                    path,
                    number,
                    format!("`${{{reference}}}` is not a variable reference like ${{NAME}} or ${{NAME:-default}}"),
                ));
            }
            let value = match resolve(name, lookup).map_err(|e| invalid(path, number, e))? {
                Some(value) => {
                    redactor.remember(name, &value);
                    value
                }
                None => match default {
                    Some(default) => default.to_string(),
                    None => {
                        return Err(invalid(
                            path,
                            number,
                            format!(
                                "uses ${{{name}}}, but neither {name} nor {name}_FILE is set; set one, or write ${{{name}:-default}}"
                            ),
                        ));
                    }
                },
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    Ok((out, redactor))
}

/// `NAME` from the environment, else the contents of the file `NAME_FILE` names.
fn resolve(name: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    if let Some(value) = lookup(name) {
        return Ok(Some(value));
    }
    let Some(file) = lookup(&format!("{name}_FILE")) else { return Ok(None) };
    // The path is the environment's and the message may reach an API client: it
    // is not repeated.
    let text = read_secret_file(Path::new(&file))
        .map_err(|problem| format!("uses ${{{name}}}; the file {name}_FILE names {problem}"))?;
    Ok(Some(text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_string()))
}

/// A regular file of at most [`MAX_SECRET_FILE_BYTES`], as UTF-8 text. The type
/// is checked before the file is opened (a FIFO or device is never opened).
/// The error says what is wrong with the file, never its path or content.
pub fn read_secret_file(path: &Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot be read ({})", e.kind()))?;
    if !metadata.is_file() {
        return Err("is not a regular file".into());
    }
    if metadata.len() > MAX_SECRET_FILE_BYTES {
        return Err(format!("is larger than {MAX_SECRET_FILE_BYTES} bytes"));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read ({})", e.kind()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read ({})", e.kind()))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(format!("is larger than {MAX_SECRET_FILE_BYTES} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".into())
}

fn invalid(path: &Path, line_index: usize, problem: String) -> ConfigError {
    ConfigError::Invalid { path: path.to_path_buf(), key: String::new(), line: Some(line_index + 1), problem }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(text: &str, vars: &[(&str, &str)]) -> Result<String, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        substitute_redacting(text, Path::new("c.yml"), &|name| map.get(name).cloned()).map(|(text, _)| text)
    }

    #[test]
    fn variables_defaults_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "from-file\n").unwrap();
        let text = "a: ${A}\nb: \"${B:-fallback}\"\nc: ${C}\n# ${NOT_SET} in a comment\nd: x${A}y${A}\n";
        let out = run(text, &[("A", "1"), ("C_FILE", secret.to_str().unwrap())]).unwrap();
        assert_eq!(out, "a: 1\nb: \"fallback\"\nc: from-file\n# ${NOT_SET} in a comment\nd: x1y1\n");
    }

    #[test]
    fn a_missing_variable_names_itself_the_line_and_the_fix() {
        let err = run("x: 1\ny: ${MISSING}\n", &[]).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("MISSING") && err.contains("MISSING_FILE"), "{err}");
        assert!(run("y: ${bad name}\n", &[]).is_err());
        assert!(run("y: ${UNCLOSED\n", &[]).is_err());
    }

    #[test]
    fn substituted_values_are_redacted_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "file-secret-value\n").unwrap();
        let vars: HashMap<String, String> = [
            ("TOKEN".to_string(), "s3cr\"et-token".to_string()),
            ("DB_FILE".to_string(), secret.display().to_string()),
            ("N".to_string(), "1".to_string()),
        ]
        .into();
        let (_, redactor) = substitute_redacting(
            "a: ${TOKEN}\nb: ${DB}\nc: ${N}\nd: ${X:-default-is-public}\n",
            Path::new("c.yml"),
            &|n| vars.get(n).cloned(),
        )
        .unwrap();
        let message = r#"invalid type: string "s3cr\"et-token" and s3cr"et-token, file-secret-value at line 1"#;
        let redacted = redactor.redact(message);
        assert!(!redacted.contains("et-token") && !redacted.contains("file-secret"), "{redacted}");
        assert!(redacted.contains("<value of ${TOKEN}>") && redacted.contains("<value of ${DB}>"), "{redacted}");
        assert!(redacted.contains("line 1"), "short values are left alone: {redacted}");
    }

    #[test]
    fn secret_files_must_be_small_regular_files_and_errors_do_not_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_SECRET_FILE_BYTES as usize + 1]).unwrap();
        let path = |p: &Path| p.display().to_string();
        for (file, problem) in [
            (path(&big), "larger than"),
            (path(dir.path()), "not a regular file"),
            ("/dev/zero".to_string(), "not a regular file"),
        ] {
            let err = run("a: ${S}\n", &[("S_FILE", &file)]).unwrap_err().to_string();
            assert!(err.contains(problem) && !err.contains(&file), "{err}");
        }
        let err = run("a: ${S}\n", &[("S_FILE", "/nonexistent/secret")]).unwrap_err().to_string();
        assert!(err.contains("S_FILE") && !err.contains("/nonexistent"), "{err}");
    }
}
