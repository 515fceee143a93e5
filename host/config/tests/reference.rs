//! docs/configuration.md is generated from the config structs: every field's
//! doc comment, by section. This test regenerates the reference and fails when the
//! committed file differs (run with `CONSERVER_BLESS=1` to rewrite it), and checks
//! that every environment variable `Settings` reads is documented.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

const START: &str = "<!-- generated: config reference (host/config/tests/reference.rs) -->";
const END: &str = "<!-- end of generated config reference -->";

/// Struct → where its fields live in the YAML file.
const SECTIONS: &[(&str, &str, &str)] = &[
    ("file.rs", "Config", "top level"),
    ("file.rs", "LinkDef", "links.<name> (and tracers.<name>)"),
    ("limits.rs", "LimitsOverride", "links.<name>.limits"),
    ("file.rs", "StorageDef", "storages.<name>"),
    ("file.rs", "ChainDef", "chains.<name>"),
    ("file.rs", "FollowerDef", "followers.<name>"),
    ("limits.rs", "WasmSection", "wasm"),
    ("limits.rs", "Limits", "wasm.limits"),
];

fn crate_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn docs(attrs: &[syn::Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    lines.join(" ").trim().to_string()
}

fn is_flattened(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().filter(|a| a.path().is_ident("serde")).any(|a| {
        let mut flat = false;
        let _ = a.parse_nested_meta(|meta| {
            if meta.path.is_ident("flatten") {
                flat = true;
            } else if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            }
            Ok(())
        });
        flat
    })
}

fn type_text(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(path) => path
            .path
            .segments
            .iter()
            .map(|segment| {
                let args = match &segment.arguments {
                    syn::PathArguments::AngleBracketed(args) => {
                        let inner: Vec<String> = args
                            .args
                            .iter()
                            .filter_map(|arg| match arg {
                                syn::GenericArgument::Type(t) => Some(type_text(t)),
                                _ => None,
                            })
                            .collect();
                        format!("<{}>", inner.join(", "))
                    }
                    _ => String::new(),
                };
                format!("{}{args}", segment.ident)
            })
            .collect::<Vec<_>>()
            .join("::"),
        _ => "?".into(),
    }
}

/// The generated reference.
fn generate() -> String {
    let mut out = String::new();
    for (file, name, section) in SECTIONS {
        let source = std::fs::read_to_string(crate_dir().join("src").join(file)).unwrap();
        let parsed = syn::parse_file(&source).unwrap();
        let item = parsed
            .items
            .iter()
            .find_map(|item| match item {
                syn::Item::Struct(s) if s.ident == name => Some(s),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no struct {name} in src/{file}"));
        out.push_str(&format!("### `{section}`\n\n{}\n\n| key | type | meaning |\n|---|---|---|\n", docs(&item.attrs)));
        for field in &item.fields {
            if is_flattened(&field.attrs) {
                continue;
            }
            let key = field.ident.as_ref().unwrap().to_string();
            let meaning = docs(&field.attrs).replace('|', "\\|");
            assert!(!meaning.is_empty(), "{name}.{key} has no doc comment: every config field must say what it does");
            out.push_str(&format!("| `{key}` | `{}` | {meaning} |\n", type_text(&field.ty)));
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_configuration_reference_matches_the_structs() {
    let path = crate_dir().join("../../docs/configuration.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let (before, rest) = text.split_once(START).expect("docs/configuration.md lost its start marker");
    let (_, after) = rest.split_once(END).expect("docs/configuration.md lost its end marker");
    let expected = format!("{before}{START}\n\n{}{END}{after}", generate());
    if std::env::var_os("CONSERVER_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    assert!(
        text == expected,
        "docs/configuration.md is out of date with the config structs: run \
         `CONSERVER_BLESS=1 cargo test -p conserver-config --test reference` and commit the result"
    );
}

#[test]
fn every_environment_variable_is_documented() {
    let settings = std::fs::read_to_string(crate_dir().join("src/settings.rs")).unwrap();
    let docs = std::fs::read_to_string(crate_dir().join("../../docs/configuration.md")).unwrap();
    let mut names: Vec<&str> = settings
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.len() > 3
                && s.contains('_')
                && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.contains(&"REDIS_URL") && names.len() > 15, "the scan found too little: {names:?}");
    let missing: Vec<&&str> = names.iter().filter(|name| !docs.contains(&format!("`{name}`"))).collect();
    assert!(missing.is_empty(), "docs/configuration.md does not document {missing:?}");
}
