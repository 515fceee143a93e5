//! The wrap-up of one processed vCon as one broker operation: the writes a
//! chain's end makes (the document written back, a successor stored and
//! indexed, time-to-live changes, egress and route pushes, trace contexts for
//! the next chain), then the ack of the popped item — in that order, so a
//! wrap-up cut short leaves the item held and it runs again (at least once).
//!
//! [`Broker::finish`](crate::Broker::finish) applies a [`Finish`]: one Lua script
//! on a Redis server, one transaction on the embedded broker, and on a Redis
//! Cluster (whose keys live in different slots) [`finish_step_by_step`].

use crate::{Broker, Popped, Result, Ttl};

/// One write of a wrap-up.
#[derive(Debug, Clone, PartialEq)]
pub enum FinishStep {
    /// Write the document `vcon:{uuid}` (as [`Broker::put_vcon`]).
    Write {
        /// The vCon's uuid.
        uuid: String,
        /// The document.
        json: String,
        /// What happens to its time to live.
        ttl: Ttl,
    },
    /// List the vCon and add it to its party search sets (as [`Broker::index_vcon`]).
    Index {
        /// The vCon's uuid.
        uuid: String,
        /// Its place in the vCon list (`created_at` in epoch seconds).
        score: f64,
        /// Its party search terms.
        terms: Vec<String>,
        /// The TTL the party sets get (0: none).
        terms_ttl_secs: u64,
    },
    /// Set the document's time to live (0 removes it; as [`Broker::expire_vcon`]).
    Expire {
        /// The vCon's uuid.
        uuid: String,
        /// Seconds.
        secs: u64,
    },
    /// Append `uuid` to the tail of `list` (RPUSH).
    Push {
        /// The list.
        list: String,
        /// The uuid.
        uuid: String,
    },
    /// Leave a trace context for the chain that reads `list` (as
    /// [`Broker::push_trace_context`]).
    TraceContext {
        /// The list the uuid is pushed to.
        list: String,
        /// The uuid.
        uuid: String,
        /// The W3C trace context as JSON.
        context_json: String,
        /// How long it is kept.
        ttl_secs: u64,
    },
}

/// Everything a worker writes once a chain is done with a vCon, in order; the
/// ack of the popped item follows the last step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Finish {
    /// The writes, applied in order.
    pub steps: Vec<FinishStep>,
}

impl Finish {
    /// Add a step.
    pub fn push(&mut self, step: FinishStep) -> &mut Self {
        self.steps.push(step);
        self
    }

    /// The lists this wrap-up pushes to (a waiting popper may be woken).
    pub fn pushes_to(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().filter_map(|step| match step {
            FinishStep::Push { list, .. } => Some(list.as_str()),
            _ => None,
        })
    }
}

/// A vCon read in the same broker operation as its pop, so the worker need not
/// ask for it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefetched {
    /// The document `vcon:{uuid}` as it was at the pop: `Some(None)` when there
    /// was none, `None` when it was not read (a form the worker reads itself).
    pub document: Option<Option<String>>,
    /// The producer's trace context, taken from `context:{list}:{uuid}` when
    /// trace contexts are exported (the worker does not ask again).
    pub trace_context: Option<String>,
}

/// What a pop returns: the item, and what was read with it, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The item now held in the worker's processing list.
    pub item: Popped,
    /// The document (and trace context) read with the pop, when the backend
    /// could read them in the same operation.
    pub prefetched: Option<Prefetched>,
}

impl From<Popped> for Taken {
    fn from(item: Popped) -> Self {
        Self { item, prefetched: None }
    }
}

/// Apply `finish` one step at a time, then ack `item`: for backends that cannot
/// run it as one operation (a Redis Cluster, whose keys are in many slots). A
/// failing step stops there, before the ack.
pub async fn finish_step_by_step<B: Broker + ?Sized>(
    broker: &B,
    worker: &str,
    item: &Popped,
    finish: &Finish,
) -> Result<()> {
    for step in &finish.steps {
        match step {
            FinishStep::Write { uuid, json, ttl } => broker.put_vcon(uuid, json, *ttl).await?,
            FinishStep::Index { uuid, score, terms, terms_ttl_secs } => {
                broker.index_vcon(uuid, *score, terms, *terms_ttl_secs).await?;
            }
            FinishStep::Expire { uuid, secs } => broker.expire_vcon(uuid, *secs).await?,
            FinishStep::Push { list, uuid } => broker.push(list, std::slice::from_ref(uuid)).await?,
            FinishStep::TraceContext { list, uuid, context_json, ttl_secs } => {
                // Losing it loses only the span link to the next chain.
                if let Err(error) = broker.push_trace_context(list, uuid, context_json, *ttl_secs).await {
                    tracing::debug!(%list, vcon_uuid = %uuid, %error, "cannot store the trace context for the next chain");
                }
            }
        }
    }
    broker.ack(worker, item).await
}
