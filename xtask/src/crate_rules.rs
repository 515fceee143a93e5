//! The host's dependency rules, checked: `docs/architecture.md` has a table of the
//! host crates with the conserver crates each may depend on; every
//! `host/<crate>/Cargo.toml` may name in `[dependencies]` only those (dev- and
//! build-dependencies are free). A crate missing from the table is an error too,
//! so a new crate gets its row.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The marker before the table in the architecture page.
const MARKER: &str = "<!-- crate-rules:";

/// Check every host crate against the table; the error lists each breach.
pub fn check(root: &Path) -> Result<()> {
    let page = root.join("docs/architecture.md");
    let text = std::fs::read_to_string(&page).with_context(|| format!("reading {}", page.display()))?;
    let allowed = rules(&text).with_context(|| format!("reading the crate table of {}", page.display()))?;
    let mut problems = Vec::new();
    let host = root.join("host");
    let mut crates: Vec<_> = std::fs::read_dir(&host)
        .with_context(|| format!("listing {}", host.display()))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    crates.sort();
    for name in crates {
        let manifest = host.join(&name).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
        let Some(may) = allowed.get(&name) else {
            problems.push(format!(
                "host/{name} has no row in docs/architecture.md: add one saying what it owns and may use"
            ));
            continue;
        };
        for dependency in conserver_dependencies(&text) {
            if !may.contains(&dependency) {
                problems.push(format!(
                    "host/{name} depends on conserver-{dependency}, which docs/architecture.md does not allow it: \
                     move the code, or change the rule there (with a reason)"
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!("crate dependency rules broken:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

/// The table after [`MARKER`]: crate → the conserver crates it may use.
fn rules(page: &str) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let (_, after) = page.split_once(MARKER).context("no crate-rules marker")?;
    let mut rules = BTreeMap::new();
    for line in after.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let (Some(name), Some(may)) = (cells.first(), cells.last()) else { continue };
        let name = name.trim_matches('`');
        if name == "crate" || name.starts_with("---") || cells.len() < 3 {
            continue;
        }
        let may = may.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        rules.insert(name.to_string(), may);
    }
    if rules.is_empty() {
        bail!("the table after the marker is empty");
    }
    Ok(rules)
}

/// The `conserver-*` crates named in a manifest's `[dependencies]`, without the prefix.
fn conserver_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut found = BTreeSet::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        if section != "[dependencies]" {
            continue;
        }
        let Some((key, _)) = line.split_once('=') else { continue };
        let key = key.trim();
        let key = key.split_once('.').map_or(key, |(name, _)| name);
        if let Some(short) = key.strip_prefix("conserver-") {
            found.insert(short.to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::{conserver_dependencies, rules};

    #[test]
    fn the_table_and_the_manifests_are_read() {
        let page = "x\n<!-- crate-rules: ... -->\n\n| crate | owns | may depend on |\n|---|---|---|\n\
                    | `core` | the model | python-json |\n| `config` | yaml | |\n| `api` | http | core, config |\n\nafter";
        let rules = rules(page).unwrap_or_default();
        assert_eq!(rules.len(), 3);
        assert!(rules["config"].is_empty());
        assert!(rules["api"].contains("core") && rules["api"].contains("config"));
        let manifest = "[package]\nname = \"conserver-api\"\n[dependencies]\nconserver-core.workspace = true\n\
                        conserver-pipeline = { workspace = true, optional = true }\nserde = \"1\"\n\
                        [dev-dependencies]\nconserver-fixtures.workspace = true\n";
        let found: Vec<String> = conserver_dependencies(manifest).into_iter().collect();
        assert_eq!(found, ["core", "pipeline"]);
    }
}
