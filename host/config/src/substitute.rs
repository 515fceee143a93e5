//! `${VAR}` and `${VAR:-default}` in config files, resolved from the environment
//! before the YAML is parsed. `${VAR}` also reads the file named by `VAR_FILE`
//! (Docker and Kubernetes secrets), with its trailing newline removed. Values are
//! inserted as text, as docker compose does: quote the reference (`"${PASSWORD}"`)
//! when the value may contain YAML syntax. Comment lines are left alone.

use std::path::Path;

use crate::ConfigError;

/// Replace every reference in `text`; `lookup` reads an environment variable.
pub fn substitute(text: &str, path: &Path, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
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
                Some(value) => value,
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
    Ok(out)
}

/// `NAME` from the environment, else the contents of the file `NAME_FILE` names.
fn resolve(name: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    if let Some(value) = lookup(name) {
        return Ok(Some(value));
    }
    let Some(file) = lookup(&format!("{name}_FILE")) else { return Ok(None) };
    std::fs::read_to_string(&file)
        .map(|text| {
            Some(text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_string())
        })
        .map_err(|e| format!("uses ${{{name}}}; {name}_FILE={file} cannot be read: {e}"))
}

fn invalid(path: &Path, line_index: usize, problem: String) -> ConfigError {
    ConfigError::Invalid { path: path.to_path_buf(), key: format!("line {}", line_index + 1), problem }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(text: &str, vars: &[(&str, &str)]) -> Result<String, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        substitute(text, Path::new("c.yml"), &|name| map.get(name).cloned())
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
}
