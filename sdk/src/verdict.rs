//! A link's answer: what the chain does next, and what the host should do for it.

use crate::bindings::vcon::conserver0_1_0::types as wit;
use crate::{LinkError, Vcon};

/// Something the link asks the host to do once the step succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// Push the vCon's uuid to each of these lists, after the vCon is saved.
    RouteTo(Vec<String>),
    /// Set the vCon document's time to live, in seconds.
    ExpireAfterSecs(u64),
}

/// What happens after this link.
#[derive(Debug, Clone)]
pub struct Verdict {
    action: Action,
    directives: Vec<Directive>,
}

#[derive(Debug, Clone)]
enum Action {
    Proceed(Option<Vcon>),
    Halt,
}

impl Verdict {
    /// Continue the chain with this (modified) vCon.
    pub fn changed(vcon: Vcon) -> Self {
        Self { action: Action::Proceed(Some(vcon)), directives: Vec::new() }
    }

    /// Continue the chain; the link did not modify the vCon.
    pub fn unchanged() -> Self {
        Self { action: Action::Proceed(None), directives: Vec::new() }
    }

    /// Stop the chain quietly: no later links, storages or egress, and no DLQ entry.
    pub fn halt() -> Self {
        Self { action: Action::Halt, directives: Vec::new() }
    }

    /// Add a directive for the host.
    pub fn with(mut self, directive: Directive) -> Self {
        self.directives.push(directive);
        self
    }

    /// Whether this verdict stops the chain.
    pub fn is_halt(&self) -> bool {
        matches!(self.action, Action::Halt)
    }

    /// The vCon the chain continues with, when the link changed it.
    pub fn vcon(&self) -> Option<&Vcon> {
        match &self.action {
            Action::Proceed(vcon) => vcon.as_ref(),
            Action::Halt => None,
        }
    }

    /// The directives, in order.
    pub fn directives(&self) -> &[Directive] {
        &self.directives
    }

    pub(crate) fn into_wit(self) -> Result<wit::Verdict, LinkError> {
        let action = match self.action {
            Action::Proceed(Some(vcon)) => wit::Action::Proceed(Some(vcon.to_json()?)),
            Action::Proceed(None) => wit::Action::Proceed(None),
            Action::Halt => wit::Action::Halt,
        };
        let directives = self
            .directives
            .into_iter()
            .map(|d| match d {
                Directive::RouteTo(lists) => wit::Directive::RouteTo(lists),
                Directive::ExpireAfterSecs(secs) => wit::Directive::ExpireAfterSecs(secs),
            })
            .collect();
        Ok(wit::Verdict { action, directives })
    }
}
