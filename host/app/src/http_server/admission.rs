//! Which connections are served: at most `CONSERVER_HTTP_MAX_CONNECTIONS` at once,
//! and at most `CONSERVER_HTTP_MAX_CONNECTIONS_PER_IP` from one client address
//! when that is set. A connection over a cap is refused at once (the accept loop
//! answers it 503 and closes it) instead of waiting, so a flood of idle sockets
//! costs the server no more than the cap, and the connections within the cap are
//! served as usual.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `CONSERVER_HTTP_MAX_CONNECTIONS` connections are open.
    Global,
    /// This address holds `CONSERVER_HTTP_MAX_CONNECTIONS_PER_IP` connections.
    PerIp,
}

/// The caps and what holds them.
pub struct Admission {
    global: Arc<Semaphore>,
    per_ip_max: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// A served connection's place; given back on drop.
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    counted: Option<(Arc<Admission>, IpAddr)>,
}

impl Admission {
    /// Caps of `max` connections, and `per_ip` per address (0: none).
    pub fn new(max: usize, per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            global: Arc::new(Semaphore::new(max.max(1))),
            per_ip_max: per_ip,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_ip.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for a connection from `ip`, if the caps allow one.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let permit = self.global.clone().try_acquire_owned().map_err(|_| Refused::Global)?;
        if self.per_ip_max == 0 {
            return Ok(Admitted { _permit: permit, counted: None });
        }
        let mut counts = self.counts();
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.per_ip_max {
            return Err(Refused::PerIp);
        }
        *count += 1;
        Ok(Admitted { _permit: permit, counted: Some((self.clone(), ip)) })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some((admission, ip)) = self.counted.take() {
            let mut counts = admission.counts();
            if let Some(count) = counts.get_mut(&ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    counts.remove(&ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_places_come_back() {
        let admission = Admission::new(3, 2);
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let first = admission.admit(a);
        let second = admission.admit(a);
        assert!(first.is_ok() && second.is_ok());
        assert_eq!(admission.admit(a).err(), Some(Refused::PerIp));
        let third = admission.admit(b);
        assert!(third.is_ok());
        assert_eq!(admission.admit(b).err(), Some(Refused::Global));
        drop(first);
        assert!(admission.admit(a).is_ok(), "a place is given back on drop");
        drop((second, third));
        assert!(admission.counts().is_empty(), "no address is remembered once its connections are gone");
    }
}
