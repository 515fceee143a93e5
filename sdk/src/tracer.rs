//! Tracers: components the host calls before a chain's first link and after each
//! link, with the vCon as it stands. They observe (audit trails, lineage, metrics
//! to an outside service) and cannot change the vCon. Implement [`Tracer`] and
//! export it with [`crate::export_tracer!`]; tracers have the same capabilities as
//! links ([`crate::http`], [`crate::secrets`], [`crate::cache`]).

use serde_json::{Map, Value};

use crate::Vcon;

/// Where in the chain the tracer is called.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePoint {
    /// The tracer's name under `tracers:`.
    pub tracer_name: String,
    /// The chain running.
    pub chain_name: String,
    /// The chain's link names, in order.
    pub links: Vec<String>,
    /// The link that just ran, or -1 before the first link.
    pub link_index: i32,
    /// The uuid going into the step.
    pub in_vcon_uuid: String,
    /// The uuid coming out of the step.
    pub out_vcon_uuid: String,
    /// The tracer's `options` (an empty object when none).
    pub options: Map<String, Value>,
}

impl TracePoint {
    /// A trace point for unit tests.
    pub fn for_test(links: &[&str], link_index: i32, options: Value) -> Self {
        Self {
            tracer_name: "test".into(),
            chain_name: "test".into(),
            links: links.iter().map(|l| l.to_string()).collect(),
            link_index,
            in_vcon_uuid: String::new(),
            out_vcon_uuid: String::new(),
            options: match options {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }
}

/// A tracer. An `Err` is logged by the host; it fails the vCon only when the
/// tracer's options set `dlq_vcon_on_error`.
pub trait Tracer {
    /// Observe the vCon at `point`.
    fn trace(point: &TracePoint, vcon: &Vcon) -> Result<(), String>;
}

/// Export a [`Tracer`] implementation as the component's `tracer` interface.
#[macro_export]
macro_rules! export_tracer {
    ($tracer:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __conserver_tracer_export {
            #[allow(unused_imports)]
            use super::*;

            struct Export;

            impl $crate::tracer_bindings::exports::vcon::conserver::tracer::Guest for Export {
                fn trace(
                    point: $crate::tracer_bindings::exports::vcon::conserver::tracer::TracePoint,
                    vcon: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::trace::<$tracer>(point, vcon)
                }
            }

            $crate::tracer_bindings::export_tracer_world!(Export);
        }
    };
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn from_wit(
    point: crate::tracer_bindings::exports::vcon::conserver::tracer::TracePoint,
) -> Result<TracePoint, String> {
    let options = match serde_json::from_str::<Value>(&point.options) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) => Map::new(),
        Ok(other) => return Err(format!("options of tracer `{}` must be a mapping, got {other}", point.tracer_name)),
        Err(e) => return Err(format!("options of tracer `{}` are not JSON: {e}", point.tracer_name)),
    };
    Ok(TracePoint {
        tracer_name: point.tracer_name,
        chain_name: point.chain_name,
        links: point.links,
        link_index: point.link_index,
        in_vcon_uuid: point.in_vcon_uuid,
        out_vcon_uuid: point.out_vcon_uuid,
        options,
    })
}
