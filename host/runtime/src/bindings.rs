//! Host bindings for the `vcon:conserver@0.1.0` worlds — `link`, and
//! `tracer-component`, which shares the link's imports — and the plain Rust types
//! the rest of the host uses instead of generated ones.

wasmtime::component::bindgen!({
    world: "vcon:conserver/link@0.2.0",
    path: ["../../wit", "../../wit/0.2.0"],
    imports: { "vcon:conserver/cache@0.1.0": async, "vcon:conserver/media@0.2.0": async },
    exports: { default: async },
    with: { "vcon:conserver/media.chunks": crate::media_host::ChunksResource },
});

/// The tracer world, reusing the link world's import traits.
pub mod tracer {
    wasmtime::component::bindgen!({
        world: "tracer-component",
        path: "../../wit",
        exports: { default: async },
        with: {
            "vcon:conserver/log": super::vcon::conserver0_1_0::log,
            "vcon:conserver/secrets": super::vcon::conserver0_1_0::secrets,
            "vcon:conserver/cache": super::vcon::conserver0_1_0::cache,
        },
    });
}

pub use vcon::conserver0_1_0::types as wit;

/// What the chain does after a link, with the vCon when the link changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go on; `Some(json)` is the changed vCon.
    Proceed(Option<String>),
    /// Stop the chain quietly.
    Halt,
}

/// A request from a link that the host applies after the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// Push the uuid to these lists.
    RouteTo(Vec<String>),
    /// Set the vCon's TTL in seconds.
    ExpireAfterSecs(u64),
}

impl From<wit::Action> for Action {
    fn from(action: wit::Action) -> Self {
        match action {
            wit::Action::Proceed(vcon) => Self::Proceed(vcon),
            wit::Action::Halt => Self::Halt,
        }
    }
}

impl From<wit::Directive> for Directive {
    fn from(directive: wit::Directive) -> Self {
        match directive {
            wit::Directive::RouteTo(lists) => Self::RouteTo(lists),
            wit::Directive::ExpireAfterSecs(secs) => Self::ExpireAfterSecs(secs),
        }
    }
}
