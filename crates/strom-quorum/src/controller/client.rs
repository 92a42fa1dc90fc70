//! How a node reaches the active controller, wherever it is.
//!
//! The client asks the controller it believes leads the quorum (its own Raft state on a
//! controller node, the last fetch answer on a broker-only node); a `NotController` answer
//! names the leader to try next; an unreachable controller sends it to the next voter. Retries
//! back off briefly and end at the call's deadline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strom_cluster::BrokerId;
use tokio::sync::watch;

use super::ControllerHandle;
use super::messages::{ControllerError, ControllerRequest, ControllerResponse};
use crate::network::Network;
use crate::rpc::{RpcRequest, RpcResponse};

/// Pause between attempts when no controller answered, so a leaderless quorum (an election in
/// progress) is not flooded.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct ControllerClient {
    node_id: BrokerId,
    /// This node's own controller, when it is one.
    local: Option<ControllerHandle>,
    /// The quorum leader as this node last heard of it.
    leader: watch::Receiver<Option<BrokerId>>,
    /// Controller listener address of every voter (`controller.quorum.voters`).
    voters: Arc<BTreeMap<BrokerId, String>>,
    network: Network,
}

impl std::fmt::Debug for ControllerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerClient")
            .field("node_id", &self.node_id)
            .field("voters", &self.voters)
            .finish()
    }
}

impl ControllerClient {
    pub fn new(
        node_id: BrokerId,
        local: Option<ControllerHandle>,
        leader: watch::Receiver<Option<BrokerId>>,
        voters: BTreeMap<BrokerId, String>,
        network: Network,
    ) -> Self {
        Self {
            node_id,
            local,
            leader,
            voters: Arc::new(voters),
            network,
        }
    }

    /// The quorum leader as this node last heard of it.
    pub fn leader(&self) -> Option<BrokerId> {
        *self.leader.borrow()
    }

    /// Sends `request` to the active controller, retrying until `timeout` passes.
    pub async fn call(
        &self,
        request: ControllerRequest,
        timeout: Duration,
    ) -> Result<ControllerResponse, ControllerError> {
        let deadline = Instant::now() + timeout;
        let voters: Vec<BrokerId> = self.voters.keys().copied().collect();
        let mut next_voter = voters.iter().position(|v| *v == self.node_id).unwrap_or(0);
        let mut hint = self.leader();
        let mut last_error = ControllerError::Unavailable("no controller is known".into());
        loop {
            let target = match hint.take() {
                Some(leader) => leader,
                None if voters.is_empty() => return Err(last_error),
                None => {
                    next_voter = (next_voter + 1) % voters.len();
                    voters[next_voter]
                }
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(last_error);
            }
            match self.call_one(target, &request, remaining).await {
                Ok(response) => return Ok(response),
                Err(ControllerError::NotController { leader }) => {
                    last_error = ControllerError::NotController { leader };
                    hint = leader.filter(|l| *l != target);
                }
                Err(e) => last_error = e,
            }
            if hint.is_none() {
                let pause = RETRY_BACKOFF.min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::sleep(pause).await;
                // A leader learned of meanwhile is the best next guess.
                hint = self.leader().filter(|l| *l != target);
            }
        }
    }

    async fn call_one(
        &self,
        target: BrokerId,
        request: &ControllerRequest,
        timeout: Duration,
    ) -> Result<ControllerResponse, ControllerError> {
        if target == self.node_id
            && let Some(local) = &self.local
        {
            return tokio::time::timeout(timeout, local.call(request.clone()))
                .await
                .unwrap_or_else(|_| {
                    Err(ControllerError::Unavailable(
                        "the local controller did not answer in time".into(),
                    ))
                });
        }
        let Some(address) = self.voters.get(&target) else {
            return Err(ControllerError::Unavailable(format!(
                "controller {target} is not a voter"
            )));
        };
        let client = self.network.client(address);
        let message = RpcRequest::Controller(request.clone());
        match client.call(&message, &[], timeout).await {
            Ok((RpcResponse::Controller(result), _)) => result,
            Ok((other, _)) => Err(ControllerError::Unavailable(format!(
                "controller {target} answered {}: {other:?}",
                request.name()
            ))),
            Err(e) => Err(ControllerError::Unavailable(e.to_string())),
        }
    }
}
