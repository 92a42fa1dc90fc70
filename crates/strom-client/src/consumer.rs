//! Reading records: [`Client::fetch`] for one round of Fetch requests to partition leaders, and
//! [`PartitionConsumer`], which follows one partition from an offset.
//!
//! A fetch is sessionless (session id 0, epoch -1: every request names every partition) and
//! routed by leader; each leader gets one request, all sent concurrently. Fetched bytes are
//! decoded into [`ConsumerRecord`]s that point into the response buffer. Records below the
//! requested offset (a batch can start earlier), control batches, and, with read_committed,
//! aborted transactions are dropped; a partial batch at the end of a response is ignored and
//! fetched again next time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::admin::OffsetSpec;
use crate::client::{Client, Lane, PrivateConnections, Route, is_partition_retriable};
use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::metadata::{TopicPartition, ensure_unique};
use crate::records::{AbortedTransaction, ConsumerRecord, decode_fetched_records};

/// Which records a fetch may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Everything up to the high watermark, including open and aborted transactions.
    #[default]
    ReadUncommitted,
    /// Only up to the last stable offset, without aborted transactions.
    ReadCommitted,
}

/// Fetch limits, named after the Java consumer's properties.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// `fetch.max.wait.ms`: how long the broker may wait for `min_bytes`.
    pub max_wait: Duration,
    /// `fetch.min.bytes`.
    pub min_bytes: i32,
    /// `fetch.max.bytes`: limit for the whole response (at least one batch is returned anyway).
    pub max_bytes: i32,
    /// `max.partition.fetch.bytes`: limit per partition.
    pub partition_max_bytes: i32,
    /// `isolation.level`.
    pub isolation_level: IsolationLevel,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            max_wait: Duration::from_millis(500),
            min_bytes: 1,
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            isolation_level: IsolationLevel::ReadUncommitted,
        }
    }
}

/// What one partition returned from a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecords {
    /// The records, in offset order, none below the requested offset.
    pub records: Vec<ConsumerRecord>,
    /// The offset to fetch next.
    pub next_offset: i64,
    /// The partition's high watermark.
    pub high_watermark: i64,
    /// The last stable offset, if reported.
    pub last_stable_offset: Option<i64>,
    /// The log start offset, if reported.
    pub log_start_offset: Option<i64>,
}

impl Client {
    /// Fetches records from each partition at its offset, one round: one request per leader,
    /// sent concurrently. One result per partition, in order. `OFFSET_OUT_OF_RANGE` comes back
    /// as [`Error::OffsetOutOfRange`]; errors meaning the leader moved also mark the metadata
    /// stale, so the next fetch goes to the new leader.
    pub async fn fetch(
        &self,
        positions: &[(TopicPartition, i64)],
        options: &FetchOptions,
    ) -> Result<Vec<(TopicPartition, Result<PartitionRecords>)>> {
        self.fetch_via(Route::Shared(Lane::Fetch), positions, options)
            .await
    }

    pub(crate) async fn fetch_via(
        &self,
        route: Route<'_>,
        positions: &[(TopicPartition, i64)],
        options: &FetchOptions,
    ) -> Result<Vec<(TopicPartition, Result<PartitionRecords>)>> {
        ensure_unique(positions.iter().map(|(tp, _)| tp))?;
        let results = self
            .by_leader(positions, route, 1, |_, connection, group| {
                self.fetch_from(connection, group, options)
            })
            .await;
        if results
            .iter()
            .any(|r| r.as_ref().is_err_and(Error::invalidates_metadata))
        {
            self.invalidate_metadata();
        }
        Ok(positions
            .iter()
            .map(|(tp, _)| tp.clone())
            .zip(results)
            .collect())
    }

    async fn fetch_from(
        &self,
        connection: Connection,
        group: Vec<(TopicPartition, i64)>,
        options: &FetchOptions,
    ) -> Result<Vec<Result<PartitionRecords>>> {
        let metadata = self.metadata();
        let mut version = connection.negotiated_version::<FetchRequest>()?;
        // Fetch v13+ names topics by id; fall back to v12 when an id is unknown.
        let topic_id = |topic: &str| metadata.topic(topic).and_then(|t| t.topic_id);
        if version >= 13 && group.iter().any(|(tp, _)| topic_id(&tp.topic).is_none()) {
            version = 12;
        }
        let mut request = FetchRequest::default();
        request.max_wait_ms = i32::try_from(options.max_wait.as_millis()).unwrap_or(i32::MAX);
        request.min_bytes = options.min_bytes;
        request.max_bytes = options.max_bytes;
        request.isolation_level = match options.isolation_level {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        };
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (tp, offset) in &group {
            let mut partition = FetchPartition::default();
            partition.partition = tp.partition;
            partition.fetch_offset = *offset;
            partition.partition_max_bytes = options.partition_max_bytes;
            let position = topics.iter().position(|t| {
                if version >= 13 {
                    Some(t.topic_id) == topic_id(&tp.topic)
                } else {
                    t.topic.0.as_str() == tp.topic
                }
            });
            match position {
                Some(p) => topics[p].partitions.push(partition),
                None => {
                    let mut topic = FetchTopic::default();
                    if version >= 13 {
                        topic.topic_id = topic_id(&tp.topic).unwrap_or_default();
                    } else {
                        topic.topic = TopicName(StrBytes::from_string(tp.topic.clone()));
                    }
                    topic.partitions.push(partition);
                    topics.push(topic);
                }
            }
        }
        request.topics = topics;
        let timeout = self.config().request_timeout + options.max_wait;
        let response = connection
            .send_with_timeout(request, version, timeout)
            .await?;
        Error::check(response.error_code, None)?;

        let mut by_partition: HashMap<(String, i32), _> = HashMap::new();
        for topic in response.responses {
            let name = if version >= 13 {
                match metadata.topic_by_id(topic.topic_id) {
                    Some(t) => t.name.clone(),
                    None => continue,
                }
            } else {
                topic.topic.0.to_string()
            };
            for partition in topic.partitions {
                by_partition.insert((name.clone(), partition.partition_index), partition);
            }
        }
        let mut topic_names: HashMap<&str, Arc<str>> = HashMap::new();
        Ok(group
            .iter()
            .map(|(tp, offset)| {
                let partition = by_partition
                    .remove(&(tp.topic.clone(), tp.partition))
                    .ok_or_else(|| Error::Protocol {
                        addr: connection.addr().to_owned(),
                        reason: format!("Fetch response has no result for {tp}"),
                    })?;
                if partition.error_code == ResponseError::OffsetOutOfRange.code() {
                    return Err(Error::OffsetOutOfRange {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        offset: *offset,
                    });
                }
                Error::check(partition.error_code, None).map_err(|e| e.with_context(tp))?;
                let topic = topic_names
                    .entry(tp.topic.as_str())
                    .or_insert_with(|| Arc::from(tp.topic.as_str()));
                let aborted: Vec<AbortedTransaction> = partition
                    .aborted_transactions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| AbortedTransaction {
                        producer_id: a.producer_id.0,
                        first_offset: a.first_offset,
                    })
                    .collect();
                let mut records = Vec::new();
                let next_offset = match &partition.records {
                    Some(data) => decode_fetched_records(
                        topic,
                        tp.partition,
                        data,
                        *offset,
                        &aborted,
                        &mut records,
                    )?,
                    None => *offset,
                };
                Ok(PartitionRecords {
                    records,
                    next_offset,
                    high_watermark: partition.high_watermark,
                    last_stable_offset: (partition.last_stable_offset >= 0)
                        .then_some(partition.last_stable_offset),
                    log_start_offset: (partition.log_start_offset >= 0)
                        .then_some(partition.log_start_offset),
                })
            })
            .collect())
    }

    /// The offset `spec` names for one partition: e.g. the log start offset for
    /// [`OffsetSpec::Earliest`]. A timestamp after the last record resolves to the latest
    /// offset.
    pub async fn resolve_offset(
        &self,
        topic_partition: &TopicPartition,
        spec: OffsetSpec,
    ) -> Result<i64> {
        let listed = self
            .list_offsets(std::slice::from_ref(topic_partition), spec)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Protocol {
                addr: "ListOffsets".into(),
                reason: "no result".into(),
            })?
            .1?;
        match listed.offset {
            Some(offset) => Ok(offset),
            None => {
                let latest = self
                    .list_offsets(std::slice::from_ref(topic_partition), OffsetSpec::Latest)
                    .await?
                    .into_iter()
                    .next()
                    .map(|(_, r)| r)
                    .transpose()?
                    .and_then(|o| o.offset);
                latest.ok_or_else(|| Error::Protocol {
                    addr: "ListOffsets".into(),
                    reason: format!("no latest offset for {topic_partition}"),
                })
            }
        }
    }

    /// A consumer of one partition starting at `start`.
    pub async fn partition_consumer(
        &self,
        topic: &str,
        partition: i32,
        start: StartOffset,
        options: FetchOptions,
    ) -> Result<PartitionConsumer> {
        let topic_partition = TopicPartition::new(topic, partition);
        let position = match start {
            StartOffset::Offset(offset) => offset,
            StartOffset::Earliest => {
                self.resolve_offset(&topic_partition, OffsetSpec::Earliest)
                    .await?
            }
            StartOffset::Latest => {
                self.resolve_offset(&topic_partition, OffsetSpec::Latest)
                    .await?
            }
            StartOffset::Timestamp(ms) => {
                self.resolve_offset(&topic_partition, OffsetSpec::Timestamp(ms))
                    .await?
            }
        };
        Ok(PartitionConsumer {
            client: self.clone(),
            topic_partition,
            position,
            options,
            high_watermark: None,
            consecutive_failures: 0,
            connections: PrivateConnections::default(),
        })
    }
}

/// Where a [`PartitionConsumer`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The log start offset.
    Earliest,
    /// The high watermark: only records produced from now on.
    Latest,
    /// An exact offset.
    Offset(i64),
    /// The first record at or after this timestamp (ms), or the end if there is none.
    Timestamp(i64),
}

/// Follows one partition from an offset, fetching from its current leader.
#[derive(Debug)]
pub struct PartitionConsumer {
    client: Client,
    topic_partition: TopicPartition,
    position: i64,
    options: FetchOptions,
    high_watermark: Option<i64>,
    consecutive_failures: u32,
    connections: PrivateConnections,
}

impl PartitionConsumer {
    /// The partition being consumed.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }

    /// The offset the next poll fetches from.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Moves the position.
    pub fn seek(&mut self, offset: i64) {
        self.position = offset;
    }

    /// The high watermark seen by the last successful poll.
    pub fn high_watermark(&self) -> Option<i64> {
        self.high_watermark
    }

    /// True when the last poll saw the position reach the high watermark.
    pub fn is_caught_up(&self) -> bool {
        self.high_watermark.is_some_and(|hw| self.position >= hw)
    }

    /// Fetches once (waiting up to `max_wait` for data) and advances the position. May return
    /// no records. A moved leader or lost connection is retried on the next poll, up to the
    /// client's `retries` times in a row; `OFFSET_OUT_OF_RANGE` is returned as
    /// [`Error::OffsetOutOfRange`] for the caller to [`seek`](Self::seek) from.
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        let positions = [(self.topic_partition.clone(), self.position)];
        let result = self
            .client
            .fetch_via(Route::Private(&self.connections), &positions, &self.options)
            .await?
            .into_iter()
            .next()
            .map(|(_, r)| r)
            .unwrap_or_else(|| {
                Err(Error::Protocol {
                    addr: "Fetch".into(),
                    reason: "no result".into(),
                })
            });
        match result {
            Ok(fetched) => {
                self.consecutive_failures = 0;
                self.position = fetched.next_offset;
                self.high_watermark = Some(fetched.high_watermark);
                Ok(fetched.records)
            }
            Err(e)
                if (is_partition_retriable(&e) || e.is_retriable())
                    && self.consecutive_failures < self.client.config().retries =>
            {
                let backoff = self.client.config().backoff(self.consecutive_failures);
                self.consecutive_failures += 1;
                tracing::debug!(partition = %self.topic_partition, error = %e, "fetch failed, will retry");
                self.client.invalidate_metadata();
                tokio::time::sleep(backoff).await;
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::ProducerConfig;
    use crate::records::ProducerRecord;
    use crate::testing::{FakeCluster, test_client};

    async fn produce(client: &Client, topic: &str, values: &[&str], batch_per_record: bool) {
        let producer = client
            .producer(ProducerConfig {
                linger: Duration::from_secs(60),
                ..ProducerConfig::default()
            })
            .await
            .unwrap();
        for (i, value) in values.iter().enumerate() {
            producer
                .send(
                    ProducerRecord::new(topic, value.to_string())
                        .with_partition(0)
                        .with_timestamp(1000 + i as i64 * 10),
                )
                .await
                .unwrap();
            if batch_per_record {
                producer.flush().await.unwrap();
            }
        }
        producer.close().await.unwrap();
    }

    fn values(records: &[ConsumerRecord]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect()
    }

    fn quick() -> FetchOptions {
        FetchOptions {
            max_wait: Duration::from_millis(10),
            ..FetchOptions::default()
        }
    }

    #[tokio::test]
    async fn partition_consumer_starts_at_earliest_latest_offset_or_timestamp() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        produce(&client, "t", &["a", "b", "c", "d"], true).await;

        let mut from_start = client
            .partition_consumer("t", 0, StartOffset::Earliest, quick())
            .await
            .unwrap();
        assert_eq!(
            values(&from_start.poll().await.unwrap()),
            ["a", "b", "c", "d"]
        );
        assert_eq!(from_start.position(), 4);
        assert!(from_start.is_caught_up());

        let mut from_two = client
            .partition_consumer("t", 0, StartOffset::Offset(2), quick())
            .await
            .unwrap();
        assert_eq!(values(&from_two.poll().await.unwrap()), ["c", "d"]);

        let by_time = client
            .partition_consumer("t", 0, StartOffset::Timestamp(1015), quick())
            .await
            .unwrap();
        assert_eq!(
            by_time.position(),
            2,
            "first record at or after 1015 is c (1020)"
        );

        let after_end = client
            .partition_consumer("t", 0, StartOffset::Timestamp(9999), quick())
            .await
            .unwrap();
        assert_eq!(after_end.position(), 4, "past the last record: the end");

        let mut from_end = client
            .partition_consumer("t", 0, StartOffset::Latest, quick())
            .await
            .unwrap();
        assert!(from_end.poll().await.unwrap().is_empty());
        produce(&client, "t", &["e"], false).await;
        assert_eq!(values(&from_end.poll().await.unwrap()), ["e"]);
    }

    #[tokio::test]
    async fn a_records_offsets_timestamps_and_epochs_are_reported() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        produce(&client, "t", &["a", "b"], false).await;
        let fetched = client
            .fetch(&[(TopicPartition::new("t", 0), 1)], &quick())
            .await
            .unwrap();
        let partition = fetched[0].1.as_ref().unwrap();
        assert_eq!(
            partition.records.len(),
            1,
            "the record below offset 1 is skipped"
        );
        let record = &partition.records[0];
        assert_eq!(
            (&*record.topic, record.partition, record.offset),
            ("t", 0, 1)
        );
        assert_eq!(record.timestamp, 1010);
        assert_eq!(record.timestamp_type, crate::TimestampType::CreateTime);
        assert_eq!(partition.high_watermark, 2);
        assert_eq!(partition.next_offset, 2);
    }

    #[tokio::test]
    async fn offset_out_of_range_is_a_typed_error() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        let mut consumer = client
            .partition_consumer("t", 0, StartOffset::Offset(50), quick())
            .await
            .unwrap();
        let err = consumer.poll().await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::OffsetOutOfRange {
                    offset: 50,
                    partition: 0,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.kafka_code(), Some(1));
        consumer.seek(0);
        assert!(consumer.poll().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_partial_trailing_batch_is_fetched_again_next_time() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        produce(&client, "t", &["first", "second"], true).await;
        // Cut the response inside the second batch.
        cluster.with_state(|s| s.fetch_truncate = Some(90));
        let mut consumer = client
            .partition_consumer("t", 0, StartOffset::Earliest, quick())
            .await
            .unwrap();
        assert_eq!(values(&consumer.poll().await.unwrap()), ["first"]);
        assert_eq!(consumer.position(), 1);
        cluster.with_state(|s| s.fetch_truncate = None);
        assert_eq!(values(&consumer.poll().await.unwrap()), ["second"]);
    }

    #[tokio::test]
    async fn a_long_poll_returns_when_records_arrive() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        let mut consumer = client
            .partition_consumer(
                "t",
                0,
                StartOffset::Latest,
                FetchOptions {
                    max_wait: Duration::from_secs(20),
                    ..FetchOptions::default()
                },
            )
            .await
            .unwrap();
        let producer_client = test_client(&cluster).await;
        let poll = tokio::spawn(async move { consumer.poll().await });
        // The fetch is parked at the fake broker; producing wakes it up long before max_wait.
        produce(&producer_client, "t", &["wake up"], false).await;
        let records = tokio::time::timeout(Duration::from_secs(10), poll)
            .await
            .expect("the long poll returns once data arrives")
            .unwrap()
            .unwrap();
        assert_eq!(values(&records), ["wake up"]);
    }

    #[tokio::test]
    async fn fetching_an_unknown_partition_is_reported_per_partition() {
        let cluster = FakeCluster::start().await;
        cluster.with_state(|s| s.create_topic("t", 1));
        let client = test_client(&cluster).await;
        produce(&client, "t", &["a"], false).await;
        let fetched = client
            .fetch(
                &[
                    (TopicPartition::new("t", 0), 0),
                    (TopicPartition::new("t", 5), 0),
                ],
                &quick(),
            )
            .await
            .unwrap();
        assert_eq!(values(&fetched[0].1.as_ref().unwrap().records), ["a"]);
        let err = fetched[1].1.as_ref().unwrap_err();
        assert!(err.is(ResponseError::UnknownTopicOrPartition), "{err}");
    }
}
