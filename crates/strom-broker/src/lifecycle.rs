//! The broker's lifecycle with the active controller, as in KRaft:
//!
//! 1. **Register** with a new incarnation id, the client listener and `broker.rack`; the
//!    controller answers with a broker epoch and the broker starts fenced.
//! 2. **Heartbeat** every `broker.heartbeat.interval.ms` with the index of the last metadata
//!    log entry it has applied. The controller unfences it once it has caught up with its own
//!    registration; from then on it is listed in Metadata and may lead. Missing heartbeats for
//!    `broker.session.timeout.ms` gets it fenced; a heartbeat refused for a stale epoch (the
//!    controller lost the registration) makes it register again.
//! 3. **Controlled shutdown** on SIGTERM: heartbeats that ask to shut down, until the
//!    controller has moved leadership away and answers "shut down", bounded by the session
//!    timeout.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use strom_cluster::controller::{
    BrokerHeartbeatReply, BrokerHeartbeatRequest, BrokerRegistrationRequest,
};
use strom_cluster::{BrokerEndpoint, BrokerEpoch};
use strom_quorum::{ControllerReply, ControllerRequest};
use tokio::sync::watch;
use uuid::Uuid;

use crate::state::BrokerState;

/// Pause before retrying a registration the controller could not take.
const RETRY: Duration = Duration::from_millis(200);

/// Registers this broker and waits until the controller unfences it; then keeps heartbeating
/// in the background until `stop` turns true. Returns the heartbeat task.
pub async fn start(
    state: &Arc<BrokerState>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let incarnation_id = Uuid::new_v4();
    let previous = replace_incarnation(&state.config.data_dir, incarnation_id);
    register(state, incarnation_id, previous).await;
    let mut first_unfence = true;
    loop {
        let reply = heartbeat(state, false).await;
        if reply.is_some_and(|r| !r.is_fenced) {
            state.mark_caught_up();
            break;
        }
        if state.broker_epoch().0 < 0 {
            register(state, incarnation_id, None).await;
        }
        tokio::time::sleep(interval(state).min(Duration::from_millis(100))).await;
    }
    // Serve only once this broker's partitions reflect the unfencing (the leaderships it got
    // back, the group coordinator partitions it loaded), so its first clients find them.
    if let Ok(image) = state
        .quorum
        .wait_for_image(crate::state::CONTROLLER_TIMEOUT, |i| {
            i.is_unfenced(state.node_id)
        })
        .await
    {
        state.wait_for_replicas(image.offset).await;
    }
    on_unfenced(state, &mut first_unfence).await;
    let state = Arc::clone(state);
    tokio::spawn(async move { heartbeat_loop(state, incarnation_id, stop, first_unfence).await })
}

fn interval(state: &BrokerState) -> Duration {
    Duration::from_millis(state.config.broker_heartbeat_interval_ms)
}

async fn heartbeat_loop(
    state: Arc<BrokerState>,
    incarnation_id: Uuid,
    mut stop: watch::Receiver<bool>,
    mut first_unfence: bool,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval(&state)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if state.broker_epoch().0 < 0 {
            register(&state, incarnation_id, None).await;
        }
        if let Some(reply) = heartbeat(&state, false).await
            && !reply.is_fenced
        {
            on_unfenced(&state, &mut first_unfence).await;
        }
    }
}

/// Work that must wait until this broker has caught up with the metadata log.
async fn on_unfenced(state: &Arc<BrokerState>, first: &mut bool) {
    if std::mem::take(first) {
        let image = state.image();
        crate::replica_manager::delete_stray_logs(state, &image).await;
    }
}

const INCARNATION_FILE: &str = "broker.incarnation";

/// Records this process's incarnation id in the data directory and returns the previous one.
/// The data directory's lock guarantees that the previous incarnation is no longer running,
/// which lets the controller replace its registration at once after a crash. A failure to
/// record it only costs a wait for the old session to expire.
fn replace_incarnation(data_dir: &std::path::Path, incarnation_id: Uuid) -> Option<Uuid> {
    let path = data_dir.join(INCARNATION_FILE);
    let previous = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| Uuid::parse_str(t.trim()).ok());
    let tmp = data_dir.join(format!("{INCARNATION_FILE}.tmp"));
    let written = std::fs::write(&tmp, incarnation_id.to_string())
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .and_then(|()| std::fs::File::open(data_dir)?.sync_all());
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot record the broker incarnation");
    }
    previous
}

/// Registers until the controller accepts; the epoch is stored in the state.
async fn register(
    state: &BrokerState,
    incarnation_id: Uuid,
    previous_incarnation_id: Option<Uuid>,
) {
    let request = BrokerRegistrationRequest {
        broker_id: state.node_id,
        incarnation_id,
        endpoints: state
            .advertised_listeners
            .iter()
            .map(|(name, endpoint)| BrokerEndpoint {
                name: name.clone(),
                host: endpoint.host.clone(),
                port: endpoint.port,
            })
            .collect(),
        rack: state.config.rack.clone(),
        previous_incarnation_id,
    };
    let mut failures = 0u32;
    loop {
        match state
            .controller_call(ControllerRequest::RegisterBroker(request.clone()))
            .await
            .map(|r| r.reply)
        {
            Ok(ControllerReply::BrokerRegistration(Ok(reply))) => {
                tracing::info!(broker_epoch = %reply.broker_epoch, "registered with the controller");
                state.set_registration(reply.broker_epoch, true);
                return;
            }
            Ok(ControllerReply::BrokerRegistration(Err(e)))
                if e.error == ResponseError::DuplicateBrokerRegistration =>
            {
                // The previous incarnation's session has not expired yet (a fast restart
                // after a crash); it will, within broker.session.timeout.ms.
                tracing::info!(
                    "waiting for the previous incarnation's session to expire: {}",
                    e.message
                );
            }
            Ok(other) => tracing::warn!(reply = ?other, "broker registration refused"),
            Err(e) => {
                // Expected for a moment while the quorum elects; said once in a while, so a
                // node that cannot register for long shows why.
                failures += 1;
                if failures.is_multiple_of(10) {
                    tracing::warn!(error = %e.message, leader = ?state.quorum.leader(), failures, "cannot reach the active controller to register; retrying");
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Sends one heartbeat; updates the fenced state. `None` when the controller did not answer.
async fn heartbeat(state: &BrokerState, want_shutdown: bool) -> Option<BrokerHeartbeatReply> {
    let epoch = state.broker_epoch();
    if epoch.0 < 0 {
        return None;
    }
    let request = BrokerHeartbeatRequest {
        broker_id: state.node_id,
        broker_epoch: epoch,
        metadata_offset: state.image().applied_index(),
        want_fence: false,
        want_shutdown,
    };
    let timeout = interval(state).max(Duration::from_secs(2));
    let response = state
        .quorum
        .controller()
        .call(ControllerRequest::BrokerHeartbeat(request), timeout)
        .await;
    match response.map(|r| r.reply) {
        Ok(ControllerReply::BrokerHeartbeat(Ok(reply))) => {
            if reply.is_fenced != state.is_fenced() {
                tracing::info!(
                    fenced = reply.is_fenced,
                    "the controller changed this broker's fencing"
                );
            }
            state.set_registration(epoch, reply.is_fenced);
            Some(reply)
        }
        Ok(ControllerReply::BrokerHeartbeat(Err(e))) => {
            // The controller does not know this registration (it was replaced or removed):
            // register anew.
            tracing::warn!(error = %e.message, "heartbeat refused; registering again");
            state.set_registration(BrokerEpoch(-1), true);
            None
        }
        Ok(other) => {
            tracing::warn!(reply = ?other, "unexpected heartbeat reply");
            None
        }
        Err(e) => {
            tracing::debug!(error = %e, "heartbeat not answered");
            None
        }
    }
}

/// Asks the controller to move leadership away, and waits until it says this broker may stop
/// (or until the session timeout, after which it would be fenced anyway).
pub async fn controlled_shutdown(state: &BrokerState) {
    if !state.config.controlled_shutdown_enable || state.broker_epoch().0 < 0 {
        return;
    }
    let started = tokio::time::Instant::now();
    let deadline =
        started + Duration::from_millis(state.config.broker_session_timeout_ms.max(0) as u64);
    // Without a quorum leader no controller can move leadership: waiting out the whole
    // session timeout (as the last node of a cluster being stopped would) helps nobody.
    let leaderless_limit =
        Duration::from_millis(2 * state.config.election_timeout_ms).max(Duration::from_secs(2));
    let mut leaderless_since: Option<tokio::time::Instant> = None;
    while tokio::time::Instant::now() < deadline {
        if heartbeat(state, true)
            .await
            .is_some_and(|r| r.should_shut_down)
        {
            tracing::info!("controlled shutdown: leadership moved away");
            return;
        }
        let now = tokio::time::Instant::now();
        match state.quorum.leader() {
            Some(_) => leaderless_since = None,
            None => {
                let since = *leaderless_since.get_or_insert(now);
                if now - since >= leaderless_limit {
                    tracing::warn!(
                        "controlled shutdown: the metadata quorum has no leader; stopping without it"
                    );
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!("controlled shutdown did not complete in time; stopping anyway");
}
