//! The transaction coordinator over every transactional id of the `__transaction_state`
//! partitions this broker leads: request routing, partition loading, write tracking, markers,
//! timeouts and expiry. Pure like `strom-group`'s coordinator: the shell passes `now_ms` in,
//! appends the [`Write`]s, sends the [`Markers`], and reports back.
//!
//! ```text
//!   shell                                        Coordinator
//!   load_partition(p, epoch); replay(p, k, v)…;  rebuild the ids of partition p
//!   finish_load(now, p) ---------------------->  Output { markers of every Prepare* id }
//!   init_producer_id / add_partitions /
//!   add_offsets / end_txn(now, rid, …) ------->  Output { writes, responses, markers }
//!   write_completed(now, wid) / write_failed ->  Output (held responses, markers to send)
//!   markers_written(now, id, pid, epoch) ----->  Output { the Complete write }
//!   poll(now) every cleanup interval --------->  Output { timeout aborts, expired ids }
//!   unload_partition(p) ---------------------->  Output (NOT_COORDINATOR to what waited)
//! ```
//!
//! A response that acknowledges persisted state (InitProducerId, AddPartitionsToTxn, EndTxn)
//! is held until its write completes, as Kafka does.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::metadata::{End, Init, TopicPartition, TransactionMetadata, TxnError, TxnTransition};
use crate::record;
use crate::state::TransactionState;

/// The topic whose partitions hold consumer group offsets (AddOffsetsToTxn adds one).
pub const CONSUMER_OFFSETS: &str = "__consumer_offsets";

/// Settings, with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `transaction.state.log.num.partitions` (50).
    pub num_partitions: i32,
    /// `offsets.topic.num.partitions` (50): where AddOffsetsToTxn finds a group's partition.
    pub offsets_partitions: i32,
    /// `transaction.max.timeout.ms` (900000).
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms` (604800000): an idle id is forgotten after this.
    pub id_expiration_ms: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            num_partitions: 50,
            offsets_partitions: 50,
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
        }
    }
}

/// The producer a request comes from, as it identifies itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
}

/// Chosen by the shell; answered exactly once, in this call's [`Output`] or a later one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteId(pub u64);

/// Records to append to `__transaction_state` partition `partition`, in order after every
/// earlier write of that partition. `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub id: WriteId,
    pub partition: i32,
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// COMMIT or ABORT markers to write to every partition of one transaction. When every
/// partition has it, the shell calls [`Coordinator::markers_written`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markers {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    /// The leader epoch of the `__transaction_state` partition: a partition leader refuses
    /// markers from an older coordinator.
    pub coordinator_epoch: i32,
    pub partitions: Vec<TopicPartition>,
}

/// A response; `error` is a Kafka error code (0 for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    InitProducerId {
        error: i16,
        producer_id: i64,
        producer_epoch: i16,
    },
    /// One error for every partition of the request.
    AddPartitions {
        error: i16,
    },
    AddOffsets {
        error: i16,
    },
    EndTxn {
        error: i16,
        producer_id: i64,
        producer_epoch: i16,
    },
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    pub writes: Vec<Write>,
    pub responses: Vec<(RequestId, Response)>,
    pub markers: Vec<Markers>,
}

impl Output {
    pub fn response(&self, id: RequestId) -> Option<&Response> {
        self.responses
            .iter()
            .find_map(|(rid, response)| (*rid == id).then_some(response))
    }
}

/// Kafka error codes the coordinator answers with besides [`TxnError`]'s.
pub mod codes {
    pub const NONE: i16 = 0;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const INVALID_REQUEST: i16 = 42;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
}

/// What a write does once durable.
#[derive(Debug, Clone)]
enum Purpose {
    /// Answer InitProducerId with the new producer id and epoch.
    Init(RequestId),
    AddPartitions(RequestId),
    AddOffsets(RequestId),
    /// Answer EndTxn, then send the markers.
    End(RequestId),
    /// A fencing or timeout abort: send the markers, nobody waits.
    Abort,
    /// The Complete record: nothing more to do.
    Complete,
    /// The tombstone of an expired id: forget it.
    Expire,
}

#[derive(Debug)]
struct PendingWrite {
    transactional_id: String,
    transition: Option<TxnTransition>,
    purpose: Purpose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartitionStatus {
    Loading,
    Active,
}

#[derive(Debug)]
struct OwnedPartition {
    status: PartitionStatus,
    coordinator_epoch: i32,
}

#[derive(Debug)]
pub struct Coordinator {
    config: Config,
    partitions: BTreeMap<i32, OwnedPartition>,
    transactions: HashMap<String, TransactionMetadata>,
    writes: BTreeMap<WriteId, PendingWrite>,
    next_write: u64,
}

impl Coordinator {
    pub fn new(config: Config) -> Self {
        Coordinator {
            config,
            partitions: BTreeMap::new(),
            transactions: HashMap::new(),
            writes: BTreeMap::new(),
            next_write: 0,
        }
    }

    /// The `__transaction_state` partition of a transactional id (Kafka's
    /// `abs(id.hashCode) % transaction.state.log.num.partitions`).
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        strom_group::partition_for_group(transactional_id, self.config.num_partitions)
    }

    // ----------------------------------------------------------------------------------
    // Requests

    /// InitProducerId with a transactional id. `fresh_producer_id` is an unused producer id
    /// the shell reserved; it is taken for a new id or when the epoch is exhausted.
    pub fn init_producer_id(
        &mut self,
        now_ms: i64,
        rid: RequestId,
        transactional_id: &str,
        timeout_ms: i32,
        fresh_producer_id: i64,
    ) -> Output {
        let mut out = Output::default();
        let reply = |error| Response::InitProducerId {
            error,
            producer_id: -1,
            producer_epoch: -1,
        };
        if let Err(code) = self.check_owner(transactional_id) {
            return answer(out, rid, reply(code));
        }
        if transactional_id.len() > record::MAX_TRANSACTIONAL_ID_LEN {
            // No `__transaction_state` key can hold it (Kafka cannot store one either).
            return answer(out, rid, reply(codes::INVALID_REQUEST));
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return answer(out, rid, reply(codes::INVALID_TRANSACTION_TIMEOUT));
        }
        let txn = self
            .transactions
            .entry(transactional_id.to_string())
            .or_insert_with(|| {
                TransactionMetadata::new(transactional_id, fresh_producer_id, timeout_ms, now_ms)
            });
        match txn.prepare_init_producer_id(now_ms, timeout_ms, || fresh_producer_id) {
            Ok(Init::Ready(t)) => {
                self.write(&mut out, transactional_id, t, Purpose::Init(rid));
            }
            Ok(Init::FenceAndAbort(t)) => {
                // The new instance retries once the old transaction's abort is complete.
                out.responses
                    .push((rid, reply(TxnError::ConcurrentTransactions.code())));
                self.write(&mut out, transactional_id, t, Purpose::Abort);
            }
            Err(e) => return answer(out, rid, reply(e.code())),
        }
        out
    }

    /// AddPartitionsToTxn from a client.
    pub fn add_partitions(
        &mut self,
        now_ms: i64,
        rid: RequestId,
        transactional_id: &str,
        producer: Producer,
        partitions: &[TopicPartition],
    ) -> Output {
        self.add(now_ms, rid, transactional_id, producer, partitions, false)
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction, so
    /// its TxnOffsetCommit records get the transaction's marker.
    pub fn add_offsets(
        &mut self,
        now_ms: i64,
        rid: RequestId,
        transactional_id: &str,
        producer: Producer,
        group_id: &str,
    ) -> Output {
        let partition = strom_group::partition_for_group(group_id, self.config.offsets_partitions);
        let offsets = [(CONSUMER_OFFSETS.to_string(), partition)];
        self.add(now_ms, rid, transactional_id, producer, &offsets, true)
    }

    fn add(
        &mut self,
        now_ms: i64,
        rid: RequestId,
        transactional_id: &str,
        producer: Producer,
        partitions: &[TopicPartition],
        offsets: bool,
    ) -> Output {
        let out = Output::default();
        let reply = |error| {
            if offsets {
                Response::AddOffsets { error }
            } else {
                Response::AddPartitions { error }
            }
        };
        if let Err(code) = self.check_owner(transactional_id) {
            return answer(out, rid, reply(code));
        }
        let Some(txn) = self.transactions.get_mut(transactional_id) else {
            return answer(out, rid, reply(TxnError::InvalidProducerIdMapping.code()));
        };
        match txn.prepare_add_partitions(now_ms, producer.id, producer.epoch, partitions) {
            Ok(Some(t)) => {
                let purpose = if offsets {
                    Purpose::AddOffsets(rid)
                } else {
                    Purpose::AddPartitions(rid)
                };
                let mut out = out;
                self.write(&mut out, transactional_id, t, purpose);
                out
            }
            Ok(None) => answer(out, rid, reply(codes::NONE)),
            Err(e) => answer(out, rid, reply(e.code())),
        }
    }

    /// AddPartitionsToTxn with `verify_only` (KIP-890 part 1, from a partition leader): are
    /// these partitions in the producer's open transaction? Answers at once, writes nothing.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer: Producer,
        partitions: &[TopicPartition],
    ) -> Vec<(TopicPartition, i16)> {
        let error = match self.check_owner(transactional_id) {
            Err(code) => Some(code),
            Ok(_) => match self.transactions.get(transactional_id) {
                None => Some(TxnError::InvalidProducerIdMapping.code()),
                Some(txn) if txn.current().producer_id != producer.id => {
                    Some(TxnError::InvalidProducerIdMapping.code())
                }
                Some(txn) if txn.current().producer_epoch != producer.epoch => {
                    Some(TxnError::ProducerFenced.code())
                }
                Some(_) => None,
            },
        };
        partitions
            .iter()
            .map(|p| {
                let code = error.unwrap_or_else(|| {
                    let txn = &self.transactions[transactional_id];
                    let open = txn.state() == TransactionState::Ongoing
                        && txn.current().partitions.contains(p);
                    if open {
                        codes::NONE
                    } else {
                        TxnError::InvalidTxnState.code()
                    }
                });
                (p.clone(), code)
            })
            .collect()
    }

    /// EndTxn. The answer waits for the Prepare record; the markers follow it.
    pub fn end_txn(
        &mut self,
        now_ms: i64,
        rid: RequestId,
        transactional_id: &str,
        producer: Producer,
        commit: bool,
        transaction_version_2: bool,
    ) -> Output {
        let out = Output::default();
        let reply = |error, producer_id, producer_epoch| Response::EndTxn {
            error,
            producer_id,
            producer_epoch,
        };
        if let Err(code) = self.check_owner(transactional_id) {
            return answer(out, rid, reply(code, -1, -1));
        }
        let Some(txn) = self.transactions.get_mut(transactional_id) else {
            return answer(
                out,
                rid,
                reply(TxnError::InvalidProducerIdMapping.code(), -1, -1),
            );
        };
        match txn.prepare_end(
            now_ms,
            producer.id,
            producer.epoch,
            commit,
            transaction_version_2,
        ) {
            Ok(End::Write(t)) => {
                let mut out = out;
                self.write(&mut out, transactional_id, t, Purpose::End(rid));
                out
            }
            Ok(End::AlreadyDone) => {
                let current = txn.current();
                answer(
                    out,
                    rid,
                    reply(codes::NONE, current.producer_id, current.producer_epoch),
                )
            }
            Err(e) => answer(out, rid, reply(e.code(), -1, -1)),
        }
    }

    /// Every partition of the transaction has its marker: record the completion. Ignored
    /// when the transaction moved on (a stale report from before a reload).
    pub fn markers_written(
        &mut self,
        now_ms: i64,
        transactional_id: &str,
        producer: Producer,
    ) -> Output {
        let mut out = Output::default();
        if self.check_owner(transactional_id).is_err() {
            return out;
        }
        let Some(txn) = self.transactions.get_mut(transactional_id) else {
            return out;
        };
        let current = txn.current();
        if current.producer_id != producer.id || current.producer_epoch != producer.epoch {
            return out;
        }
        if let Ok(t) = txn.prepare_complete(now_ms) {
            self.write(&mut out, transactional_id, t, Purpose::Complete);
        }
        out
    }

    /// Aborts transactions past their timeout and forgets ids idle for
    /// `transactional.id.expiration.ms`. The shell calls it every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub fn poll(&mut self, now_ms: i64) -> Output {
        let mut out = Output::default();
        let mut ids: Vec<String> = self
            .transactions
            .keys()
            .filter(|id| self.check_owner(id).is_ok())
            .cloned()
            .collect();
        ids.sort();
        for id in ids {
            let txn = self.transactions.get_mut(&id).expect("listed above");
            if txn.has_timed_out(now_ms) {
                if let Ok(t) = txn.prepare_timeout_abort(now_ms) {
                    self.write(&mut out, &id, t, Purpose::Abort);
                }
            } else if txn.pending().is_none()
                && txn.state().is_idle()
                && txn.current().last_update_ms + self.config.id_expiration_ms < now_ms
                && !self.writes.values().any(|w| w.transactional_id == id)
            {
                self.write_tombstone(&mut out, &id);
            }
        }
        out
    }

    // ----------------------------------------------------------------------------------
    // Writes

    /// The write `id` is durable.
    pub fn write_completed(&mut self, id: WriteId) -> Output {
        let mut out = Output::default();
        let Some(write) = self.writes.remove(&id) else {
            return out;
        };
        let txn_id = write.transactional_id;
        let coordinator_epoch = self.coordinator_epoch(&txn_id);
        if let Purpose::Expire = write.purpose {
            self.transactions.remove(&txn_id);
            return out;
        }
        let (Some(txn), Some(transition)) = (self.transactions.get_mut(&txn_id), write.transition)
        else {
            return out;
        };
        if txn.complete(&transition).is_err() {
            return out;
        }
        let current = txn.current();
        match write.purpose {
            Purpose::Init(rid) => out.responses.push((
                rid,
                Response::InitProducerId {
                    error: codes::NONE,
                    producer_id: current.producer_id,
                    producer_epoch: current.producer_epoch,
                },
            )),
            Purpose::AddPartitions(rid) => out
                .responses
                .push((rid, Response::AddPartitions { error: codes::NONE })),
            Purpose::AddOffsets(rid) => out
                .responses
                .push((rid, Response::AddOffsets { error: codes::NONE })),
            Purpose::End(rid) => {
                out.responses.push((
                    rid,
                    Response::EndTxn {
                        error: codes::NONE,
                        producer_id: current.producer_id,
                        producer_epoch: current.producer_epoch,
                    },
                ));
                out.markers.push(markers_of(txn, coordinator_epoch));
            }
            Purpose::Abort => {
                out.markers.push(markers_of(txn, coordinator_epoch));
            }
            Purpose::Complete | Purpose::Expire => {}
        }
        out
    }

    /// The write `id` failed (`error`: the Kafka code to answer with, e.g. NOT_COORDINATOR
    /// when leadership moved). Nothing it would have changed is changed; a failed Complete
    /// record asks for the markers again. A failed fencing or timeout abort is retried by the
    /// next InitProducerId or poll.
    pub fn write_failed(&mut self, id: WriteId, error: i16) -> Output {
        let mut out = Output::default();
        let Some(write) = self.writes.remove(&id) else {
            return out;
        };
        if let Some(txn) = self.transactions.get_mut(&write.transactional_id)
            && write.transition.is_some()
        {
            txn.fail();
        }
        if let Some(response) = error_response(&write.purpose, error) {
            out.responses.push(response);
        }
        // The markers are written but their completion is not recorded: ask for them again
        // (writing a marker twice is harmless), so the transaction does not stay prepared
        // forever. A coordinator that lost the partition leaves it to the next one.
        if let Purpose::Complete = write.purpose
            && self.check_owner(&write.transactional_id).is_ok()
            && let Some(txn) = self.transactions.get(&write.transactional_id)
        {
            let epoch = self.coordinator_epoch(&write.transactional_id);
            out.markers.push(markers_of(txn, epoch));
        }
        out
    }

    fn write(&mut self, out: &mut Output, txn_id: &str, t: TxnTransition, purpose: Purpose) {
        let value = record::encode_value(&t.to_record());
        self.append(out, txn_id, Some(value), Some(t), purpose);
    }

    fn write_tombstone(&mut self, out: &mut Output, txn_id: &str) {
        self.append(out, txn_id, None, None, Purpose::Expire);
    }

    fn append(
        &mut self,
        out: &mut Output,
        txn_id: &str,
        value: Option<Bytes>,
        transition: Option<TxnTransition>,
        purpose: Purpose,
    ) {
        let Ok(key) = record::encode_key(txn_id) else {
            // Longer than a key can hold: InitProducerId refuses such ids, so none is here.
            return;
        };
        let id = self.next_write_id();
        out.writes.push(Write {
            id,
            partition: self.partition_for(txn_id),
            key,
            value,
        });
        self.writes.insert(
            id,
            PendingWrite {
                transactional_id: txn_id.to_string(),
                transition,
                purpose,
            },
        );
    }

    fn next_write_id(&mut self) -> WriteId {
        self.next_write += 1;
        WriteId(self.next_write)
    }

    fn coordinator_epoch(&self, txn_id: &str) -> i32 {
        self.partitions
            .get(&self.partition_for(txn_id))
            .map_or(-1, |p| p.coordinator_epoch)
    }
}

fn answer(mut out: Output, rid: RequestId, response: Response) -> Output {
    out.responses.push((rid, response));
    out
}

fn markers_of(txn: &TransactionMetadata, coordinator_epoch: i32) -> Markers {
    let current = txn.current();
    Markers {
        transactional_id: txn.transactional_id.clone(),
        producer_id: current.producer_id,
        producer_epoch: current.producer_epoch,
        commit: current.state == TransactionState::PrepareCommit,
        coordinator_epoch,
        partitions: current.partitions.iter().cloned().collect(),
    }
}

fn error_response(purpose: &Purpose, error: i16) -> Option<(RequestId, Response)> {
    match purpose {
        Purpose::Init(rid) => Some((
            *rid,
            Response::InitProducerId {
                error,
                producer_id: -1,
                producer_epoch: -1,
            },
        )),
        Purpose::AddPartitions(rid) => Some((*rid, Response::AddPartitions { error })),
        Purpose::AddOffsets(rid) => Some((*rid, Response::AddOffsets { error })),
        Purpose::End(rid) => Some((
            *rid,
            Response::EndTxn {
                error,
                producer_id: -1,
                producer_epoch: -1,
            },
        )),
        Purpose::Abort | Purpose::Complete | Purpose::Expire => None,
    }
}

mod admin;
mod load;

pub use admin::Described;

#[cfg(test)]
mod tests;
