//! `conserver link new <name>`: a link project from the SDK template (the files of
//! `sdk/template`, built into the binary), renamed and pointed at the SDK.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The template's files: path in the project, contents.
const TEMPLATE: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../../../sdk/template/Cargo.toml")),
    ("src/lib.rs", include_str!("../../../../sdk/template/src/lib.rs")),
    ("README.md", include_str!("../../../../sdk/template/README.md")),
    (".cargo/config.toml", include_str!("../../../../sdk/template/.cargo/config.toml")),
];

/// Where this binary's SDK source was, if it is still there.
fn built_with_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
    sdk.join("Cargo.toml").is_file().then(|| sdk.canonicalize().unwrap_or(sdk))
}

/// Whether `name` works as a crate, a file and a config key.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64;
    if !valid {
        bail!("`{name}` is not a usable link name: use snake_case (a-z, 0-9, _), starting with a letter");
    }
    Ok(())
}

fn camel_case(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The template's text for a link called `name` built against `sdk`.
pub fn render(text: &str, name: &str, sdk: &Path) -> String {
    let sdk = sdk.display().to_string().replace('\\', "/");
    text.replace("conserver-link-sdk = { path = \"..\" }", &format!("conserver-link-sdk = {{ path = \"{sdk}\" }}"))
        .replace("# Inside the conserver repository; elsewhere use a git or registry dependency.\n", "")
        .replace("MyLink", &camel_case(name))
        .replace("my_link", name)
}

/// Create the project.
pub fn run(name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> Result<PathBuf> {
    check_name(name)?;
    let sdk = match sdk.or_else(built_with_sdk) {
        Some(sdk) if sdk.join("Cargo.toml").is_file() => sdk.canonicalize().unwrap_or(sdk),
        Some(sdk) => {
            bail!("{} is not the conserver link SDK (no Cargo.toml there): pass --sdk <path to sdk/>", sdk.display())
        }
        None => bail!("this binary's SDK source is gone: pass --sdk <path to the conserver repository's sdk/>"),
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty: choose another --dir", dir.display());
    }
    for (relative, text) in TEMPLATE {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, render(text, name, &sdk)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("redact_pii").is_ok());
        assert!(check_name("Redact").is_err());
        assert!(check_name("2fa").is_err());
        assert!(check_name("a-b").is_err());
    }

    #[test]
    fn the_template_is_renamed_and_pointed_at_the_sdk() {
        let cargo = render(TEMPLATE[0].1, "redact_pii", Path::new("/opt/sdk"));
        assert!(cargo.contains("name = \"redact_pii\""), "{cargo}");
        assert!(cargo.contains("conserver-link-sdk = { path = \"/opt/sdk\" }"), "{cargo}");
        let lib = render(TEMPLATE[1].1, "redact_pii", Path::new("/opt/sdk"));
        assert!(lib.contains("RedactPii") && !lib.contains("MyLink"), "{lib}");
    }
}
