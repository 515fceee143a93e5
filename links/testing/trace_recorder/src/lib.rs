//! Test fixture tracer: POSTs every trace point it sees, as JSON, to the `url`
//! option (`{tracer, chain, links, link_index, in_vcon_uuid, out_vcon_uuid,
//! vcon_uuid}`), and fails on purpose at `fail_at` (a link index), so tests can
//! check when tracers run and what a failing one does.

use conserver_link_sdk::Vcon;
use conserver_link_sdk::export_tracer;
use conserver_link_sdk::http::{Client, Request, Transport};
use conserver_link_sdk::tracer::{TracePoint, Tracer};
use serde_json::{Value, json};

/// The recorder.
pub struct Recorder;

impl Tracer for Recorder {
    fn trace(point: &TracePoint, vcon: &Vcon) -> Result<(), String> {
        if let Some(url) = point.options.get("url").and_then(Value::as_str) {
            let report = json!({
                "tracer": point.tracer_name,
                "chain": point.chain_name,
                "links": point.links,
                "link_index": point.link_index,
                "in_vcon_uuid": point.in_vcon_uuid,
                "out_vcon_uuid": point.out_vcon_uuid,
                "vcon_uuid": vcon.uuid(),
            });
            let request = Request::post(url).json(&report).map_err(|e| e.to_string())?;
            Client::host().send(&request).map_err(|e| e.to_string())?;
        }
        if point.options.get("fail_at").and_then(Value::as_i64) == Some(i64::from(point.link_index)) {
            return Err(format!("failing at link {} on purpose", point.link_index));
        }
        Ok(())
    }
}

export_tracer!(Recorder);
