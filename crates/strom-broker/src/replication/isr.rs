//! The leader side of in-sync replica changes: every `ISR_POLL_INTERVAL` the partitions this
//! broker leads are checked for lagging followers, and every proposal (a shrink from that
//! check, an expansion from a follower's fetch) is sent to the active controller as an
//! AlterPartition with the partition epoch it is based on. The controller's answer is not
//! applied here: the change arrives, like every metadata change, in the next image, and the
//! replica manager hands it to the partition. A refused or unanswered proposal is dropped, so
//! the partition proposes again.

use std::sync::{Arc, Weak};
use std::time::Duration;

use strom_cluster::controller::AlterPartitionRequest;
use strom_quorum::{ControllerReply, ControllerRequest};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::partition::Partition;
use crate::replication::leader::IsrProposal;
use crate::state::BrokerState;

/// How often leaders look for lagging followers: well below `replica.lag.time.max.ms`.
const ISR_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long one AlterPartition may take before the proposal is dropped and made again.
const ALTER_PARTITION_TIMEOUT: Duration = Duration::from_secs(10);

/// Hands ISR proposals to the sender task.
#[derive(Clone)]
pub struct IsrChanges {
    proposals: mpsc::UnboundedSender<(Arc<Partition>, IsrProposal)>,
}

impl IsrChanges {
    /// Queues a proposal (unbounded: at most one per partition is in flight).
    pub fn propose(&self, partition: Arc<Partition>, proposal: IsrProposal) {
        let _ = self.proposals.send((partition, proposal));
    }
}

/// Starts the task that checks leaders and sends proposals.
pub fn spawn(state: Weak<BrokerState>) -> (IsrChanges, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Arc<Partition>, IsrProposal)>();
    let changes = IsrChanges { proposals: tx };
    let task = tokio::spawn(async move {
        let mut poll = tokio::time::interval(ISR_POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                proposal = rx.recv() => match proposal {
                    Some((partition, proposal)) => {
                        let Some(state) = state.upgrade() else { return };
                        tokio::spawn(send(state, partition, proposal));
                    }
                    None => return,
                },
                _ = poll.tick() => {
                    let Some(state) = state.upgrade() else { return };
                    check_leaders(&state);
                }
            }
        }
    });
    (changes, task)
}

fn check_leaders(state: &Arc<BrokerState>) {
    let now = crate::now_ms();
    for partition in state.partitions() {
        if !partition.is_leader() {
            continue;
        }
        if let (Some(proposal), _) = partition.poll_isr(now) {
            tokio::spawn(send(Arc::clone(state), partition, proposal));
        }
    }
}

async fn send(state: Arc<BrokerState>, partition: Arc<Partition>, proposal: IsrProposal) {
    let before = partition.in_sync_replicas().len();
    let after = proposal.new_in_sync_replicas.len();
    let request = ControllerRequest::AlterPartition(AlterPartitionRequest {
        broker_id: state.node_id,
        broker_epoch: state.broker_epoch(),
        topic_id: partition.topic_id,
        partition: partition.topic_partition.partition,
        leader_epoch: proposal.leader_epoch,
        partition_epoch: proposal.partition_epoch,
        new_in_sync_replicas: proposal.new_in_sync_replicas.clone(),
        leader_recovery_state: Default::default(),
    });
    let response = state
        .quorum
        .controller()
        .call(request, ALTER_PARTITION_TIMEOUT)
        .await;
    match response.map(|r| r.reply) {
        Ok(ControllerReply::AlterPartition(Ok(_))) => {
            let counter = if after < before {
                &state.metrics.isr_shrinks
            } else {
                &state.metrics.isr_expands
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(
                partition = %partition.topic_partition,
                isr = ?proposal.new_in_sync_replicas,
                "in-sync replicas changed"
            );
        }
        Ok(ControllerReply::AlterPartition(Err(e))) => {
            tracing::info!(partition = %partition.topic_partition, error = %e.message, "the controller refused an ISR change");
            partition.isr_change_failed();
        }
        Ok(other) => {
            tracing::warn!(reply = ?other, "unexpected AlterPartition reply");
            partition.isr_change_failed();
        }
        Err(e) => {
            tracing::debug!(partition = %partition.topic_partition, error = %e, "AlterPartition not answered");
            partition.isr_change_failed();
        }
    }
}
