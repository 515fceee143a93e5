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
