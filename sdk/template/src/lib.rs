//! A starter link: adds one tag (option `tag`, default `"reviewed"`) and an analysis
//! entry counting the dialogs. Replace the body of `process` with your logic.

use conserver_link_sdk::prelude::*;
use serde::Deserialize;

/// This link's options, with their defaults.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Options {
    /// The tag to add (as `tag:tag`).
    pub tag: String,
}

impl Default for Options {
    fn default() -> Self {
        Self { tag: "reviewed".into() }
    }
}

/// The link.
pub struct MyLink;

impl Link for MyLink {
    fn process(ctx: &Context, mut vcon: Vcon) -> LinkResult {
        let options: Options = ctx.options_as()?;
        vcon.add_tag(&options.tag, &options.tag)?;
        vcon.add_analysis(Analysis {
            kind: Some("dialog_count".into()),
            vendor: Some("my_link".into()),
            body: Some(serde_json::json!({ "dialogs": vcon.dialog().len() })),
            ..Analysis::default()
        })?;
        conserver_link_sdk::log::info(&format!("tagged {}", ctx.vcon_uuid));
        Ok(Verdict::changed(vcon))
    }
}

export_link!(MyLink);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_tag_and_the_count() {
        let vcon = Vcon::from_json(r#"{"uuid":"u","dialog":[{},{}]}"#).unwrap();
        let ctx = Context::for_test("my_link", serde_json::json!({"tag": "vip"}));
        let verdict = MyLink::process(&ctx, vcon).unwrap();
        let vcon = verdict.vcon().unwrap();
        assert_eq!(vcon.get_tag("vip").as_deref(), Some("vip"));
        assert_eq!(vcon.analysis()[0].body, Some(serde_json::json!("{\"dialogs\": 2}")));
    }
}
