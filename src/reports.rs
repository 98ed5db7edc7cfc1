//! The host's reports: what a room's report reads, loaded from the store (so any node of a
//! cluster answers) and computed with `crate::report` off the async threads. Loads are kept
//! for a moment per room, so a console polling reports, leads and the tree shares one load;
//! with the room's engagement batches (every 2 s) reports trail the show by at most 5 s.

use crate::model::{now_ms, LeadWeights, RegistrationKey, StoreOp};
use crate::report::{self, ExportKind, Leads, ReferralTree, ReportClock, RoomReport, ShowLog};
use crate::store::{Store, StoreError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a load is reused.
const FRESH: Duration = Duration::from_secs(2);
/// Rooms whose loads are kept at most (the oldest go first).
const CACHED_ROOMS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("room {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the report computation failed: {0}")]
    Failed(String),
}

pub struct Reports {
    store: Arc<dyn Store>,
    heartbeat_ms: i64,
    cache: Mutex<HashMap<String, (Instant, Arc<ShowLog>)>>,
}

impl Reports {
    /// `heartbeat_ms` is the audience log's heartbeat interval (`--heartbeat-secs`).
    pub fn new(store: Arc<dyn Store>, heartbeat_ms: i64) -> Reports {
        Reports {
            store,
            heartbeat_ms,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Everything a report of `room` reads, at most [`FRESH`] old.
    pub async fn show_log(&self, room: &str) -> Result<Arc<ShowLog>, ReportError> {
        if let Some((at, log)) = self.cache.lock().get(room) {
            if at.elapsed() < FRESH {
                return Ok(log.clone());
            }
        }
        let log = Arc::new(load(&*self.store, room).await?);
        let mut cache = self.cache.lock();
        cache.retain(|_, (at, _)| at.elapsed() < FRESH);
        if cache.len() >= CACHED_ROOMS {
            if let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
        }
        cache.insert(room.to_string(), (Instant::now(), log.clone()));
        Ok(log)
    }

    fn clock(&self) -> ReportClock {
        ReportClock {
            now_ms: now_ms(),
            heartbeat_ms: self.heartbeat_ms,
        }
    }

    /// Runs `f` on the log off the async threads (a big show takes a fraction of a second).
    async fn compute<T: Send + 'static>(
        &self,
        room: &str,
        f: impl FnOnce(&ShowLog, ReportClock) -> T + Send + 'static,
    ) -> Result<T, ReportError> {
        let log = self.show_log(room).await?;
        let clock = self.clock();
        tokio::task::spawn_blocking(move || f(&log, clock))
            .await
            .map_err(|e| ReportError::Failed(e.to_string()))
    }

    pub async fn room_report(&self, room: &str) -> Result<RoomReport, ReportError> {
        self.compute(room, report::room_report).await
    }

    pub async fn leads(&self, room: &str) -> Result<Leads, ReportError> {
        self.compute(room, report::leads).await
    }

    pub async fn referral_tree(&self, room: &str) -> Result<ReferralTree, ReportError> {
        self.compute(room, report::referral_tree).await
    }

    /// One of the room's reports as CSV.
    pub async fn export(&self, room: &str, kind: ExportKind) -> Result<String, ReportError> {
        self.compute(room, move |log, clock| report::export_csv(log, clock, kind))
            .await
    }

    /// Changes a room's lead weights with `change` (from the stored ones, or the defaults
    /// when `reset` or none were stored), checks and stores them; returns them.
    pub async fn set_weights(
        &self,
        room: &str,
        reset: bool,
        change: impl FnOnce(&mut LeadWeights) -> Result<(), String>,
    ) -> Result<LeadWeights, ReportError> {
        if self.store.load_room(room).await?.is_none() {
            return Err(ReportError::NotFound(room.to_string()));
        }
        let mut weights = if reset {
            LeadWeights::default()
        } else {
            self.store.lead_weights(room).await?.unwrap_or_default()
        };
        change(&mut weights).map_err(ReportError::Invalid)?;
        if let Some(problem) = weights.problem() {
            return Err(ReportError::Invalid(problem));
        }
        self.store
            .submit(vec![StoreOp::PutLeadWeights {
                room: room.to_string(),
                weights: Box::new(weights.clone()),
                at_ms: now_ms(),
            }])
            .wait()
            .await?;
        self.cache.lock().remove(room);
        Ok(weights)
    }
}

/// Reads a room's show from the store, every part at once.
pub async fn load(store: &dyn Store, room: &str) -> Result<ShowLog, ReportError> {
    let (loaded, registrations, channels, audience, program, engagement, chat, weights) = tokio::try_join!(
        store.load_room(room),
        store.registrations(room, RegistrationKey::All),
        store.channels(room),
        store.audience_log(room),
        store.program_log(room),
        store.engagement(room),
        store.chat_log(room),
        store.lead_weights(room),
    )?;
    let loaded = loaded.ok_or_else(|| ReportError::NotFound(room.to_string()))?;
    ShowLog::new(
        loaded,
        registrations,
        channels,
        audience,
        program,
        engagement,
        chat,
        weights.unwrap_or_default(),
    )
    .ok_or_else(|| ReportError::NotFound(room.to_string()))
}
