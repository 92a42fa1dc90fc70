//! The producer: batching records per partition and sending them to partition leaders.
//!
//! ```text
//!  send(record) ── partition ──► accumulator: per partition an open batch + a queue of sealed
//!     │                          batches (std mutex, never held across .await)
//!     └─► Delivery (waits on the batch's completion)        │ wakeup / linger deadline
//!                                                           ▼
//!                              sender task: seal batches that are full, lingered long enough
//!                              or flushed; group the sendable ones by leader; spawn one
//!                              Produce request per leader ── response ──► complete or requeue
//! ```
//!
//! [`Producer::send`] appends the record straight into its partition's open
//! [`RecordBatchBuilder`], so the record bytes are copied once and the hot path allocates
//! nothing per record: the [`Delivery`] it returns shares the batch's completion channel and
//! knows its offset delta. A batch is *sealed* (its sequence numbers fixed) when it is full, has
//! waited `linger`, or a flush or close asks; the sender task encodes (compresses) it when it is
//! first sent and keeps the bytes for retries, so a retried batch is byte-identical, which is
//! what idempotence needs.
//!
//! Ordering per partition: at most `max_in_flight_per_partition` batches are in flight. When
//! one comes back with a retriable error it goes back to the front of its partition's queue (by
//! batch order) and nothing new is sent for that partition until the others in flight have
//! answered, so the retried batches go out again in their original order.
//!
//! Idempotence: with `enable_idempotence` the producer gets a producer id and epoch from
//! InitProducerId and numbers each partition's records from 0, so a broker can drop duplicates
//! from retries. Not handled (as in a Java producer without transactions, these fail the
//! affected batches rather than being repaired): `UNKNOWN_PRODUCER_ID`, and a sequence gap left
//! by a batch that expired at its delivery timeout.
//!
//! Memory is bounded by `buffer_memory` bytes of unsent records: `send` waits for room (up to
//! `max_block`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::partitioner::{StickyPartitioner, partition_for_key};
use crate::records::{
    BatchHeader, Compression, ProducerRecord, RECORD_BATCH_HEADER_BYTES, RecordBatchBuilder,
    record_size_upper_bound,
};

/// How many acknowledgements a produce waits for (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: do not wait; offsets are unknown (-1).
    None,
    /// `acks=1`: the leader appended the records.
    Leader,
    /// `acks=all` (-1): every in-sync replica has them.
    All,
}

impl Acks {
    /// The wire value.
    pub fn value(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Producer settings, named after the Java producer's properties.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `acks`.
    pub acks: Acks,
    /// `linger.ms`: how long a batch waits for more records before it is sent.
    pub linger: Duration,
    /// `batch.size`: a batch is sent once its records reach this many bytes (uncompressed).
    pub batch_size: usize,
    /// `compression.type`.
    pub compression: Compression,
    /// `enable.idempotence`: producer id + sequence numbers so retries cannot duplicate.
    /// Requires `acks = All`.
    pub enable_idempotence: bool,
    /// `delivery.timeout.ms`: how long a record may take from `send` to acknowledgement,
    /// retries included.
    pub delivery_timeout: Duration,
    /// Batches in flight per partition (`max.in.flight.requests.per.connection`, but per
    /// partition). At most 5 with idempotence.
    pub max_in_flight_per_partition: usize,
    /// `max.request.size`: the largest Produce request, and so the largest record.
    pub max_request_bytes: usize,
    /// `buffer.memory`: bytes of records accepted but not yet acknowledged.
    pub buffer_memory: usize,
    /// `max.block.ms`: how long `send` may wait for topic metadata or buffer room.
    pub max_block: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 16 * 1024,
            compression: Compression::None,
            enable_idempotence: false,
            delivery_timeout: Duration::from_secs(120),
            max_in_flight_per_partition: 5,
            max_request_bytes: 1024 * 1024,
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
        }
    }
}

impl ProducerConfig {
    fn validate(&self) -> Result<()> {
        if self.enable_idempotence && self.acks != Acks::All {
            return Err(Error::Config(
                "enable_idempotence requires acks = All".into(),
            ));
        }
        if self.enable_idempotence && self.max_in_flight_per_partition > 5 {
            return Err(Error::Config(
                "enable_idempotence allows at most 5 batches in flight per partition".into(),
            ));
        }
        if self.max_in_flight_per_partition == 0 {
            return Err(Error::Config(
                "max_in_flight_per_partition must be at least 1".into(),
            ));
        }
        if self.max_request_bytes <= RECORD_BATCH_HEADER_BYTES + 64 {
            return Err(Error::Config("max_request_bytes is too small".into()));
        }
        // Keeps every record's lengths within i32, so appending to an empty batch cannot fail.
        if self.max_request_bytes > i32::MAX as usize {
            return Err(Error::Config("max_request_bytes must fit in an i32".into()));
        }
        if self.buffer_memory < self.max_request_bytes {
            return Err(Error::Config(
                "buffer_memory must be at least max_request_bytes".into(),
            ));
        }
        if self.buffer_memory > Semaphore::MAX_PERMITS {
            return Err(Error::Config("buffer_memory is too large".into()));
        }
        Ok(())
    }
}

/// Where a produced record ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 with `acks = None`.
    pub offset: i64,
    /// The record's timestamp: the broker's log-append time if the topic uses it, else the
    /// creation time that was sent.
    pub timestamp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchOutcome {
    base_offset: i64,
    log_append_time: Option<i64>,
}

type Completion = watch::Sender<Option<Result<BatchOutcome>>>;

/// A pending acknowledgement for one record; [`Delivery::wait`] resolves when its batch is
/// acknowledged or fails.
#[derive(Debug)]
pub struct Delivery {
    completion: watch::Receiver<Option<Result<BatchOutcome>>>,
    topic: Arc<str>,
    partition: i32,
    offset_delta: i32,
    timestamp: i64,
}

impl Delivery {
    /// The partition the record was assigned to.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// True once the record's batch was acknowledged or failed, so [`Delivery::wait`] returns
    /// at once. Lets a caller that keeps many deliveries (a load generator) retire finished
    /// ones without awaiting each.
    pub fn is_ready(&self) -> bool {
        self.completion.borrow().is_some()
    }

    /// Waits until the record's batch was acknowledged or failed, without consuming the
    /// delivery (then [`Delivery::wait`] returns at once). Cancel-safe, so it can race a timer
    /// in `select!`.
    pub async fn ready(&mut self) {
        // An error means the producer went away; `wait` reports that.
        let _ = self.completion.wait_for(Option::is_some).await;
    }

    /// Waits for the record's batch to be acknowledged.
    pub async fn wait(mut self) -> Result<RecordMetadata> {
        let outcome = self
            .completion
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::Closed("producer"))?
            .clone();
        let outcome = match outcome {
            Some(Ok(outcome)) => outcome,
            Some(Err(e)) => return Err(e),
            None => return Err(Error::Closed("producer")),
        };
        Ok(RecordMetadata {
            topic: self.topic,
            partition: self.partition,
            offset: if outcome.base_offset < 0 {
                -1
            } else {
                outcome.base_offset + i64::from(self.offset_delta)
            },
            timestamp: outcome.log_append_time.unwrap_or(self.timestamp),
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct ProducerIdentity {
    id: i64,
    epoch: i16,
}

struct OpenBatch {
    id: u64,
    builder: RecordBatchBuilder,
    created: Instant,
    completion: Arc<Completion>,
    reserved_bytes: usize,
}

/// A sealed batch: its records are fixed; its bytes are encoded when first sent.
struct SealedBatch {
    id: u64,
    payload: Payload,
    record_count: i32,
    base_sequence: i32,
    created: Instant,
    completion: Arc<Completion>,
    reserved_bytes: usize,
    attempts: u32,
    /// The error of the last failed attempt, reported if the batch then expires.
    last_error: Option<Error>,
}

enum Payload {
    Pending(RecordBatchBuilder),
    Encoded(Bytes),
}

#[derive(Default)]
struct PartitionQueue {
    open: Option<OpenBatch>,
    ready: VecDeque<SealedBatch>,
    in_flight: usize,
    next_sequence: i32,
    /// A batch came back for retry: send nothing else until everything in flight answered.
    retrying: bool,
    blocked_until: Option<Instant>,
}

#[derive(Default)]
struct Accumulator {
    topics: HashMap<Arc<str>, HashMap<i32, PartitionQueue>>,
    sticky: StickyPartitioner,
    next_batch_id: u64,
    /// Open batches with an id below this are sealed at the next drain (flush, close).
    flush_before: u64,
    /// Ids of batches not yet completed, for flush.
    outstanding: BTreeSet<u64>,
    closing: bool,
}

struct Shared {
    client: Client,
    config: ProducerConfig,
    identity: Option<ProducerIdentity>,
    accumulator: Mutex<Accumulator>,
    /// Wakes the sender task: a batch became ready, a response came back, a flush began.
    wakeup: Notify,
    /// Wakes flush waiters when batches complete.
    completed: Notify,
    /// Permits are bytes of buffered records.
    buffer: Semaphore,
    refreshing_metadata: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Accumulator> {
        // Critical sections only move batches between queues; none can panic half-way through
        // in a way that breaks the structure, so a poisoned lock is still usable.
        self.accumulator.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A Kafka producer. Share it behind an `Arc` to send from several tasks; call
/// [`Producer::close`] to send what is buffered and stop.
pub struct Producer {
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Let the sender finish what is buffered (bounded by the delivery timeout), then exit.
        self.shared.lock().closing = true;
        self.shared.wakeup.notify_one();
    }
}

impl Client {
    /// Creates a producer on this client.
    pub async fn producer(&self, config: ProducerConfig) -> Result<Producer> {
        Producer::new(self.clone(), config).await
    }
}

impl Producer {
    /// Creates a producer; with idempotence this asks the cluster for a producer id.
    pub async fn new(client: Client, config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let identity = if config.enable_idempotence {
            Some(init_producer_id(&client).await?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            buffer: Semaphore::new(config.buffer_memory),
            client,
            config,
            identity,
            accumulator: Mutex::new(Accumulator::default()),
            wakeup: Notify::new(),
            completed: Notify::new(),
            refreshing_metadata: AtomicBool::new(false),
        });
        let sender = tokio::spawn(run_sender(Arc::clone(&shared)));
        Ok(Producer {
            shared,
            sender: Some(sender),
        })
    }

    /// The producer id and epoch, with idempotence.
    pub fn producer_id(&self) -> Option<(i64, i16)> {
        self.shared.identity.map(|i| (i.id, i.epoch))
    }

    /// Adds a record to its partition's batch and returns a handle to await its
    /// acknowledgement. Waits only for topic metadata (first record of a topic) or buffer room.
    pub async fn send(&self, record: ProducerRecord) -> Result<Delivery> {
        let shared = &self.shared;
        let config = &shared.config;
        let size = record_size_upper_bound(
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        );
        if size + RECORD_BATCH_HEADER_BYTES > config.max_request_bytes {
            return Err(Error::kafka(
                ResponseError::MessageTooLarge.code(),
                Some(format!(
                    "record of {size} bytes exceeds max_request_bytes {}",
                    config.max_request_bytes
                )),
            ));
        }
        let partition_count = self.partition_count(&record.topic).await?;
        if let Some(p) = record.partition
            && !(0..partition_count).contains(&p)
        {
            return Err(Error::InvalidArgument(format!(
                "topic '{}' has {partition_count} partitions, there is no partition {p}",
                record.topic
            )));
        }

        // Reserve buffer room first; it is given back when the batch completes.
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        let permit = tokio::time::timeout(config.max_block, shared.buffer.acquire_many(permits))
            .await
            .map_err(|_| Error::Timeout {
                what: "room in the producer buffer".into(),
                timeout: config.max_block,
            })?
            .map_err(|_| Error::Closed("producer"))?;
        permit.forget();

        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let metadata = shared.client.metadata();
        let mut wake = false;
        let result = {
            let mut acc = shared.lock();
            if acc.closing {
                drop(acc);
                shared.buffer.add_permits(size);
                return Err(Error::Closed("producer"));
            }
            let partition = match (record.partition, &record.key) {
                (Some(p), _) => p,
                (None, Some(key)) => partition_for_key(key, partition_count),
                (None, None) => {
                    let topic = metadata.topic(&record.topic);
                    acc.sticky.partition(
                        &record.topic,
                        partition_count,
                        |p| {
                            topic
                                .and_then(|t| t.partition(p))
                                .is_some_and(|p| p.leader.is_some())
                        },
                        size,
                        config.batch_size,
                    )
                }
            };
            let acc = &mut *acc;
            let topic = match acc.topics.get_key_value(&*record.topic) {
                Some((name, _)) => Arc::clone(name),
                None => {
                    let name: Arc<str> = Arc::clone(&record.topic);
                    acc.topics.insert(Arc::clone(&name), HashMap::new());
                    name
                }
            };
            let queue = acc
                .topics
                .get_mut(&topic)
                .map(|partitions| partitions.entry(partition).or_default());
            match queue {
                None => Err(Error::Closed("producer")),
                Some(queue) => {
                    let full = queue.open.as_ref().is_some_and(|open| {
                        !open.builder.is_empty()
                            && open.builder.size_in_bytes() + size > config.batch_size
                    });
                    if full {
                        seal(queue, shared.identity, &mut acc.outstanding);
                        wake = true;
                    }
                    if queue.open.is_none() {
                        let id = acc.next_batch_id;
                        acc.next_batch_id += 1;
                        acc.outstanding.insert(id);
                        let capacity = config.batch_size.max(size + RECORD_BATCH_HEADER_BYTES);
                        queue.open = Some(OpenBatch {
                            id,
                            builder: RecordBatchBuilder::new(config.compression, capacity),
                            created: Instant::now(),
                            completion: Arc::new(watch::channel(None).0),
                            reserved_bytes: 0,
                        });
                        // The sender must learn about the new batch's linger deadline.
                        wake = true;
                    }
                    let appended = match queue.open.as_mut() {
                        None => Err(Error::Closed("producer")),
                        Some(open) => open
                            .builder
                            .append(
                                timestamp,
                                record.key.as_deref(),
                                record.value.as_deref(),
                                &record.headers,
                            )
                            .map(|offset_delta| {
                                open.reserved_bytes += size;
                                let delivery = Delivery {
                                    completion: open.completion.subscribe(),
                                    topic: Arc::clone(&topic),
                                    partition,
                                    offset_delta,
                                    timestamp,
                                };
                                let full = open.builder.size_in_bytes() >= config.batch_size;
                                (delivery, full)
                            }),
                    };
                    appended.map(|(delivery, full)| {
                        if full {
                            seal(queue, shared.identity, &mut acc.outstanding);
                            wake = true;
                        }
                        delivery
                    })
                }
            }
        };
        if result.is_err() {
            shared.buffer.add_permits(size);
        }
        if wake {
            shared.wakeup.notify_one();
        }
        result
    }

    /// Sends a record and waits for its acknowledgement.
    pub async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        let delivery = self.send(record).await?;
        self.shared.wakeup.notify_one();
        delivery.wait().await
    }

    /// Sends every batch buffered so far without waiting for `linger`, and waits until each
    /// was acknowledged or failed. Individual failures are reported through their deliveries.
    pub async fn flush(&self) -> Result<()> {
        let target = {
            let mut acc = self.shared.lock();
            acc.flush_before = acc.next_batch_id;
            acc.next_batch_id
        };
        self.shared.wakeup.notify_one();
        loop {
            let completed = self.shared.completed.notified();
            tokio::pin!(completed);
            completed.as_mut().enable();
            if self
                .shared
                .lock()
                .outstanding
                .range(..target)
                .next()
                .is_none()
            {
                return Ok(());
            }
            completed.await;
        }
    }

    /// Flushes, then stops the producer.
    pub async fn close(mut self) -> Result<()> {
        self.flush().await?;
        self.shared.lock().closing = true;
        self.shared.wakeup.notify_one();
        if let Some(sender) = self.sender.take() {
            sender
                .await
                .map_err(|_| Error::Closed("producer sender task"))?;
        }
        Ok(())
    }

    async fn partition_count(&self, topic: &str) -> Result<i32> {
        // Fast path without allocating: the cached snapshot knows the topic.
        if let Some(t) = self.shared.client.metadata().topic(topic)
            && t.error_code == 0
            && !t.partitions.is_empty()
        {
            return Ok(t.partition_count());
        }
        let client = &self.shared.client;
        let max_block = self.shared.config.max_block;
        let wait = client.retry_if(
            |e| e.is_retriable(),
            |_| async {
                let t = client
                    .topic_metadata(topic, client.config().allow_auto_topic_creation)
                    .await?;
                if t.partitions.is_empty() {
                    return Err(Error::kafka(
                        ResponseError::LeaderNotAvailable.code(),
                        Some(format!("topic '{topic}' has no partitions yet")),
                    ));
                }
                Ok(t.partition_count())
            },
        );
        tokio::time::timeout(max_block, wait)
            .await
            .map_err(|_| Error::Timeout {
                what: format!("metadata for topic '{topic}'"),
                timeout: max_block,
            })?
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Seals the partition's open batch: fixes its sequence numbers and queues it for sending.
/// An empty batch (only possible if appending its first record failed) is dropped instead.
fn seal(
    queue: &mut PartitionQueue,
    identity: Option<ProducerIdentity>,
    outstanding: &mut BTreeSet<u64>,
) {
    let Some(open) = queue.open.take() else {
        return;
    };
    if open.builder.is_empty() {
        outstanding.remove(&open.id);
        return;
    }
    let record_count = open.builder.record_count();
    let base_sequence = if identity.is_some() {
        let base = queue.next_sequence;
        // Kafka sequence numbers wrap to 0 after i32::MAX.
        queue.next_sequence = if i32::MAX - base < record_count {
            record_count - (i32::MAX - base) - 1
        } else {
            base + record_count
        };
        base
    } else {
        -1
    };
    queue.ready.push_back(SealedBatch {
        id: open.id,
        payload: Payload::Pending(open.builder),
        record_count,
        base_sequence,
        created: open.created,
        completion: open.completion,
        reserved_bytes: open.reserved_bytes,
        attempts: 0,
        last_error: None,
    });
}

async fn init_producer_id(client: &Client) -> Result<ProducerIdentity> {
    client
        .retry_if(
            |e| e.is_retriable(),
            |_| async {
                let connection = client.any_connection().await?;
                let version = connection.negotiated_version::<InitProducerIdRequest>()?;
                let mut request = InitProducerIdRequest::default();
                request.transactional_id = None;
                // The Java client sends the largest timeout for a non-transactional producer.
                request.transaction_timeout_ms = i32::MAX;
                let response = connection
                    .send_with_timeout(request, version, client.config().request_timeout)
                    .await?;
                Error::check(response.error_code, None)?;
                Ok(ProducerIdentity {
                    id: response.producer_id.0,
                    epoch: response.producer_epoch,
                })
            },
        )
        .await
}

/// A batch taken out of the accumulator to be sent.
struct Drained {
    topic: Arc<str>,
    partition: i32,
    batch: SealedBatch,
}

struct DrainPlan {
    by_leader: HashMap<i32, Vec<Vec<Drained>>>,
    expired: Vec<SealedBatch>,
    next_wakeup: Option<Instant>,
    need_metadata: bool,
    finished: bool,
}

fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// Decides, under the lock, what to send now and when to look again.
fn drain(acc: &mut Accumulator, shared: &Shared, now: Instant) -> DrainPlan {
    let config = &shared.config;
    let metadata = shared.client.metadata();
    let mut plan = DrainPlan {
        by_leader: HashMap::new(),
        expired: Vec::new(),
        next_wakeup: None,
        need_metadata: false,
        finished: false,
    };
    let closing = acc.closing;
    let flush_before = acc.flush_before;
    let mut any_pending = false;
    let Accumulator {
        topics,
        outstanding,
        ..
    } = acc;
    for (topic, partitions) in topics.iter_mut() {
        for (partition, queue) in partitions.iter_mut() {
            if let Some(open) = &queue.open {
                let linger_done = open.created + config.linger;
                if closing || open.id < flush_before || now >= linger_done {
                    seal(queue, shared.identity, outstanding);
                } else {
                    plan.next_wakeup = earliest(plan.next_wakeup, linger_done);
                }
            }
            // Batches that waited past their delivery timeout fail here; in-flight ones are
            // bounded by the request timeout instead.
            while let Some(front) = queue.ready.front() {
                if now < front.created + config.delivery_timeout {
                    break;
                }
                if let Some(expired) = queue.ready.pop_front() {
                    plan.expired.push(expired);
                }
            }
            if let Some(front) = queue.ready.front() {
                plan.next_wakeup =
                    earliest(plan.next_wakeup, front.created + config.delivery_timeout);
            }
            if queue.retrying && queue.in_flight == 0 {
                queue.retrying = false;
            }
            let blocked = queue.blocked_until.is_some_and(|until| now < until);
            if blocked && let Some(until) = queue.blocked_until {
                plan.next_wakeup = earliest(plan.next_wakeup, until);
            }
            if !queue.ready.is_empty() && !blocked && !queue.retrying {
                match metadata.leader(topic, *partition) {
                    None => {
                        plan.need_metadata = true;
                        plan.next_wakeup =
                            earliest(plan.next_wakeup, now + shared.client.config().retry_backoff);
                    }
                    Some(leader) => {
                        let rounds = plan.by_leader.entry(leader).or_default();
                        let mut round = 0;
                        while queue.in_flight < config.max_in_flight_per_partition {
                            let Some(batch) = queue.ready.pop_front() else {
                                break;
                            };
                            queue.in_flight += 1;
                            if rounds.len() <= round {
                                rounds.push(Vec::new());
                            }
                            rounds[round].push(Drained {
                                topic: Arc::clone(topic),
                                partition: *partition,
                                batch,
                            });
                            round += 1;
                        }
                    }
                }
            }
            if queue.open.is_some() || !queue.ready.is_empty() || queue.in_flight > 0 {
                any_pending = true;
            }
        }
    }
    plan.finished = closing && !any_pending;
    plan
}

/// Refreshes metadata in the background, at most one refresh at a time, and wakes the sender
/// when done.
fn spawn_metadata_refresh(shared: &Arc<Shared>) {
    if shared.refreshing_metadata.swap(true, Ordering::AcqRel) {
        return;
    }
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        if let Err(e) = shared.client.refresh_metadata(None).await {
            tracing::debug!(error = %e, "producer metadata refresh failed");
        }
        shared.refreshing_metadata.store(false, Ordering::Release);
        shared.wakeup.notify_one();
    });
}

async fn run_sender(shared: Arc<Shared>) {
    loop {
        // Register for wakeups before looking, so a notify between the drain and the wait is
        // not lost.
        let wakeup = shared.wakeup.notified();
        tokio::pin!(wakeup);
        wakeup.as_mut().enable();

        let plan = {
            let mut acc = shared.lock();
            drain(&mut acc, &shared, Instant::now())
        };
        for mut batch in plan.expired {
            let what = match batch.last_error.take() {
                Some(e) => format!("the batch to be delivered (last error: {e})"),
                None => "the batch to be delivered".to_owned(),
            };
            let timeout = shared.config.delivery_timeout;
            complete(&shared, batch, Err(Error::Timeout { what, timeout }));
        }
        if plan.need_metadata {
            spawn_metadata_refresh(&shared);
        }
        for (leader, rounds) in plan.by_leader {
            for round in rounds {
                for request in split_by_size(round, shared.config.max_request_bytes) {
                    tokio::spawn(send_produce(Arc::clone(&shared), leader, request));
                }
            }
        }
        if plan.finished {
            return;
        }
        match plan.next_wakeup {
            Some(at) => {
                tokio::select! {
                    _ = &mut wakeup => {}
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            None => wakeup.await,
        }
    }
}

/// Encodes pending batches and splits a round into requests no larger than `max_bytes`.
fn split_by_size(round: Vec<Drained>, max_bytes: usize) -> Vec<Vec<Drained>> {
    let mut requests: Vec<Vec<Drained>> = Vec::new();
    let mut current_bytes = 0;
    for drained in round {
        let size = match &drained.batch.payload {
            Payload::Pending(builder) => builder.size_in_bytes(),
            Payload::Encoded(bytes) => bytes.len(),
        };
        if requests.is_empty() || current_bytes + size > max_bytes {
            requests.push(Vec::new());
            current_bytes = 0;
        }
        current_bytes += size;
        if let Some(last) = requests.last_mut() {
            last.push(drained);
        }
    }
    requests
}

/// Finishes a batch's bytes on first send; later sends reuse them unchanged.
fn encode(batch: &mut SealedBatch, identity: Option<ProducerIdentity>) -> Result<Bytes> {
    let payload = std::mem::replace(&mut batch.payload, Payload::Encoded(Bytes::new()));
    let bytes = match payload {
        Payload::Encoded(bytes) => bytes,
        Payload::Pending(builder) => builder.finish(&BatchHeader {
            producer_id: identity.map_or(-1, |i| i.id),
            producer_epoch: identity.map_or(-1, |i| i.epoch),
            base_sequence: batch.base_sequence,
            ..BatchHeader::default()
        })?,
    };
    batch.payload = Payload::Encoded(bytes.clone());
    Ok(bytes)
}

async fn send_produce(shared: Arc<Shared>, leader: i32, mut batches: Vec<Drained>) {
    let mut encoded: Vec<(usize, Bytes)> = Vec::with_capacity(batches.len());
    let mut failed: Vec<usize> = Vec::new();
    let mut encode_error = None;
    for (i, drained) in batches.iter_mut().enumerate() {
        match encode(&mut drained.batch, shared.identity) {
            Ok(bytes) => encoded.push((i, bytes)),
            Err(e) => {
                failed.push(i);
                encode_error = Some(e);
            }
        }
    }
    let outcome = produce_request(&shared, leader, &batches, &encoded).await;
    let mut results: Vec<Option<Result<BatchOutcome>>> = batches.iter().map(|_| None).collect();
    for i in failed {
        results[i] = encode_error.clone().map(Err);
    }
    match outcome {
        Ok(per_batch) => {
            for ((i, _), result) in encoded.iter().zip(per_batch) {
                results[*i] = Some(result);
            }
        }
        Err(e) => {
            for (i, _) in &encoded {
                results[*i] = Some(Err(e.clone()));
            }
        }
    }
    let now = Instant::now();
    for (drained, result) in batches.into_iter().zip(results) {
        let result = result.unwrap_or(Err(Error::Closed("producer")));
        handle_result(&shared, drained, result, now);
    }
    shared.wakeup.notify_one();
}

/// Sends one Produce request with the encoded batches; returns one result per batch.
async fn produce_request(
    shared: &Shared,
    leader: i32,
    batches: &[Drained],
    encoded: &[(usize, Bytes)],
) -> Result<Vec<Result<BatchOutcome>>> {
    if encoded.is_empty() {
        return Ok(Vec::new());
    }
    let connection = shared.client.broker_connection(leader).await?;
    let mut version = connection.negotiated_version::<ProduceRequest>()?;
    let metadata = shared.client.metadata();
    // Produce v13 names topics by id; fall back to v12 when an id is unknown.
    let topic_id = |topic: &str| metadata.topic(topic).and_then(|t| t.topic_id);
    if version >= 13
        && encoded
            .iter()
            .any(|(i, _)| topic_id(&batches[*i].topic).is_none())
    {
        version = 12;
    }
    let mut request = ProduceRequest::default();
    request.acks = shared.config.acks.value();
    request.timeout_ms =
        i32::try_from(shared.client.config().request_timeout.as_millis()).unwrap_or(i32::MAX);
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (i, bytes) in encoded {
        let drained = &batches[*i];
        let mut partition = PartitionProduceData::default();
        partition.index = drained.partition;
        partition.records = Some(bytes.clone());
        let position = topics.iter().position(|t| {
            if version >= 13 {
                Some(t.topic_id) == topic_id(&drained.topic)
            } else {
                t.name.0.as_str() == &*drained.topic
            }
        });
        match position {
            Some(p) => topics[p].partition_data.push(partition),
            None => {
                let mut topic = TopicProduceData::default();
                if version >= 13 {
                    topic.topic_id = topic_id(&drained.topic).unwrap_or_default();
                } else {
                    topic.name = TopicName(StrBytes::from_string(drained.topic.to_string()));
                }
                topic.partition_data.push(partition);
                topics.push(topic);
            }
        }
    }
    request.topic_data = topics;

    if shared.config.acks == Acks::None {
        connection.send_without_response(request, version).await?;
        return Ok(encoded
            .iter()
            .map(|_| {
                Ok(BatchOutcome {
                    base_offset: -1,
                    log_append_time: None,
                })
            })
            .collect());
    }
    // The broker may hold the request for its own timeout_ms (acks=all) before answering.
    let wait = shared.client.config().request_timeout * 2;
    let response = connection.send_with_timeout(request, version, wait).await?;
    let mut found: HashMap<(String, i32), Result<BatchOutcome>> = HashMap::new();
    for topic in response.responses {
        let name = if version >= 13 {
            metadata
                .topic_by_id(topic.topic_id)
                .map(|t| t.name.clone())
                .unwrap_or_default()
        } else {
            topic.name.0.to_string()
        };
        for p in topic.partition_responses {
            let result = if p.error_code == ResponseError::DuplicateSequenceNumber.code() {
                // The broker already has this batch (a retry of one that did arrive): success.
                Ok(BatchOutcome {
                    base_offset: p.base_offset,
                    log_append_time: None,
                })
            } else {
                Error::check(p.error_code, p.error_message.as_deref()).map(|()| BatchOutcome {
                    base_offset: p.base_offset,
                    log_append_time: (p.log_append_time_ms >= 0).then_some(p.log_append_time_ms),
                })
            };
            found.insert((name.clone(), p.index), result);
        }
    }
    Ok(encoded
        .iter()
        .map(|(i, _)| {
            let drained = &batches[*i];
            found
                .remove(&(drained.topic.to_string(), drained.partition))
                .unwrap_or_else(|| {
                    Err(Error::Protocol {
                        addr: connection.addr().to_owned(),
                        reason: format!(
                            "Produce response has no result for {}-{}",
                            drained.topic, drained.partition
                        ),
                    })
                })
        })
        .collect())
}

/// Errors after which a batch is sent again (if it has time left).
fn is_produce_retriable(error: &Error) -> bool {
    match error {
        Error::Kafka { code, .. } => matches!(
            ResponseError::try_from_code(*code),
            Some(
                ResponseError::NotLeaderOrFollower
                    | ResponseError::UnknownTopicOrPartition
                    | ResponseError::LeaderNotAvailable
                    | ResponseError::NotEnoughReplicas
                    | ResponseError::NotEnoughReplicasAfterAppend
                    | ResponseError::RequestTimedOut
                    | ResponseError::KafkaStorageError
                    | ResponseError::CorruptMessage
                    | ResponseError::NetworkException
                    | ResponseError::FencedLeaderEpoch
                    | ResponseError::UnknownLeaderEpoch
                    | ResponseError::ThrottlingQuotaExceeded
                    | ResponseError::ReplicaNotAvailable
            )
        ),
        Error::Connect { .. }
        | Error::ConnectionClosed { .. }
        | Error::RequestTimedOut { .. }
        | Error::NoBrokerAvailable(_) => true,
        _ => false,
    }
}

fn handle_result(
    shared: &Arc<Shared>,
    drained: Drained,
    result: Result<BatchOutcome>,
    now: Instant,
) {
    let Drained {
        topic,
        partition,
        mut batch,
    } = drained;
    let mut acc = shared.lock();
    let Some(queue) = acc
        .topics
        .get_mut(&topic)
        .and_then(|partitions| partitions.get_mut(&partition))
    else {
        drop(acc);
        complete(shared, batch, result);
        return;
    };
    queue.in_flight = queue.in_flight.saturating_sub(1);
    let out_of_order_behind_retry = match &result {
        Err(e) if e.is(ResponseError::OutOfOrderSequenceNumber) => {
            queue.retrying || queue.ready.front().is_some_and(|b| b.id < batch.id)
        }
        _ => false,
    };
    let has_time = now < batch.created + shared.config.delivery_timeout;
    match result {
        Err(e) if has_time && (is_produce_retriable(&e) || out_of_order_behind_retry) => {
            tracing::debug!(%topic, partition, error = %e, attempt = batch.attempts, "retrying batch");
            if e.invalidates_metadata() {
                shared.client.invalidate_metadata();
            }
            let backoff = shared.client.config().backoff(batch.attempts);
            batch.attempts += 1;
            let invalidates_metadata = e.invalidates_metadata();
            batch.last_error = Some(e);
            queue.retrying = true;
            queue.blocked_until = Some(now + backoff);
            let position = queue
                .ready
                .iter()
                .position(|b| b.id > batch.id)
                .unwrap_or(queue.ready.len());
            queue.ready.insert(position, batch);
            if invalidates_metadata {
                // The sender refreshes when it finds no leader; with a stale leader it would
                // resend to the same broker, so refresh now.
                drop(acc);
                spawn_metadata_refresh(shared);
            }
        }
        other => {
            drop(acc);
            complete(shared, batch, other);
        }
    }
}

/// Completes a batch: wakes its deliveries, returns its buffer room, wakes flushers.
fn complete(shared: &Shared, batch: SealedBatch, result: Result<BatchOutcome>) {
    if let Err(e) = &result {
        tracing::debug!(error = %e, records = batch.record_count, "batch failed");
    }
    batch.completion.send_replace(Some(result));
    shared.buffer.add_permits(batch.reserved_bytes);
    shared.lock().outstanding.remove(&batch.id);
    shared.completed.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::FetchOptions;
    use crate::metadata::TopicPartition;
    use crate::records::Header;
    use crate::testing::{FakeCluster, test_client};
    use kafka_protocol::messages::ApiKey;

    fn config() -> ProducerConfig {
        ProducerConfig {
            linger: Duration::from_millis(1),
            ..ProducerConfig::default()
        }
    }

    async fn fetch_all(client: &Client, topic: &str, partition: i32) -> Vec<crate::ConsumerRecord> {
        let positions = [(TopicPartition::new(topic, partition), 0)];
        let options = FetchOptions {
            max_wait: Duration::ZERO,
            ..FetchOptions::default()
        };
        let mut fetched = client.fetch(&positions, &options).await.unwrap();
        fetched.remove(0).1.unwrap().records
    }

    #[tokio::test]
    async fn produced_records_come_back_from_fetch_with_every_compression() {
        for compression in Compression::ALL {
            let cluster = FakeCluster::start().await;
            cluster.with_state(|s| s.create_topic("t", 1));
            let client = test_client(&cluster).await;
            let producer = client
                .producer(ProducerConfig {
                    compression,
                    ..config()
                })
                .await
                .unwrap();
            let records = [
                ProducerRecord::new("t", "v0")
                    .with_key("k0")
                    .with_header("h", Some("1"))
                    .with_header("h", Some("2"))
                    .with_header("null", None::<Bytes>)
                    .with_timestamp(1_000),
                ProducerRecord {
                    topic: "t".into(),
                    partition: Some(0),
                    key: None,
                    value: None,
                    headers: Vec::new(),
                    timestamp: Some(1_001),
                },
                ProducerRecord::new("t", vec![9u8; 10_000]).with_timestamp(1_002),
            ];
            let mut deliveries = Vec::new();
            for record in records.clone() {
                deliveries.push(producer.send(record).await.unwrap());
            }
            let mut offsets = Vec::new();
            for delivery in deliveries {
                let written = delivery.wait().await.unwrap();
                assert_eq!(written.partition, 0);
                offsets.push(written.offset);
            }
            assert_eq!(offsets, vec![0, 1, 2], "{compression}");
            producer.close().await.unwrap();

            let fetched = fetch_all(&client, "t", 0).await;
            assert_eq!(fetched.len(), 3, "{compression}");
            for (got, sent) in fetched.iter().zip(&records) {
                assert_eq!(got.key, sent.key, "{compression}");
                assert_eq!(got.value, sent.value, "{compression}");
                assert_eq!(got.headers, sent.headers, "{compression}");
                assert_eq!(Some(got.timestamp), sent.timestamp);
            }
            assert_eq!(
                fetched[0].headers,
                vec![
                    Header::new("h", Some("1")),
                    Header::new("h", Some("2")),
                    Header::new("null", None::<Bytes>)
                ]
            );
        }
    }

    #[tokio::test]
    async fn records_sent_within_linger_share_one_batch_and_request() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        let producer = client
            .producer(ProducerConfig {
                linger: Duration::from_secs(30),
                ..config()
            })
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        for i in 0..10 {
            let record = ProducerRecord::new("t", format!("v{i}"));
            deliveries.push(producer.send(record).await.unwrap());
        }
        // Nothing is sent before the linger expires or a flush.
        producer.flush().await.unwrap();
        for (i, delivery) in deliveries.into_iter().enumerate() {
            assert_eq!(delivery.wait().await.unwrap().offset, i as i64);
        }
        let (requests, batches) = cluster.with_state(|s| (s.produce_requests, s.produced.clone()));
        assert_eq!(requests, 1);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].5, 10, "all ten records in one batch");
    }

    #[tokio::test]
    async fn a_delivery_becomes_ready_when_its_batch_is_acknowledged() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        let producer = client
            .producer(ProducerConfig {
                linger: Duration::from_secs(3600),
                ..config()
            })
            .await
            .unwrap();
        let mut delivery = producer.send(ProducerRecord::new("t", "v")).await.unwrap();
        assert!(!delivery.is_ready(), "held back by the linger");
        // `ready` is cancel-safe: giving up on it leaves the delivery usable.
        let waited = tokio::time::timeout(Duration::from_millis(20), delivery.ready()).await;
        assert!(waited.is_err());
        producer.flush().await.unwrap();
        delivery.ready().await;
        assert!(delivery.is_ready());
        assert_eq!(delivery.wait().await.unwrap().offset, 0);
    }

    #[tokio::test]
    async fn full_batches_are_sent_without_waiting_for_linger() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        let producer = client
            .producer(ProducerConfig {
                linger: Duration::from_secs(3600),
                batch_size: 1024,
                ..config()
            })
            .await
            .unwrap();
        let mut deliveries = Vec::new();
        for _ in 0..4 {
            deliveries.push(
                producer
                    .send(ProducerRecord::new("t", vec![1u8; 600]))
                    .await
                    .unwrap(),
            );
        }
        // The first three records filled two batches that go out at once; only the last one
        // would wait for the (hour-long) linger, so wait for the first three only.
        for delivery in deliveries.drain(..3) {
            delivery.wait().await.unwrap();
        }
        let batches = cluster.with_state(|s| s.produced.len());
        assert_eq!(batches, 3, "one record of 600 bytes per 1 KiB batch");
        producer.close().await.unwrap();
        assert_eq!(deliveries.remove(0).wait().await.unwrap().offset, 3);
    }

    #[tokio::test]
    async fn keyed_records_go_to_the_java_clients_partition() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 10));
        let client = test_client(&cluster).await;
        let producer = client.producer(config()).await.unwrap();
        for key in ["foobar", "21", "abc", "a-little-bit-long-string"] {
            let written = producer
                .send_and_wait(ProducerRecord::new("t", "v").with_key(key))
                .await
                .unwrap();
            assert_eq!(
                written.partition,
                crate::partitioner::partition_for_key(key.as_bytes(), 10),
                "{key}"
            );
        }
        assert_eq!(
            crate::partitioner::partition_for_key(b"foobar", 10),
            6,
            "1357151166 % 10"
        );
    }

    #[tokio::test]
    async fn keyless_records_stick_to_a_partition_until_a_batch_is_full() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 4));
        let client = test_client(&cluster).await;
        let producer = client
            .producer(ProducerConfig {
                batch_size: 1000,
                ..config()
            })
            .await
            .unwrap();
        let mut partitions = Vec::new();
        for _ in 0..8 {
            let delivery = producer
                .send(ProducerRecord::new("t", vec![0u8; 300]))
                .await
                .unwrap();
            partitions.push(delivery.partition());
        }
        producer.close().await.unwrap();
        // About 1000 bytes per partition: a few records each, then the next partition.
        assert_eq!(partitions[0], partitions[1]);
        assert_ne!(partitions[0], partitions[7]);
        let distinct: std::collections::BTreeSet<_> = partitions.iter().collect();
        assert!(distinct.len() >= 2, "{partitions:?}");
    }

    #[tokio::test]
    async fn idempotent_producer_numbers_each_partitions_records_from_zero() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 2));
        let client = test_client(&cluster).await;
        let producer = client
            .producer(ProducerConfig {
                enable_idempotence: true,
                ..config()
            })
            .await
            .unwrap();
        assert_eq!(producer.producer_id(), Some((1000, 0)));
        for batch in [3, 2] {
            for _ in 0..batch {
                producer
                    .send(ProducerRecord::new("t", "v").with_partition(1))
                    .await
                    .unwrap();
            }
            producer.flush().await.unwrap();
        }
        producer
            .send(ProducerRecord::new("t", "v").with_partition(0))
            .await
            .unwrap();
        producer.close().await.unwrap();
        let produced = cluster.with_state(|s| s.produced.clone());
        let on = |p: i32| -> Vec<(i64, i16, i32, i32)> {
            produced
                .iter()
                .filter(|b| b.1 == p)
                .map(|b| (b.2, b.3, b.4, b.5))
                .collect()
        };
        assert_eq!(on(1), vec![(1000, 0, 0, 3), (1000, 0, 3, 2)]);
        assert_eq!(on(0), vec![(1000, 0, 0, 1)]);
    }

    #[tokio::test]
    async fn idempotence_requires_acks_all() {
        let cluster = FakeCluster::start().await;
        let client = test_client(&cluster).await;
        let err = client
            .producer(ProducerConfig {
                enable_idempotence: true,
                acks: Acks::Leader,
                ..config()
            })
            .await
            .err()
            .expect("invalid config");
        assert!(matches!(err, Error::Config(_)), "{err}");
    }

    #[tokio::test]
    async fn not_leader_errors_are_retried_with_the_same_batch() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| {
            s.create_topic("t", 1);
            s.produce_errors.extend([6, 6]);
        });
        let client = test_client(&cluster).await;
        let producer = client
            .producer(ProducerConfig {
                enable_idempotence: true,
                ..config()
            })
            .await
            .unwrap();
        let written = producer
            .send_and_wait(ProducerRecord::new("t", "v"))
            .await
            .unwrap();
        assert_eq!(written.offset, 0);
        let (requests, produced) = cluster.with_state(|s| (s.produce_requests, s.produced.clone()));
        assert_eq!(requests, 3, "two refusals, then success");
        assert_eq!(produced.len(), 1);
        assert_eq!(produced[0].4, 0, "the retry reuses sequence 0");
    }

    #[tokio::test]
    async fn a_non_retriable_error_fails_the_delivery_with_kafkas_name() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| {
            s.create_topic("t", 1);
            s.produce_errors.push_back(87);
        });
        let client = test_client(&cluster).await;
        let producer = client.producer(config()).await.unwrap();
        let err = producer
            .send_and_wait(ProducerRecord::new("t", "v"))
            .await
            .unwrap_err();
        assert!(err.is(ResponseError::InvalidRecord), "{err}");
        assert!(err.to_string().starts_with("INVALID_RECORD"), "{err}");
        // The producer keeps working.
        let written = producer
            .send_and_wait(ProducerRecord::new("t", "v"))
            .await
            .unwrap();
        assert_eq!(written.offset, 0);
    }

    #[tokio::test]
    async fn retries_stop_at_the_delivery_timeout() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| {
            s.create_topic("t", 1);
            s.produce_errors.extend(std::iter::repeat_n(19, 1000));
        });
        let client = test_client(&cluster).await;
        let producer = client
            .producer(ProducerConfig {
                delivery_timeout: Duration::from_millis(300),
                ..config()
            })
            .await
            .unwrap();
        let err = producer
            .send_and_wait(ProducerRecord::new("t", "v"))
            .await
            .unwrap_err();
        // Either the last attempt came back after the deadline (the broker's error) or the
        // batch expired while waiting to retry (a timeout naming the last error).
        match &err {
            Error::Timeout { what, .. } => assert!(what.contains("NOT_ENOUGH_REPLICAS"), "{err}"),
            other => assert!(other.is(ResponseError::NotEnoughReplicas), "{err}"),
        }
        assert!(
            cluster.with_state(|s| s.produce_requests) >= 2,
            "it was retried"
        );
    }

    #[tokio::test]
    async fn acks_none_sends_without_waiting_and_reports_no_offset() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        let producer = client
            .producer(ProducerConfig {
                acks: Acks::None,
                ..config()
            })
            .await
            .unwrap();
        let written = producer
            .send_and_wait(ProducerRecord::new("t", "v"))
            .await
            .unwrap();
        assert_eq!(written.offset, -1);
        producer.close().await.unwrap();
        // The record did arrive.
        assert_eq!(fetch_all(&client, "t", 0).await.len(), 1);
    }

    #[tokio::test]
    async fn produce_and_fetch_work_with_topic_names_before_topic_ids() {
        let mut versions = crate::testing::all_versions();
        for (key, _, max) in &mut versions {
            match key {
                ApiKey::Produce | ApiKey::Fetch => *max = 12,
                ApiKey::Metadata => *max = 9,
                _ => {}
            }
        }
        let cluster = FakeCluster::start_with_versions(versions).await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        assert!(client.metadata().topic("t").is_none());
        let producer = client.producer(config()).await.unwrap();
        producer
            .send_and_wait(ProducerRecord::new("t", "old"))
            .await
            .unwrap();
        let fetched = fetch_all(&client, "t", 0).await;
        assert_eq!(fetched[0].value.as_deref(), Some(&b"old"[..]));
    }

    #[tokio::test]
    async fn oversized_records_and_bad_partitions_are_rejected_before_sending() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 2));
        let client = test_client(&cluster).await;
        let producer = client
            .producer(ProducerConfig {
                max_request_bytes: 4096,
                buffer_memory: 8192,
                ..config()
            })
            .await
            .unwrap();
        let err = producer
            .send(ProducerRecord::new("t", vec![0u8; 5000]))
            .await
            .unwrap_err();
        assert!(err.is(ResponseError::MessageTooLarge), "{err}");
        let err = producer
            .send(ProducerRecord::new("t", "v").with_partition(2))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
        assert_eq!(cluster.with_state(|s| s.produce_requests), 0);
    }

    #[tokio::test]
    async fn unknown_topics_fail_after_max_block_without_auto_creation() {
        let cluster = FakeCluster::start().await;
        let client = test_client(&cluster).await;
        let producer = client
            .producer(ProducerConfig {
                max_block: Duration::from_millis(200),
                ..config()
            })
            .await
            .unwrap();
        let err = producer
            .send(ProducerRecord::new("missing", "v"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
    }

    #[tokio::test]
    async fn topics_are_auto_created_when_the_broker_allows_it() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.auto_create = true);
        let client = test_client(&cluster).await;
        let producer = client.producer(config()).await.unwrap();
        let written = producer
            .send_and_wait(ProducerRecord::new("fresh", "v"))
            .await
            .unwrap();
        assert_eq!((written.partition, written.offset), (0, 0));
    }
}
