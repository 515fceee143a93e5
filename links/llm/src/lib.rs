//! # conserver-llm
//!
//! What the LLM links (`analyze`, `analyze_and_label`, `analyze_vcon`,
//! `check_and_tag`, `detect_engagement`) share, as the Python conserver's
//! `lib.links.filters`, `lib.openai_client` and `lib.ai_usage` (reference:
//! links.md §1.4):
//!
//! - [`filter::is_included`]: the `only_if` option;
//! - [`sampling::sampled_in`]: the `sampling_rate` option (0 means always run);
//! - [`provider::Provider`]: OpenAI-compatible client selection — LiteLLM proxy,
//!   Azure OpenAI, OpenAI (or any server at `base_url`) — from the link's options,
//!   with keys also read from granted secrets;
//! - [`retry::RetryPolicy`]: exponential backoff for retryable failures (429, 5xx,
//!   timeouts, connection failures), bounded by an attempts count and a time budget
//!   so retries stop well before the host's deadline for the call;
//! - [`client::Llm`]: chat completions and the Responses API over a
//!   [`Transport`](conserver_link_sdk::http::Transport), with those retries;
//! - [`source`]: finding a dialog's source analysis and the text at a dotted path
//!   in it (the body JSON-decoded first, as Python's `pydash.get` on
//!   `Vcon.with_decoded_body`);
//! - [`usage`]: the optional AI-usage report;
//! - [`options`]: option readers whose errors name the option and what it must be.
//!
//! With the `testing` feature, [`testing`] offers a recording fake server and
//! per-thread secrets for the links' unit tests.

pub mod chat;
pub mod client;
pub mod filter;
pub mod options;
pub mod provider;
pub mod python;
pub mod responses;
pub mod retry;
pub mod sampling;
pub mod secret;
pub mod source;
pub mod usage;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use chat::{ChatCompletion, ChatRequest, Usage};
pub use client::Llm;
pub use provider::{Provider, ProviderError};
pub use responses::ResponsesRequest;
pub use retry::{Clock, RetryPolicy, SystemClock};
pub use source::{Pending, Source};

/// Whether the link should process this vCon: it passes the `only_if` filter and
/// is sampled in by `sampling_rate` (each skip is logged).
pub fn should_run(
    ctx: &conserver_link_sdk::Context,
    vcon: &conserver_link_sdk::Vcon,
) -> Result<bool, conserver_link_sdk::LinkError> {
    if !filter::is_included(ctx, vcon)? {
        conserver_link_sdk::log::info("skipped: the vCon does not pass only_if");
        return Ok(false);
    }
    if !sampling::sampled_in(ctx)? {
        conserver_link_sdk::log::info("skipped by sampling");
        return Ok(false);
    }
    Ok(true)
}
