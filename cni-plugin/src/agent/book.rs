//! Every lease's state as the daemon last saw it: written by the lifecycle
//! tasks, read by the server (status) and the metrics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::dhcp::protocol::{LeaseKey, LeaseRecord, LeaseState, LeaseStatus};

/// Every lease's state, shared by the lifecycle tasks and the server.
#[derive(Debug, Clone, Default)]
pub struct Book(Arc<Mutex<HashMap<LeaseKey, LeaseStatus>>>);

impl Book {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LeaseKey, LeaseStatus>> {
        // A panicked task cannot leave a status half-written.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &LeaseKey) -> Option<LeaseStatus> {
        self.lock().get(key).cloned()
    }

    pub fn all(&self) -> Vec<(LeaseKey, LeaseStatus)> {
        self.lock()
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect()
    }

    /// Records a state change (the time only moves when the state does).
    pub fn set(&self, record: &LeaseRecord, state: LeaseState, last_error: Option<String>) {
        let mut book = self.lock();
        let since = match book.get(&record.holder.key) {
            Some(s) if s.state == state && s.address == record.lease.address => s.since,
            _ => unix_now(),
        };
        book.insert(
            record.holder.key.clone(),
            LeaseStatus {
                state,
                address: record.lease.address,
                since,
                last_error,
            },
        );
    }

    /// Notes a failed attempt without changing the state.
    pub fn error(&self, key: &LeaseKey, error: String) {
        if let Some(s) = self.lock().get_mut(key) {
            s.last_error = Some(error);
        }
    }

    pub fn forget(&self, key: &LeaseKey) {
        self.lock().remove(key);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
