//! `conserver link new <name> [--lang rust|python|js]`: a link project from the
//! SDK templates (built into the binary), renamed. A Rust project points at the
//! SDK crate; Python and JavaScript projects carry their helper module and the
//! WIT contract, so they build anywhere the language's tool is installed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// A template file: path in the project, contents.
type File = (&'static str, &'static str);

const RUST: &[File] = &[
    ("Cargo.toml", include_str!("../../../../sdk/template/Cargo.toml")),
    ("src/lib.rs", include_str!("../../../../sdk/template/src/lib.rs")),
    ("README.md", include_str!("../../../../sdk/template/README.md")),
    (".cargo/config.toml", include_str!("../../../../sdk/template/.cargo/config.toml")),
];

const WIT: &str = include_str!("../../../../wit/link.wit");

const PYTHON: &[File] = &[
    ("app.py", include_str!("../../../../sdk/python/template/app.py")),
    ("build.sh", include_str!("../../../../sdk/python/template/build.sh")),
    ("README.md", include_str!("../../../../sdk/python/template/README.md")),
    ("wit/link.wit", WIT),
    ("conserver_link/__init__.py", include_str!("../../../../sdk/python/conserver_link/__init__.py")),
    ("conserver_link/vcon.py", include_str!("../../../../sdk/python/conserver_link/vcon.py")),
    ("conserver_link/link.py", include_str!("../../../../sdk/python/conserver_link/link.py")),
    ("conserver_link/host.py", include_str!("../../../../sdk/python/conserver_link/host.py")),
];

const JS: &[File] = &[
    ("app.js", include_str!("../../../../sdk/js/template/app.js")),
    ("build.sh", include_str!("../../../../sdk/js/template/build.sh")),
    ("README.md", include_str!("../../../../sdk/js/template/README.md")),
    ("wit/link.wit", WIT),
    ("conserver-link.js", include_str!("../../../../sdk/js/conserver-link.js")),
];

/// The languages `link new` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// The Rust SDK (`cargo build`).
    Rust,
    /// `conserver_link` with componentize-py.
    Python,
    /// `conserver-link.js` with ComponentizeJS.
    Js,
}

impl Lang {
    /// `rust`, `python`/`py`, `js`/`javascript`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Self::Rust),
            "python" | "py" => Ok(Self::Python),
            "js" | "javascript" => Ok(Self::Js),
            other => bail!("--lang {other}: choose rust, python or js"),
        }
    }

    fn files(self) -> &'static [File] {
        match self {
            Self::Rust => RUST,
            Self::Python => PYTHON,
            Self::Js => JS,
        }
    }

    /// How to build the project, for the closing message.
    pub fn build_hint(self) -> &'static str {
        match self {
            Self::Rust => "cargo build --release",
            Self::Python | Self::Js => "./build.sh",
        }
    }
}

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

/// A template file's text for a link called `name` (built against `sdk`, for Rust).
pub fn render(text: &str, name: &str, sdk: Option<&Path>) -> String {
    let mut text = text.to_string();
    if let Some(sdk) = sdk {
        let sdk = sdk.display().to_string().replace('\\', "/");
        text = text
            .replace("conserver-link-sdk = { path = \"..\" }", &format!("conserver-link-sdk = {{ path = \"{sdk}\" }}"))
            .replace("# Inside the conserver repository; elsewhere use a git or registry dependency.\n", "");
    }
    text.replace("MyLink", &camel_case(name)).replace("my_link", name)
}

/// Create the project; returns its directory.
pub fn run(name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>, lang: Lang) -> Result<PathBuf> {
    check_name(name)?;
    let sdk = match lang {
        Lang::Rust => Some(match sdk.or_else(built_with_sdk) {
            Some(sdk) if sdk.join("Cargo.toml").is_file() => sdk.canonicalize().unwrap_or(sdk),
            Some(sdk) => bail!(
                "{} is not the conserver link SDK (no Cargo.toml there): pass --sdk <path to sdk/>",
                sdk.display()
            ),
            None => bail!("this binary's SDK source is gone: pass --sdk <path to the conserver repository's sdk/>"),
        }),
        Lang::Python | Lang::Js => None,
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty: choose another --dir", dir.display());
    }
    for (relative, text) in lang.files() {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, render(text, name, sdk.as_deref()))
            .with_context(|| format!("writing {}", path.display()))?;
        if relative.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("making {} executable", path.display()))?;
        }
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
    fn the_rust_template_is_renamed_and_pointed_at_the_sdk() {
        let cargo = render(RUST[0].1, "redact_pii", Some(Path::new("/opt/sdk")));
        assert!(cargo.contains("name = \"redact_pii\""), "{cargo}");
        assert!(cargo.contains("conserver-link-sdk = { path = \"/opt/sdk\" }"), "{cargo}");
        let lib = render(RUST[1].1, "redact_pii", None);
        assert!(lib.contains("RedactPii") && !lib.contains("MyLink"), "{lib}");
    }

    #[test]
    fn python_and_js_projects_carry_their_helpers_and_the_wit() {
        for lang in [Lang::Python, Lang::Js] {
            let files: Vec<&str> = lang.files().iter().map(|(path, _)| *path).collect();
            assert!(files.contains(&"wit/link.wit") && files.contains(&"build.sh"), "{files:?}");
        }
        let build = render(PYTHON[1].1, "redact_pii", None);
        assert!(build.contains("-o redact_pii.wasm"), "{build}");
        assert_eq!(Lang::parse("py").unwrap(), Lang::Python);
        assert!(Lang::parse("cobol").is_err());
    }
}
