//! Links written in Python (componentize-py) and JavaScript (ComponentizeJS): the
//! test fixtures under `links/testing/python/*` and `links/testing/js/*`.
//!
//! The tools live in `<target>/tools` (a Python venv and an npm prefix), so
//! nothing is installed system-wide. `install` puts them there (`cargo xtask test`
//! does); `build` builds each fixture when its tool is present, and skips a
//! fixture whose inputs (sources, helper package, WIT, tool version) did not change
//! since its last build.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Pinned tool versions.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

/// Where the tools live.
pub fn tools_dir(target: &Path) -> PathBuf {
    target.join("tools")
}

fn componentize_py(target: &Path) -> PathBuf {
    tools_dir(target).join("py/bin/componentize-py")
}

fn componentize_js(target: &Path) -> PathBuf {
    tools_dir(target).join("js/node_modules/.bin/componentize-js")
}

fn run(command: &mut Command, what: &str) -> Result<()> {
    eprintln!("xtask: {what}");
    let status = command.status().with_context(|| format!("{what}: cannot start"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Install componentize-py (pip, in a venv) and ComponentizeJS (npm) when missing.
pub fn install(target: &Path) -> Result<()> {
    let tools = tools_dir(target);
    if !componentize_py(target).is_file() {
        let venv = tools.join("py");
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv), "creating the componentize-py venv")?;
        run(
            Command::new(venv.join("bin/pip")).args(["install", "--quiet", COMPONENTIZE_PY]),
            "installing componentize-py",
        )?;
    }
    if !componentize_js(target).is_file() {
        let prefix = tools.join("js");
        std::fs::create_dir_all(&prefix).with_context(|| format!("creating {}", prefix.display()))?;
        if !prefix.join("package.json").is_file() {
            std::fs::write(prefix.join("package.json"), "{\"private\": true}\n")?;
        }
        run(
            Command::new("npm").current_dir(&prefix).args([
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                COMPONENTIZE_JS,
            ]),
            "installing ComponentizeJS",
        )?;
    }
    Ok(())
}

/// A short digest of files' contents (FNV-1a), to tell whether a fixture changed.
fn digest(files: &[PathBuf], extra: &str) -> Result<String> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(extra.as_bytes());
    for file in files {
        feed(file.display().to_string().as_bytes());
        feed(&std::fs::read(file).with_context(|| format!("reading {}", file.display()))?);
    }
    Ok(format!("{hash:016x}"))
}

fn files_under(dir: &Path, extension: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == extension) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn fixtures(root: &Path, language: &str) -> Result<Vec<(String, PathBuf)>> {
    let dir = root.join("links/testing").join(language);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            found.push((name, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Build `out` unless its recorded digest matches.
fn build_one(out: &Path, inputs: &[PathBuf], tool: &str, build: impl FnOnce() -> Result<()>) -> Result<()> {
    let stamp = out.with_extension("wasm.inputs");
    let wanted = digest(inputs, tool)?;
    if out.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(());
    }
    build()?;
    std::fs::write(&stamp, wanted).with_context(|| format!("writing {}", stamp.display()))
}

/// Build the Python and JavaScript fixtures into `<target>/wasm/script-links/`
/// and return `(file name, built path)` pairs to copy beside the host binaries.
/// A language whose tool is missing is skipped with a note.
pub fn build(root: &Path, target: &Path) -> Result<Vec<(String, PathBuf)>> {
    let out_dir = target.join("wasm/script-links");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let wit = root.join("wit/link.wit");
    let mut built = Vec::new();

    let py = componentize_py(target);
    if py.is_file() {
        let sdk = root.join("sdk/python/conserver_link");
        for (name, dir) in fixtures(root, "python")? {
            let out = out_dir.join(format!("py_{name}.wasm"));
            let mut inputs = files_under(&dir, "py")?;
            inputs.extend(files_under(&sdk, "py")?);
            inputs.push(wit.clone());
            build_one(&out, &inputs, COMPONENTIZE_PY, || {
                run(
                    Command::new(&py)
                        .arg("-d")
                        .arg(&wit)
                        .args(["-w", "link", "componentize", "app", "-p"])
                        .arg(&dir)
                        .arg("-p")
                        .arg(root.join("sdk/python"))
                        .arg("-o")
                        .arg(&out),
                    &format!("componentize-py {}", dir.display()),
                )
            })?;
            built.push((format!("py_{name}.wasm"), out));
        }
    } else {
        eprintln!("xtask: componentize-py not installed; Python fixtures not built (`cargo xtask test` installs it)");
    }

    let js = componentize_js(target);
    if js.is_file() {
        let helper = root.join("sdk/js/conserver-link.js");
        for (name, dir) in fixtures(root, "js")? {
            let out = out_dir.join(format!("js_{name}.wasm"));
            let mut inputs = files_under(&dir, "js")?;
            inputs.push(helper.clone());
            inputs.push(wit.clone());
            build_one(&out, &inputs, COMPONENTIZE_JS, || {
                // ComponentizeJS resolves imports next to the entry file: stage
                // the fixture with the helper module and the WIT.
                let stage = target.join("tools/js-stage").join(&name);
                std::fs::create_dir_all(&stage)?;
                for file in files_under(&dir, "js")?.iter().chain([&helper, &wit]) {
                    let to = stage.join(file.file_name().unwrap_or_default());
                    std::fs::copy(file, &to).with_context(|| format!("copying {}", file.display()))?;
                }
                run(
                    Command::new(&js)
                        .current_dir(&stage)
                        .args(["app.js", "--wit", "link.wit", "-n", "link", "-o"])
                        .arg(&out)
                        .args(["-d", "stdio", "random", "clocks", "http", "fetch-event"]),
                    &format!("componentize-js {}", dir.display()),
                )
            })?;
            built.push((format!("js_{name}.wasm"), out));
        }
    } else {
        eprintln!(
            "xtask: ComponentizeJS not installed; JavaScript fixtures not built (`cargo xtask test` installs it)"
        );
    }
    Ok(built)
}
