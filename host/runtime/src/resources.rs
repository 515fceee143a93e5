//! Budgets on what a call holds on the host side (`limits.host_resources` and
//! `limits.host_resource_bytes`). The linear-memory cap does not see them: a
//! link capped at 32 MiB could otherwise create `wasi:http` fields, requests or
//! bodies until the host ran out of memory.
//!
//! Every resource a guest creates lives in the call's [`ResourceTable`]. The
//! table refuses entries past the count budget, and after every host call (a
//! wasmtime call hook) [`ResourceBudget::check`] measures the live entries and
//! what each holds: header names and values with their in-memory overhead,
//! request paths and authorities, a full buffer for each outgoing body
//! ([`OUTGOING_CHUNK_BYTES`] per chunk) and a connection's worth of buffers for
//! each response in flight. Past either budget the call stops with
//! [`LinkFailure::Budget`](crate::LinkFailure::Budget); a single host call adds
//! at most one header map (`wasi:http`'s own per-map cap, see
//! [`field_size_limit`]) or one guest-sized string before the check sees it.

use std::any::Any;

use conserver_config::Limits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi_http::FieldMap;
use wasmtime_wasi_http::p2::bindings::http::types::{Method, Scheme};
use wasmtime_wasi_http::p2::body::{HostIncomingBody, HostOutgoingBody};
use wasmtime_wasi_http::p2::types::{
    HostFutureIncomingResponse, HostIncomingResponse, HostOutgoingRequest, HostOutgoingResponse,
};

use crate::failure::Budget;

/// Largest write to an outgoing body's stream; each body buffers up to two.
pub(crate) const OUTGOING_CHUNK_BYTES: usize = 64 * 1024;
/// What an outgoing body may hold before the connection takes it.
const OUTGOING_BODY_BYTES: u64 = 2 * OUTGOING_CHUNK_BYTES as u64;
/// What a response in flight holds: its connection's read and write buffers
/// (hyper reads up to 400 KiB ahead; TLS state) — an estimate that also caps
/// the connections one call keeps open (64 at the default budget).
const CONNECTION_BYTES: u64 = 256 * 1024;
/// The table's own bookkeeping for any entry.
const ENTRY_BYTES: u64 = 64;
/// In-memory overhead of one header name or value beside its bytes.
const HEADER_OVERHEAD_BYTES: u64 = 40;
/// `wasi:http`'s default cap on one header map.
const DEFAULT_FIELD_SIZE_LIMIT: u64 = 128 * 1024;

/// One call's host-resource budgets and whether they were broken.
#[derive(Debug)]
pub(crate) struct ResourceBudget {
    max_count: u64,
    max_bytes: u64,
    /// The budget broken and its limit, once one was.
    pub(crate) breach: Option<(Budget, u64)>,
}

impl ResourceBudget {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self { max_count: limits.host_resources, max_bytes: limits.host_resource_bytes, breach: None }
    }

    /// The most entries `table` may hold: one past the budget, so the check
    /// after the host call that created it sees the breach and names it.
    pub(crate) fn table_capacity(&self) -> usize {
        usize::try_from(self.max_count.saturating_add(1)).unwrap_or(usize::MAX)
    }

    /// The cap on any one header map: `wasi:http`'s default, or the byte budget
    /// when that is smaller.
    pub(crate) fn field_size_limit(&self) -> usize {
        usize::try_from(self.max_bytes.min(DEFAULT_FIELD_SIZE_LIMIT)).unwrap_or(usize::MAX)
    }

    /// Measure `table` against the budgets; past one, remember it and return
    /// the error that stops the call.
    pub(crate) fn check(&mut self, table: &mut ResourceTable) -> wasmtime::Result<()> {
        if self.breach.is_some() {
            return Err(self.error());
        }
        let (count, bytes) = measure(table);
        if count > self.max_count {
            self.breach = Some((Budget::HostResources, self.max_count));
        } else if bytes > self.max_bytes {
            self.breach = Some((Budget::HostResourceBytes, self.max_bytes));
        }
        if self.breach.is_some() { Err(self.error()) } else { Ok(()) }
    }

    fn error(&self) -> wasmtime::Error {
        let (budget, limit) = self.breach.unwrap_or((Budget::HostResources, self.max_count));
        wasmtime::Error::msg(format!("host budget {} of {limit} {} used up", budget.name(), budget.unit()))
    }
}

/// Live entries in `table` and the bytes they hold on the host side.
pub(crate) fn measure(table: &mut ResourceTable) -> (u64, u64) {
    table.iter_mut().fold((0, 0), |(count, bytes), entry| (count + 1, bytes + held_bytes(entry)))
}

/// What one table entry holds on the host side, in bytes (an estimate for what
/// cannot be seen from outside, such as connection buffers).
fn held_bytes(entry: &(dyn Any + Send)) -> u64 {
    let held = if let Some(fields) = entry.downcast_ref::<FieldMap>() {
        fields_bytes(fields)
    } else if let Some(request) = entry.downcast_ref::<HostOutgoingRequest>() {
        let text = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() as u64);
        let method = match &request.method {
            Method::Other(name) => name.len() as u64,
            _ => 0,
        };
        let scheme = match &request.scheme {
            Some(Scheme::Other(name)) => name.len() as u64,
            _ => 0,
        };
        text(&request.authority) + text(&request.path_with_query) + method + scheme + fields_bytes(&request.headers)
    } else if let Some(response) = entry.downcast_ref::<HostOutgoingResponse>() {
        fields_bytes(&response.headers)
    } else if entry.is::<HostOutgoingBody>() {
        OUTGOING_BODY_BYTES
    } else if let Some(future) = entry.downcast_ref::<HostFutureIncomingResponse>() {
        match future {
            HostFutureIncomingResponse::Pending(_) | HostFutureIncomingResponse::Ready(_) => CONNECTION_BYTES,
            HostFutureIncomingResponse::Consumed => 0,
        }
    } else if let Some(response) = entry.downcast_ref::<HostIncomingResponse>() {
        fields_bytes(&response.headers) + if response.body.is_some() { CONNECTION_BYTES } else { 0 }
    } else if entry.is::<HostIncomingBody>() {
        CONNECTION_BYTES
    } else {
        0
    };
    ENTRY_BYTES + held
}

/// A header map's names and values with their in-memory overhead.
fn fields_bytes(fields: &FieldMap) -> u64 {
    let names: u64 = fields.keys().map(|name| name.as_str().len() as u64 + HEADER_OVERHEAD_BYTES).sum();
    let values: u64 = fields.values().map(|value| value.len() as u64 + HEADER_OVERHEAD_BYTES).sum();
    names + values
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Hooks;
    impl wasmtime_wasi_http::WasiHttpHooks for Hooks {
        fn send_request(
            &mut self,
            _request: http::Request<wasmtime_wasi_http::WasiBody>,
            _options: Option<wasmtime_wasi_http::RequestOptions>,
            _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
        ) -> Box<
            dyn Future<
                    Output = Result<
                        (
                            http::Response<wasmtime_wasi_http::WasiBody>,
                            Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                        ),
                        wasmtime_wasi_http::Error,
                    >,
                > + Send,
        > {
            Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
        }
    }

    fn header(value_bytes: usize) -> FieldMap {
        let mut fields = FieldMap::new_mutable(1 << 20);
        fields.append(&mut Hooks, "x-pad".into(), vec![b'a'; value_bytes]).unwrap();
        fields
    }

    fn limits(count: u64, bytes: u64) -> Limits {
        Limits { host_resources: count, host_resource_bytes: bytes, ..Limits::default() }
    }

    #[test]
    fn header_maps_count_their_names_values_and_overhead() {
        let mut table = ResourceTable::new();
        table.push(header(1000)).unwrap();
        table.push(42_u32).unwrap();
        let (count, bytes) = measure(&mut table);
        assert_eq!(count, 2);
        assert_eq!(bytes, ENTRY_BYTES + (5 + 40) + (1000 + 40) + ENTRY_BYTES);
    }

    #[test]
    fn the_count_budget_breaks_one_past_its_limit_and_stays_broken() {
        let mut budget = ResourceBudget::new(&limits(3, u64::MAX));
        let mut table = ResourceTable::new();
        table.set_max_capacity(budget.table_capacity());
        for _ in 0..3 {
            table.push(FieldMap::new_mutable(16)).unwrap();
            budget.check(&mut table).unwrap();
        }
        table.push(FieldMap::new_mutable(16)).unwrap();
        let error = budget.check(&mut table).unwrap_err();
        assert_eq!(budget.breach, Some((Budget::HostResources, 3)));
        assert!(error.to_string().contains("host_resources"), "{error}");
        // The table itself refuses anything past the budget's slack.
        assert!(table.push(FieldMap::new_mutable(16)).is_err());
        assert!(budget.check(&mut table).is_err());
    }

    #[test]
    fn the_byte_budget_counts_every_header_map_held() {
        let mut budget = ResourceBudget::new(&limits(1000, 10_000));
        let mut table = ResourceTable::new();
        for _ in 0..4 {
            table.push(header(2000)).unwrap();
            budget.check(&mut table).unwrap();
        }
        table.push(header(2000)).unwrap();
        assert!(budget.check(&mut table).is_err());
        assert_eq!(budget.breach, Some((Budget::HostResourceBytes, 10_000)));
        assert_eq!(budget.field_size_limit(), 10_000);
        assert_eq!(ResourceBudget::new(&Limits::default()).field_size_limit(), 128 * 1024);
    }
}
