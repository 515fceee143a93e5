//! The shipped `config.example.yml` is valid and loads every component it names.

use std::process::Command;

use crate::support::binary;

#[test]
fn conserver_check_accepts_the_example_config() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.example.yml");
    let data = tempfile::tempdir().unwrap();
    let out =
        Command::new(binary()).arg("check").arg(&example).env("CONSERVER_DATA_DIR", data.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}

/// Validate `config` (YAML text) against `schema` (a file) with Python's
/// `jsonschema` (an implementation independent of ours; `cargo xtask test`
/// installs it): `Ok` or the validator's message.
fn python_validates(schema: &std::path::Path, config: &str) -> Result<(), String> {
    let script = "import json, sys, yaml, jsonschema\n\
                  schema = json.load(open(sys.argv[1]))\n\
                  jsonschema.Draft202012Validator.check_schema(schema)\n\
                  errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(yaml.safe_load(sys.stdin.read()) or {}), key=str)\n\
                  print('\\n'.join(e.message + ' at ' + '/'.join(map(str, e.absolute_path)) for e in errors))\n\
                  sys.exit(1 if errors else 0)\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with jsonschema and PyYAML (cargo xtask test installs them)");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(config.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

#[test]
fn config_schema_accepts_the_example_and_refuses_what_the_loader_refuses() {
    let out = Command::new(binary()).args(["config", "schema"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("conserver.schema.json");
    std::fs::write(&schema, &out.stdout).unwrap();

    let example =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.example.yml"))
            .unwrap();
    python_validates(&schema, &example).unwrap_or_else(|e| panic!("the example config fails the schema: {e}"));
    let python = "links:\n  tag:\n    module: links.tag\n    ingress-lists: [a]\n    options:\n      tags: [x]\nchains:\n  main:\n    links: [tag]\n    ingress_lists: [a]\n";
    python_validates(&schema, python).unwrap_or_else(|e| panic!("a Python config's extra keys are allowed: {e}"));

    for (bad, expected) in [
        ("chains:\n  main:\n    ingres_lists: [a]\n", "ingres_lists"),
        ("links:\n  t:\n    module: links.tag\n    alowed_outbound_hosts: []\n", "alowed_outbound_hosts"),
        ("links:\n  t:\n    module: links.tag\n    options:\n      tags: 5\n", "tags"),
        ("links:\n  t:\n    module: links.tag\n    limits:\n      fuel: lots\n", "fuel"),
    ] {
        let err = python_validates(&schema, bad).expect_err(bad);
        assert!(err.contains(expected), "{bad}: {err}");
    }
    // A component from elsewhere brings no schema: its options are free.
    python_validates(&schema, "links:\n  t:\n    component: my.wasm\n    options:\n      tags: 5\n").unwrap();
}
