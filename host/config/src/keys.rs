//! Which keys each section of the config file takes, so a typo is an error with
//! a did-you-mean instead of a key silently ignored (`ingres_lists:` would leave
//! a chain reading nothing; `alowed_outbound_hosts:` a link with no network).
//! Keys a Python config carries that this host does not use are accepted with a
//! warning, so a Python file still loads. Lines are found in the text itself
//! (the YAML values carry no positions).

use std::path::Path;

use serde_json::Value;

use crate::{ChainDef, Config, ConfigError, FollowerDef, LinkDef, StorageDef};

/// One section's keys.
struct Section {
    /// What an entry of it is called in messages.
    what: &'static str,
    /// Keys it reads: the fields of its struct.
    known: &'static [&'static str],
    /// Keys Python configs carry that are accepted and ignored, with why.
    python_only: Vec<(&'static str, &'static str)>,
    /// Whether a key close to no known one is an error too (else a warning:
    /// the top level may hold YAML anchors under a name of the user's own).
    refuse_unrelated: bool,
}

fn top() -> Section {
    Section {
        what: "top-level section",
        known: fields_of::<Config>(),
        python_only: Vec::new(),
        refuse_unrelated: false,
    }
}

/// Keys Python configs carry that this host does not use, by section: they
/// load with a warning saying why.
pub(crate) const PYTHON_ONLY: &[(&str, &str, &str)] = &[
    // Python's example_config.yml puts these on links; its engine never reads them.
    ("links", "ingress-lists", "links do not read lists; a chain's `ingress_lists` does"),
    ("links", "egress-lists", "links do not write lists; a chain's `egress_lists` does"),
    ("chains", "name", "a chain is named by its key under `chains:`"),
    ("storages", "pip_name", "storages are built into the host"),
];

fn python_only(section: &str) -> Vec<(&'static str, &'static str)> {
    PYTHON_ONLY.iter().filter(|(s, _, _)| *s == section).map(|(_, key, why)| (*key, *why)).collect()
}

fn link() -> Section {
    Section {
        what: "link key",
        known: fields_of::<LinkDef>(),
        python_only: python_only("links"),
        refuse_unrelated: true,
    }
}

fn chain() -> Section {
    Section {
        what: "chain key",
        known: fields_of::<ChainDef>(),
        python_only: python_only("chains"),
        refuse_unrelated: true,
    }
}

fn storage() -> Section {
    Section {
        what: "storage key",
        known: fields_of::<StorageDef>(),
        python_only: python_only("storages"),
        refuse_unrelated: true,
    }
}

fn follower() -> Section {
    Section { what: "follower key", known: fields_of::<FollowerDef>(), python_only: Vec::new(), refuse_unrelated: true }
}

/// The field names serde's derive gives struct `T` (what it deserialises), so
/// the keys accepted are exactly the struct's fields, with no list to keep in
/// step by hand.
fn fields_of<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
    let mut lister = FieldLister(None);
    let _ = T::deserialize(&mut lister);
    lister.0.unwrap_or(&[])
}

/// A deserializer that only records the fields a struct asks for.
struct FieldLister(Option<&'static [&'static str]>);

#[derive(Debug)]
struct Listed;

impl std::fmt::Display for Listed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fields listed")
    }
}

impl std::error::Error for Listed {}

impl serde::de::Error for Listed {
    fn custom<M: std::fmt::Display>(_message: M) -> Self {
        Listed
    }
}

impl<'de> serde::Deserializer<'de> for &mut FieldLister {
    type Error = Listed;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Listed> {
        Err(Listed)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Listed> {
        self.0 = Some(fields);
        Err(Listed)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Check every section's keys in `document` (the parsed file): an unknown key is
/// an error naming its path, line and the key meant; a Python-only key is a
/// warning.
pub(crate) fn check(document: &Value, text: &str, path: &Path) -> Result<(), ConfigError> {
    let Value::Object(sections) = document else { return Ok(()) };
    check_section(&top(), sections, &[], text, path)?;
    for (section, kind) in [("links", link()), ("tracers", link()), ("chains", chain()), ("storages", storage())] {
        for_each_entry(sections.get(section), |name, entry| check_section(&kind, entry, &[section, name], text, path))?;
    }
    let followers = follower();
    for_each_entry(sections.get("followers"), |name, entry| {
        check_section(&followers, entry, &["followers", name], text, path)
    })
}

fn for_each_entry(
    section: Option<&Value>,
    mut check: impl FnMut(&str, &serde_json::Map<String, Value>) -> Result<(), ConfigError>,
) -> Result<(), ConfigError> {
    let Some(Value::Object(entries)) = section else { return Ok(()) };
    for (name, entry) in entries {
        if let Value::Object(entry) = entry {
            check(name, entry)?;
        }
    }
    Ok(())
}

fn check_section(
    section: &Section,
    entry: &serde_json::Map<String, Value>,
    at: &[&str],
    text: &str,
    path: &Path,
) -> Result<(), ConfigError> {
    for key in entry.keys() {
        if section.known.contains(&key.as_str()) {
            continue;
        }
        let mut key_path = at.to_vec();
        key_path.push(key);
        let dotted = key_path.join(".");
        let line = line_of(text, &key_path);
        if let Some((_, why)) = section.python_only.iter().find(|(python, _)| python == key) {
            tracing::warn!(file = %path.display(), key = %dotted, line, "Python config key ignored: {why}");
            continue;
        }
        let hint = match closest(key, section.known) {
            Some(meant) => format!("did you mean `{meant}`? "),
            None if !section.refuse_unrelated => {
                tracing::warn!(file = %path.display(), key = %dotted, line, "top-level key ignored (no section has this name)");
                continue;
            }
            None => String::new(),
        };
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            key: dotted,
            line,
            problem: format!("is not a {}: {hint}(the keys are: {})", section.what, section.known.join(", ")),
        });
    }
    Ok(())
}

/// The known key `key` is most likely a misspelling of, if any is close.
pub(crate) fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let normal = |k: &str| k.to_ascii_lowercase().replace('-', "_");
    let key = normal(key);
    known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(&key, &normal(candidate)), *candidate))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// The 1-based line of the key at `key_path` in block-style YAML `text`: each
/// segment is looked for below the previous one, deeper indented. `None` when a
/// segment is not found that way (flow style, a key spelt with quotes…); the
/// line of the deepest segment found otherwise. A `[n]` index segment (or
/// suffix) stays on its list's line.
pub(crate) fn line_of(text: &str, key_path: &[&str]) -> Option<usize> {
    let mut lines = text.lines().enumerate();
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for segment in key_path {
        let segment = segment.split('[').next().unwrap_or_default();
        if segment.is_empty() {
            continue;
        }
        loop {
            let Some((index, line)) = lines.next() else { return found };
            let content = line.trim_start();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let indent = line.len() - content.len();
            if parent_indent.is_some_and(|parent| indent <= parent) {
                // Left the parent's block without finding the segment.
                return found;
            }
            let key = content.trim_start_matches("- ").trim_start();
            let key = key.strip_prefix(['"', '\'']).unwrap_or(key);
            if let Some(rest) = key.strip_prefix(segment)
                && rest.trim_start_matches(['"', '\'']).trim_start().starts_with(':')
            {
                parent_indent = Some(indent);
                found = Some(index + 1);
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_text(text: &str) -> Result<(), ConfigError> {
        let document: Value = serde_yaml_ng::from_str(text).unwrap();
        check(&document, text, Path::new("c.yml"))
    }

    #[test]
    fn a_misspelt_key_is_refused_with_its_path_line_and_the_key_meant() {
        let text = "links:\n  tag:\n    module: links.tag\n    alowed_outbound_hosts: [x]\nchains:\n  main:\n    links: [tag]\n    ingres_lists: [in]\n";
        let err = check_text(text).unwrap_err().to_string();
        assert!(err.contains("links.tag.alowed_outbound_hosts") && err.contains("line 4"), "{err}");
        assert!(err.contains("did you mean `allowed_outbound_hosts`?"), "{err}");
        let chain = text.replace("alowed_outbound_hosts", "allowed_outbound_hosts");
        let err = check_text(&chain).unwrap_err().to_string();
        assert!(err.contains("chains.main.ingres_lists") && err.contains("line 8"), "{err}");
        assert!(err.contains("did you mean `ingress_lists`?"), "{err}");
        let err = check_text("chain:\n  main: {}\n").unwrap_err().to_string();
        assert!(err.contains("did you mean `chains`?") && err.contains("line 1"), "{err}");
        let err = check_text("storages:\n  f:\n    module: file\n    optoins: {}\n").unwrap_err().to_string();
        assert!(err.contains("storages.f.optoins") && err.contains("`options`"), "{err}");
        let err = check_text("followers:\n  f:\n    url: http://x\n    pulling_interval_secs: 1\n").unwrap_err();
        assert!(err.to_string().contains("did you mean `pulling_interval`?"), "{err}");
    }

    #[test]
    fn python_only_keys_load_and_unrelated_keys_get_no_guess() {
        let python = "links:\n  tag:\n    module: links.tag\n    ingress-lists: [a]\n    egress-lists: [b]\nchains:\n  c:\n    name: c\n    ingress_lists: [a]\nstorages:\n  s:\n    module: file\n    pip_name: x\n";
        check_text(python).unwrap();
        let err = check_text("links:\n  t:\n    module: m\n    colour: blue\n").unwrap_err().to_string();
        assert!(!err.contains("did you mean") && err.contains("the keys are"), "{err}");
    }

    #[test]
    fn the_known_keys_are_the_structs_fields() {
        assert!(link().known.contains(&"allowed_outbound_hosts") && link().known.contains(&"limits"));
        assert!(chain().known.contains(&"ingress_lists") && chain().known.contains(&"storage_retry_secs"));
        assert_eq!(storage().known, ["module", "options"]);
        assert!(top().known.contains(&"wasm") && follower().known.contains(&"fetch_vcon_limit"));
    }

    #[test]
    fn lines_are_found_below_their_parent_only() {
        let text = "links:\n  a:\n    module: x\n# note\nchains:\n  a:\n    links: [a]\n    timeout: 3\n";
        assert_eq!(line_of(text, &["chains", "a", "timeout"]), Some(8));
        assert_eq!(line_of(text, &["links", "a", "module"]), Some(3));
        assert_eq!(line_of(text, &["chains", "a", "links[0]"]), Some(7));
        assert_eq!(line_of(text, &["links", "a", "timeout"]), Some(2), "not found under links.a: its parent's line");
        assert_eq!(line_of("{links: {a: 1}}", &["links", "a"]), None);
    }
}
