//! `jq_link`: let the vCon go on, or halt the chain, by a jq expression.
//!
//! Options:
//! - `filter` (string, default `"."`): the jq program, run on the whole vCon.
//! - `forward_matches` (bool, default `true`): `true` lets matching vCons go on and
//!   halts the others; `false` does the opposite.
//!
//! As in the Python conserver's `links.jq_link`, the program's outputs are all
//! computed and the *first* one decides: it is a match when it is true by **Python
//! truthiness**, not jq's: `null`, `false`, `0`, `""`, `[]` and `{}` are all
//! non-matches, and so is a program with no output. The chain goes on (vCon
//! unchanged) when the match equals `forward_matches`, and halts quietly otherwise
//! (no later links, storages or egress).
//!
//! A runtime error of the program halts the chain too (logged), as Python's `None`.
//! One exception, kept from Python: when the error is a string type error (jaq's
//! `cannot use … as string`, the counterpart of jq's `startswith() requires string
//! inputs`), the program is run once more on a copy of the vCon in which every
//! `body` array keeps only its string items, so string filters work on legacy
//! mixed-type tag arrays.
//!
//! The jq engine is jaq (`jaq-core`, `jaq-std`, `jaq-json`), which runs the jq
//! language with a few documented differences from jq 1.7 (some error messages, a
//! few missing builtins such as `tostream`); the filters of the Python tests behave
//! the same. The program is compiled on every call (a fresh instance per vCon),
//! about 5 million fuel and under 1 ms. jaq evaluates recursively, so this crate
//! links with a 1 MiB wasm stack (see `build.rs`): a recursive `def` that is not
//! tail-recursive can go a few hundred levels deep before the call traps (an error
//! for the vCon, not a crash of the worker).
//!
//! Differences from Python:
//! - A `filter` that does not compile is a fatal error naming the option (the vCon
//!   goes to the dead-letter queue with the jq error), not a quiet halt: a typo in
//!   the config would otherwise drop every vCon without a trace.
//! - The retry is triggered by jaq's wording of string type errors, as said above.
//! - A missing vCon is the host's concern; Python returned `None` for it.
//! - Missing `options` mean `{}` (Python crashed on them); a `forward_matches` that is
//!   not a boolean is a fatal error naming it.

use conserver_link_sdk::prelude::*;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, compile, data};
use jaq_json::Val;
use serde_json::Value;

/// The `jq_link` link.
pub struct JqLink;

type Data = data::JustLut<Val>;
type Program = jaq_core::Filter<Data>;

/// Compile a jq program, or describe why it does not compile. Every vCon gets a
/// fresh instance, so the program is compiled on every call: it is first tried
/// with the native functions alone (enough for most filters: paths, comparisons,
/// `length`, `select`, …), which costs a small fraction of parsing the standard
/// library's jq definitions, and only then with the whole standard library.
fn compile(code: &str) -> Result<Program, String> {
    compile_natives(code).or_else(|_| compile_with_std(code))
}

fn compile_natives(code: &str) -> Result<Program, String> {
    let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
    let arena = Arena::default();
    let modules = Loader::new(jaq_core::defs()).load(&arena, File { code, path: () }).map_err(describe_load_errors)?;
    Compiler::default().with_funs(funs).compile(modules).map_err(describe_compile_errors)
}

fn compile_with_std(code: &str) -> Result<Program, String> {
    let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
    let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
    let arena = Arena::default();
    let modules = Loader::new(defs).load(&arena, File { code, path: () }).map_err(describe_load_errors)?;
    Compiler::default().with_funs(funs).compile(modules).map_err(describe_compile_errors)
}

/// The start of `rest`, to show where an error is.
fn near(rest: &str) -> String {
    if rest.is_empty() {
        return "at the end".to_string();
    }
    let shown: String = rest.chars().take(24).collect();
    let more = if shown.len() < rest.len() { "…" } else { "" };
    format!("at `{shown}{more}`")
}

fn describe_load_errors(errors: load::Errors<&str, ()>) -> String {
    let mut messages = Vec::new();
    for (_file, error) in errors {
        match error {
            load::Error::Io(failures) => {
                messages.extend(failures.into_iter().map(|(path, why)| format!("cannot load module `{path}`: {why}")));
            }
            load::Error::Lex(failures) => messages.extend(failures.into_iter().map(|(expect, rest)| {
                let expected = match expect {
                    load::lex::Expect::Digit => "a digit".to_string(),
                    load::lex::Expect::Ident => "an identifier".to_string(),
                    load::lex::Expect::Delim(open) => format!("the closing delimiter of `{open}`"),
                    load::lex::Expect::Escape => "a string escape sequence".to_string(),
                    load::lex::Expect::Unicode => "a 4-digit hexadecimal code point".to_string(),
                    load::lex::Expect::Token => "a token".to_string(),
                    other => format!("{other:?}"),
                };
                format!("expected {expected} {}", near(rest))
            })),
            load::Error::Parse(failures) => messages.extend(
                failures.into_iter().map(|(expect, found)| format!("expected {} {}", expect.as_str(), near(found))),
            ),
        }
    }
    messages.join("; ")
}

fn describe_compile_errors(errors: compile::Errors<&str, ()>) -> String {
    let mut messages = Vec::new();
    for (_file, undefined) in errors {
        messages.extend(undefined.into_iter().map(|(name, kind)| match kind {
            compile::Undefined::Filter(arity) => format!("undefined filter `{name}/{arity}`"),
            other => format!("undefined {} `{name}`", other.as_str()),
        }));
    }
    messages.join("; ")
}

/// Python's `bool()` of a JSON value.
fn python_truthy(value: &Val) -> bool {
    match value {
        Val::Null => false,
        Val::Bool(b) => *b,
        Val::Num(_) => jaq_std::ValT::as_f64(value).is_none_or(|n| n != 0.0),
        Val::BStr(bytes) | Val::TStr(bytes) => !bytes.is_empty(),
        Val::Arr(items) => !items.is_empty(),
        Val::Obj(entries) => !entries.is_empty(),
    }
}

/// Run the program to the end (as Python's `list(program.input(...))`) and judge its
/// first output; `Err` is the first runtime error.
fn first_output_matches(program: &Program, input: Val) -> Result<bool, String> {
    let ctx = Ctx::<Data>::new(&program.lut, Vars::new([]));
    let mut first = None;
    for output in program.id.run((ctx, input)) {
        match output {
            Ok(value) => {
                first.get_or_insert_with(|| python_truthy(&value));
            }
            Err(exception) => {
                return Err(match exception.get_err() {
                    Ok(error) => error.to_string(),
                    Err(other) => match other.get_halt() {
                        Ok(code) => format!("the program called halt (exit code {code})"),
                        Err(_) => "the program ended abnormally".to_string(),
                    },
                });
            }
        }
    }
    Ok(first.unwrap_or(false))
}

/// jaq's wording for a value used where a string is needed (jq: "requires string
/// inputs").
fn is_string_type_error(message: &str) -> bool {
    message.starts_with("cannot use ") && message.ends_with(" as string")
}

/// A copy of `value` in which every `body` array keeps only its string items.
fn strings_only_bodies(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, child)| {
                    let child = match (key.as_str(), child) {
                        ("body", Value::Array(items)) => {
                            Value::Array(items.iter().filter(|item| item.is_string()).cloned().collect())
                        }
                        _ => strings_only_bodies(child),
                    };
                    (key.clone(), child)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strings_only_bodies).collect()),
        other => other.clone(),
    }
}

fn parse(text: &str) -> Result<Val, LinkError> {
    jaq_json::read::parse_single(text.as_bytes())
        .map_err(|e| LinkError::fatal(format!("the vCon could not be read as jq input: {e:?}")))
}

/// Whether the vCon matches, or the runtime error that prevented deciding.
fn matches(program: &Program, vcon: &Vcon) -> Result<Result<bool, String>, LinkError> {
    let text = vcon.to_json()?;
    match first_output_matches(program, parse(&text)?) {
        Err(message) if is_string_type_error(&message) => {
            conserver_link_sdk::log::debug(&format!("{message}; retrying with only the string items of `body` arrays"));
            let stripped = strings_only_bodies(&Value::Object(vcon.to_map())).to_string();
            Ok(first_output_matches(program, parse(&stripped)?))
        }
        other => Ok(other),
    }
}

impl Link for JqLink {
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult {
        let filter: String = ctx.option_or("filter", ".".to_string())?;
        let forward_matches: bool = ctx.option_or("forward_matches", true)?;
        let program = compile(&filter).map_err(|why| {
            LinkError::fatal(format!(
                "option `filter` of link `{}` must be a valid jq program; `{filter}` does not compile: {why}",
                ctx.link_name
            ))
        })?;
        let matched = match matches(&program, &vcon)? {
            Ok(matched) => matched,
            Err(message) => {
                conserver_link_sdk::log::error(&format!("jq filter `{filter}` failed on the vCon: {message}; halting"));
                return Ok(Verdict::halt());
            }
        };
        let did = if matched { "matches" } else { "does not match" };
        if matched == forward_matches {
            conserver_link_sdk::log::info(&format!("the vCon {did} the filter; forwarding"));
            Ok(Verdict::unchanged())
        } else {
            conserver_link_sdk::log::info(&format!("the vCon {did} the filter; filtering out"));
            Ok(Verdict::halt())
        }
    }
}

export_link!(JqLink);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The vCon of the Python tests.
    fn sample() -> Value {
        json!({
            "uuid": "test-uuid",
            "vcon": "0.0.1",
            "meta": {"arc_display_type": "Cat", "weight": "3.6kg", "arc_display_name": "Test Cat"},
            "parties": [{"role": "owner", "name": "Alice"}, {"role": "vet", "name": "Dr. Bob"}],
            "dialog": [],
            "analysis": [{"type": "summary", "body": "Test summary", "vendor": "test"}],
            "attachments": [{"type": "report", "body": "Test report"}],
            "redacted": {}
        })
    }

    fn run_on(doc: &Value, options: Value) -> LinkResult {
        let vcon = Vcon::from_json(&doc.to_string()).unwrap();
        JqLink::process(&Context::for_test("jq", options), vcon)
    }

    /// Whether the vCon goes on (forwarded) with `filter` and `forward_matches`.
    fn forwards_doc(doc: &Value, filter: &str, forward_matches: bool) -> bool {
        let verdict = run_on(doc, json!({"filter": filter, "forward_matches": forward_matches})).unwrap();
        assert!(verdict.vcon().is_none(), "the vCon is never changed");
        assert!(verdict.directives().is_empty());
        !verdict.is_halt()
    }

    fn forwards(filter: &str) -> bool {
        forwards_doc(&sample(), filter, true)
    }

    #[test]
    fn display_type_comparison() {
        assert!(forwards(r#".meta.arc_display_type == "Cat""#));
        assert!(!forwards(r#".meta.arc_display_type == "Dog""#));
    }

    #[test]
    fn parties_length_and_role_with_any_on_an_object() {
        assert!(forwards(".parties | length == 2"));
        assert!(forwards(r#".parties[] | select(.role == "vet") | any"#));
        assert!(!forwards(r#".parties[] | select(.role == "cat") | any"#), "no output is no match");
    }

    #[test]
    fn analysis_and_attachment_presence() {
        assert!(forwards(".analysis | length > 0"));
        assert!(forwards(r#".analysis[] | select(.type == "summary") | any"#));
        assert!(forwards(".attachments | length > 0"));
        assert!(forwards(r#".attachments[] | select(.type == "report") | any"#));
    }

    #[test]
    fn mixed_type_body_arrays_are_retried_with_their_strings_only() {
        let mut doc = sample();
        doc["attachments"][0]["body"] = json!(["call_type:1", 2, "call_type:2", {"k": "v"}]);
        let filter = r#".attachments[0] | select(.body[] | startswith("call_type:") and . != "call_type:2")"#;
        assert!(forwards_doc(&doc, filter, true));
        // Only "call_type:2" among the strings: no output after the retry, no match.
        doc["attachments"][0]["body"] = json!([2, "call_type:2"]);
        assert!(!forwards_doc(&doc, filter, true));
    }

    #[test]
    fn an_error_after_the_first_output_still_counts_as_an_error() {
        // jq runs to the end in Python; an error anywhere means no forward.
        let doc = json!({"items": [1, "x"]});
        assert!(!forwards_doc(&doc, ".items[] | . + 1", true));
        assert!(!forwards_doc(&doc, ".items[] | . + 1", false), "errors halt whatever forward_matches says");
    }

    #[test]
    fn the_retry_happens_once_and_only_for_string_type_errors() {
        let doc = json!({"attachments": [{"body": [1, "a"]}], "n": {"body": [{"x": 1}]}});
        assert!(forwards_doc(&doc, r#".attachments[0].body | map(startswith("a")) | any"#, true));
        // Not a string type error: no retry, halt.
        assert!(!forwards_doc(&doc, ".n.body[0] | keys | .[0] + 1", true));
        // A string type error that stays after stripping bodies: halt.
        assert!(!forwards_doc(&doc, r#".n | startswith("a")"#, true));
    }

    #[test]
    fn and_or_combinations() {
        assert!(forwards(r#"(.meta.arc_display_type == "Cat") and (.analysis | length > 0)"#));
        assert!(forwards(r#"(.meta.arc_display_type == "Dog") or (.analysis | length > 0)"#));
        assert!(!forwards(r#"(.meta.arc_display_type == "Dog") and (.analysis | length > 0)"#));
    }

    #[test]
    fn redacted_comparisons() {
        assert!(forwards(".redacted == {}"));
        let mut doc = sample();
        doc["redacted"] = json!({"some": "redaction"});
        assert!(forwards_doc(&doc, ".redacted != {}", true));
        assert!(!forwards_doc(&doc, ".redacted == {}", true));
    }

    #[test]
    fn numeric_comparisons() {
        let mut doc = sample();
        doc["meta"]["count"] = json!(42);
        assert!(forwards_doc(&doc, ".meta.count > 40", true));
        assert!(forwards_doc(&doc, ".meta.count < 50", true));
        assert!(!forwards_doc(&doc, ".meta.count > 50", true));
    }

    #[test]
    fn forward_matches_false_inverts() {
        assert!(forwards_doc(&sample(), r#".attributes.arc_display_type == "Dog""#, false));
        assert!(!forwards_doc(&sample(), r#".meta.arc_display_type == "Cat""#, false));
        assert!(forwards_doc(&sample(), "empty", false), "no output is a non-match");
    }

    #[test]
    fn default_filter_matches_any_non_empty_vcon() {
        let verdict = run_on(&sample(), json!({})).unwrap();
        assert!(!verdict.is_halt());
        let verdict = run_on(&sample(), json!({"filter": null, "forward_matches": null})).unwrap();
        assert!(!verdict.is_halt());
        // Python truthiness: an empty document is `{}`, false.
        assert!(run_on(&json!({}), json!({})).unwrap().is_halt());
    }

    #[test]
    fn python_truthiness_decides_the_match() {
        let doc = json!({"zero": 0, "zero_f": 0.0, "empty_s": "", "empty_a": [], "empty_o": {}, "null": null,
            "false": false, "one": 1, "half": 0.5, "s": "x", "a": [0], "o": {"k": null}, "t": true, "big": 1e300});
        for falsy in [".zero", ".zero_f", ".empty_s", ".empty_a", ".empty_o", ".null", ".false", ".missing", "empty"] {
            assert!(!forwards_doc(&doc, falsy, true), "{falsy} should not match");
            assert!(forwards_doc(&doc, falsy, false), "{falsy} should not match");
        }
        for truthy in [".one", ".half", ".s", ".a", ".o", ".t", ".big", "-1", "0.0 + 0.1"] {
            assert!(forwards_doc(&doc, truthy, true), "{truthy} should match");
        }
    }

    #[test]
    fn only_the_first_output_decides() {
        assert!(forwards("1, 0"));
        assert!(!forwards("0, 1"));
        assert!(!forwards("null, true"));
    }

    #[test]
    fn runtime_errors_halt() {
        assert!(!forwards(r#"error("boom")"#));
        assert!(!forwards(".meta | .[0]"));
        assert!(!forwards_doc(&sample(), r#"error("boom")"#, false));
        assert!(!forwards("halt"), "halt is a runtime stop, not a process exit");
    }

    #[test]
    fn an_invalid_filter_is_a_fatal_error_naming_the_option() {
        for bad in ["invalid % filter @ syntax", ".[", "nosuchfunction(1)", "$undefined", r#""\q""#] {
            let err = run_on(&sample(), json!({"filter": bad})).unwrap_err();
            assert!(!err.retryable);
            assert!(err.message.contains("option `filter`"), "{}", err.message);
            assert!(err.message.contains("does not compile"), "{}", err.message);
        }
        let err = run_on(&sample(), json!({"filter": "nosuchfunction(1)"})).unwrap_err();
        assert!(err.message.contains("undefined filter `nosuchfunction/1`"), "{}", err.message);
    }

    #[test]
    fn wrongly_typed_options_are_fatal_errors_naming_the_option() {
        let err = run_on(&sample(), json!({"filter": 3})).unwrap_err();
        assert!(err.message.contains("option `filter`"), "{}", err.message);
        let err = run_on(&sample(), json!({"forward_matches": "yes"})).unwrap_err();
        assert!(err.message.contains("option `forward_matches`"), "{}", err.message);
    }

    #[test]
    fn strings_only_bodies_strips_every_body_array_at_any_depth() {
        let doc = json!({"body": [1, "a"], "x": [{"body": ["b", null, {"c": 1}]}, {"body": "kept"}], "y": {"b": [1]}});
        assert_eq!(
            strings_only_bodies(&doc),
            json!({"body": ["a"], "x": [{"body": ["b"]}, {"body": "kept"}], "y": {"b": [1]}})
        );
    }

    #[test]
    fn common_jq_builtins_compile() {
        for filter in [
            r#".dialog | map(select(.type == "recording")) | length == 0"#,
            r#"[.parties[].name] | join(", ") | test("Bob")"#,
            r#".attachments | any(.type == "report")"#,
            r#"(.meta.weight | ascii_downcase | endswith("kg")) and (.uuid | startswith("test"))"#,
            ".analysis[0].body | ltrimstr(\"Test \") | length > 0",
            "[paths] | length > 3",
            ".meta | to_entries | map(.key) | index(\"weight\") != null",
        ] {
            assert!(forwards(filter), "{filter}");
        }
    }
}
