//! # conserver link SDK
//!
//! Everything a Rust author needs to write a *link*: one processing step of a
//! conserver chain, compiled to a WebAssembly component (`wasm32-wasip2`) and run by
//! the host in a sandbox with fuel, memory and time limits.
//!
//! A link is a type implementing [`Link`], exported with [`export_link!`]:
//!
//! ```ignore
//! use conserver_link_sdk::prelude::*;
//!
//! struct Hello;
//!
//! impl Link for Hello {
//!     fn process(ctx: &Context, mut vcon: Vcon) -> LinkResult {
//!         let greeting: String = ctx.option_or("greeting", "hello".to_string())?;
//!         vcon.add_tag(&greeting, &greeting)?;
//!         Ok(Verdict::changed(vcon))
//!     }
//! }
//!
//! export_link!(Hello);
//! ```
//!
//! The vCon is handed over as a [`Vcon`]: a JSON object that keeps every field,
//! including ones this SDK does not know, in their original order. Typed views
//! ([`Party`], [`Dialog`], [`Analysis`], [`Attachment`]) are available for reading and
//! building entries; they keep unknown fields too.
//!
//! Capabilities are granted per link in the config and denied otherwise:
//! [`http`] (outbound requests to the hosts in `allowed_outbound_hosts`),
//! [`secrets`] (the names in `secrets:`) and a private [`cache`]. Directives
//! ([`Directive::RouteTo`], [`Directive::ExpireAfterSecs`]) ask the host to route
//! or expire the vCon after the step.
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the output `.wasm` is
//! the component the host loads (`component:` in the config).

#![deny(missing_docs)]

pub mod cache;
mod context;
mod error;
pub mod http;
pub mod log;
pub mod media;
pub mod secrets;
pub mod tracer;
mod vcon;
mod verdict;

/// Bindings generated from the `vcon:conserver@0.1.0` WIT world. Link authors do not
/// normally need them; [`export_link!`] wires a [`Link`] to them.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "vcon:conserver/link@0.2.0",
        path: ["../wit", "../wit/0.2.0"],
        generate_all,
        default_bindings_module: "conserver_link_sdk::bindings",
        pub_export_macro: true,
        export_macro_name: "export_link_world",
    });
}

/// Bindings generated from the `tracer-component` world; [`export_tracer!`] wires a
/// [`tracer::Tracer`] to them.
#[doc(hidden)]
pub mod tracer_bindings {
    wit_bindgen::generate!({
        world: "tracer-component",
        path: "../wit",
        default_bindings_module: "conserver_link_sdk::tracer_bindings",
        pub_export_macro: true,
        export_macro_name: "export_tracer_world",
        with: {
            "vcon:conserver/log@0.1.0": crate::bindings::vcon::conserver0_1_0::log,
            "vcon:conserver/secrets@0.1.0": crate::bindings::vcon::conserver0_1_0::secrets,
            "vcon:conserver/cache@0.1.0": crate::bindings::vcon::conserver0_1_0::cache,
        },
    });
}

pub use conserver_python_json as python_json;
pub use context::Context;
pub use error::LinkError;
pub use vcon::{Analysis, Attachment, Dialog, Party, Vcon, VconError};
pub use verdict::{Directive, Verdict};

/// What [`Link::process`] returns.
pub type LinkResult = Result<Verdict, LinkError>;

/// One processing step. Implement it on a unit struct and export it with
/// [`export_link!`].
pub trait Link {
    /// Process one vCon. Return [`Verdict::changed`] with the modified vCon,
    /// [`Verdict::unchanged`], [`Verdict::halt`] to stop the chain quietly, or an error
    /// to send the vCon to the dead-letter queue with a reason.
    fn process(ctx: &Context, vcon: Vcon) -> LinkResult;
}

/// The names a link usually needs, in one import.
pub mod prelude {
    pub use crate::{
        Analysis, Attachment, Context, Dialog, Directive, Link, LinkError, LinkResult, Party, Vcon, Verdict,
        export_link,
    };
}

/// Export a [`Link`] implementation as the component's `processor` interface.
///
/// Use it once per link crate: `export_link!(MyLink);`
#[macro_export]
macro_rules! export_link {
    ($link:ty) => {
        // Only a wasm build exports the component interface; native builds (unit
        // tests of the link) compile the link without it.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __conserver_link_export {
            #[allow(unused_imports)]
            use super::*;

            struct Export;

            impl $crate::bindings::exports::vcon::conserver0_1_0::processor::Guest for Export {
                fn process(
                    context: $crate::bindings::vcon::conserver0_1_0::types::Context,
                    vcon: ::std::string::String,
                ) -> ::std::result::Result<
                    $crate::bindings::vcon::conserver0_1_0::types::Verdict,
                    $crate::bindings::vcon::conserver0_1_0::types::LinkError,
                > {
                    $crate::__private::run::<$link>(context, vcon)
                }
            }

            $crate::bindings::export_link_world!(Export);
        }
    };
}

/// Glue used by [`export_link!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    use crate::bindings::vcon::conserver0_1_0::types as wit;
    use crate::{Context, Link, LinkError, Vcon};

    /// Decode the inputs, run the tracer.
    #[cfg(target_arch = "wasm32")]
    pub fn trace<T: crate::tracer::Tracer>(
        point: crate::tracer_bindings::exports::vcon::conserver::tracer::TracePoint,
        vcon: String,
    ) -> Result<(), String> {
        let point = crate::tracer::from_wit(point)?;
        let vcon =
            Vcon::from_json(&vcon).map_err(|e| format!("the host sent a vCon that is not a JSON object: {e}"))?;
        T::trace(&point, &vcon)
    }

    /// Decode the inputs, run the link, encode its answer.
    pub fn run<L: Link>(context: wit::Context, vcon: String) -> Result<wit::Verdict, wit::LinkError> {
        let ctx = Context::from_wit(context).map_err(LinkError::into_wit)?;
        let vcon = Vcon::from_json(&vcon)
            .map_err(|e| LinkError::fatal(format!("the host sent a vCon that is not a JSON object: {e}")).into_wit())?;
        L::process(&ctx, vcon).and_then(|verdict| verdict.into_wit()).map_err(LinkError::into_wit)
    }
}
