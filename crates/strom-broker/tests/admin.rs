//! Topic administration, configs, offsets and cluster description against a real broker.

mod common;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn metadata(conn: &mut Conn, topics: Option<&[&str]>, auto_create: bool) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(auto_create)
        .with_topics(topics.map(|t| {
            t.iter()
                .map(|n| {
                    metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name(n)))
                })
                .collect()
        }));
    conn.send(12, request).await
}

async fn describe_topic_configs(
    conn: &mut Conn,
    topic: &str,
) -> Vec<describe_configs_response::DescribeConfigsResourceResult> {
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(true)
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(topic)),
        ]);
    let mut response = conn.send(4, request).await;
    let result = response.results.remove(0);
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    result.configs
}

fn config_value(
    configs: &[describe_configs_response::DescribeConfigsResourceResult],
    name: &str,
) -> (String, i8) {
    let c = configs
        .iter()
        .find(|c| c.name.as_str() == name)
        .unwrap_or_else(|| panic!("{name} missing"));
    (
        c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
        c.config_source,
    )
}

#[tokio::test]
async fn create_topics_validates_names_configs_duplicates_and_existing_topics() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let created = conn
        .create_topic("events", 3, &[("retention.ms", "60000")])
        .await;
    let result = &created.topics[0];
    assert_eq!(result.error_code, 0);
    assert_eq!((result.num_partitions, result.replication_factor), (3, 1));
    assert!(!result.topic_id.is_nil());
    let configs = result.configs.as_ref().unwrap();
    let retention = configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("60000"));
    assert_eq!(retention.config_source, 1, "DYNAMIC_TOPIC_CONFIG");

    assert_eq!(
        conn.create_topic("events", 1, &[]).await.topics[0].error_code,
        ResponseError::TopicAlreadyExists.code()
    );
    assert_eq!(
        conn.create_topic("bad name", 1, &[]).await.topics[0].error_code,
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        conn.create_topic("x", 0, &[]).await.topics[0].error_code,
        ResponseError::InvalidPartitions.code()
    );
    let bad_config = conn.create_topic("y", 1, &[("retention.ms", "soon")]).await;
    assert_eq!(
        bad_config.topics[0].error_code,
        ResponseError::InvalidConfig.code()
    );
    assert!(
        bad_config.topics[0]
            .error_message
            .as_deref()
            .unwrap()
            .contains("retention.ms")
    );

    let dup = create_topics_request::CreatableTopic::default()
        .with_name(topic_name("dup"))
        .with_num_partitions(1)
        .with_replication_factor(1);
    let response = conn
        .send(
            7,
            CreateTopicsRequest::default().with_topics(vec![dup.clone(), dup]),
        )
        .await;
    assert!(
        response
            .topics
            .iter()
            .all(|t| t.error_code == ResponseError::InvalidRequest.code())
    );

    let validate = conn
        .send(
            7,
            CreateTopicsRequest::default()
                .with_validate_only(true)
                .with_topics(vec![
                    create_topics_request::CreatableTopic::default()
                        .with_name(topic_name("dry"))
                        .with_num_partitions(2)
                        .with_replication_factor(1),
                ]),
        )
        .await;
    assert_eq!(validate.topics[0].error_code, 0);
    let md = metadata(&mut conn, Some(&["dry"]), false).await;
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code(),
        "validate_only created nothing"
    );
    broker.stop().await;
}

#[tokio::test]
async fn metadata_lists_brokers_topics_and_auto_creates() {
    let broker = TestBroker::start_with(&[("num.partitions", "4")]).await;
    let mut conn = broker.connect().await;
    let md = metadata(&mut conn, Some(&["fresh"]), true).await;
    assert_eq!(md.brokers.len(), 1);
    assert_eq!(md.brokers[0].port as u16, broker.addr.port());
    assert_eq!(md.controller_id.0, 1);
    let topic = &md.topics[0];
    assert_eq!(topic.error_code, 0);
    assert_eq!(topic.partitions.len(), 4);
    assert!(
        topic
            .partitions
            .iter()
            .all(|p| p.leader_id.0 == 1 && p.isr_nodes.len() == 1)
    );

    let by_id = conn
        .send(
            12,
            MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_topic_id(topic.topic_id),
            ])),
        )
        .await;
    assert_eq!(
        by_id.topics[0].name.as_ref().map(|n| n.as_str()),
        Some("fresh")
    );

    let unknown = metadata(&mut conn, Some(&["nope"]), false).await;
    assert_eq!(
        unknown.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let invalid = metadata(&mut conn, Some(&["no way"]), true).await;
    assert_eq!(
        invalid.topics[0].error_code,
        ResponseError::InvalidTopicException.code()
    );
    let all = metadata(&mut conn, None, false).await;
    assert_eq!(all.topics.len(), 1);
    // Metadata v0 and v1 (older clients) still work.
    let v1 = conn
        .send(1, MetadataRequest::default().with_topics(None))
        .await;
    assert_eq!(v1.topics.len(), 1);
    broker.stop().await;
}

#[tokio::test]
async fn delete_topics_by_name_and_by_id_removes_data() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("gone", 2, &[]).await;
    conn.produce("gone", 0, 1, simple_batch(0, 5)).await;
    let response = conn
        .send(
            5,
            DeleteTopicsRequest::default()
                .with_topic_names(vec![topic_name("gone")])
                .with_timeout_ms(5000),
        )
        .await;
    assert_eq!(response.responses[0].error_code, 0);
    assert!(
        !broker.dir.join("gone-0").exists(),
        "partition directories are deleted"
    );
    let md = metadata(&mut conn, Some(&["gone"]), false).await;
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let fetch = conn.fetch("gone", 0, 0, 0, 0).await;
    assert_eq!(
        fetch.error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );

    let id = conn.create_topic("gone2", 1, &[]).await.topics[0].topic_id;
    let response = conn
        .send(
            6,
            DeleteTopicsRequest::default().with_topics(vec![
                delete_topics_request::DeleteTopicState::default().with_topic_id(id),
            ]),
        )
        .await;
    assert_eq!(response.responses[0].error_code, 0);
    assert_eq!(
        response.responses[0].name.as_ref().map(|n| n.as_str()),
        Some("gone2")
    );
    let again = conn
        .send(
            6,
            DeleteTopicsRequest::default().with_topics(vec![
                delete_topics_request::DeleteTopicState::default().with_topic_id(id),
            ]),
        )
        .await;
    assert_eq!(
        again.responses[0].error_code,
        ResponseError::UnknownTopicId.code()
    );

    // A recreated topic starts empty.
    conn.create_topic("gone", 1, &[]).await;
    assert_eq!(conn.list_offset("gone", 0, -1).await.offset, 0);
    broker.stop().await;
}

#[tokio::test]
async fn create_partitions_grows_a_topic() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("grow", 1, &[]).await;
    let request = |count: i32| {
        CreatePartitionsRequest::default().with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(topic_name("grow"))
                .with_count(count),
        ])
    };
    assert_eq!(conn.send(3, request(3)).await.results[0].error_code, 0);
    assert_eq!(
        conn.produce("grow", 2, 1, simple_batch(0, 1))
            .await
            .error_code,
        0
    );
    assert_eq!(
        conn.send(3, request(2)).await.results[0].error_code,
        ResponseError::InvalidPartitions.code()
    );
    broker.stop().await;
}

#[tokio::test]
async fn configs_are_described_with_sources_and_altered_both_ways() {
    let broker = TestBroker::start_with(&[("log.retention.hours", "24")]).await;
    let mut conn = broker.connect().await;
    conn.create_topic("conf", 1, &[]).await;
    let configs = describe_topic_configs(&mut conn, "conf").await;
    assert_eq!(
        config_value(&configs, "retention.ms"),
        ("86400000".into(), 4),
        "STATIC_BROKER_CONFIG from log.retention.hours"
    );
    assert_eq!(
        config_value(&configs, "cleanup.policy"),
        ("delete".into(), 5),
        "DEFAULT_CONFIG"
    );
    let retention = configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert!(
        retention
            .synonyms
            .iter()
            .any(|s| s.name.as_str() == "log.retention.hours")
    );
    assert!(retention.documentation.is_some());

    let incremental = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("conf"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(s("1234"))),
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s("cleanup.policy"))
                    .with_config_operation(2)
                    .with_value(Some(s("compact"))),
            ]),
    ]);
    let response = conn.send(1, incremental).await;
    assert_eq!(
        response.responses[0].error_code, 0,
        "{:?}",
        response.responses[0].error_message
    );
    let configs = describe_topic_configs(&mut conn, "conf").await;
    assert_eq!(config_value(&configs, "retention.ms"), ("1234".into(), 1));
    assert_eq!(config_value(&configs, "cleanup.policy").0, "delete,compact");
    let state = broker.broker.as_ref().unwrap().state().unwrap().clone();
    let log = state
        .partition(&strom_log::TopicPartition {
            topic: "conf".into(),
            partition: 0,
        })
        .unwrap()
        .log
        .clone();
    assert_eq!(
        log.config().retention_ms,
        1234,
        "the live log follows the change"
    );

    let invalid = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("conf"))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s("segment.bytes"))
                    .with_config_operation(0)
                    .with_value(Some(s("ten"))),
            ]),
    ]);
    assert_eq!(
        conn.send(1, invalid).await.responses[0].error_code,
        ResponseError::InvalidConfig.code()
    );

    // Legacy AlterConfigs replaces every override.
    let legacy = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("conf"))
            .with_configs(vec![
                alter_configs_request::AlterableConfig::default()
                    .with_name(s("segment.ms"))
                    .with_value(Some(s("3600000"))),
            ]),
    ]);
    assert_eq!(conn.send(2, legacy).await.responses[0].error_code, 0);
    let configs = describe_topic_configs(&mut conn, "conf").await;
    assert_eq!(config_value(&configs, "segment.ms"), ("3600000".into(), 1));
    assert_eq!(
        config_value(&configs, "retention.ms").1,
        4,
        "the earlier override is gone"
    );

    let unknown = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("missing")),
    ]);
    assert_eq!(
        conn.send(4, unknown).await.results[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );

    let broker_configs = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s("1")),
    ]);
    let response = conn.send(4, broker_configs).await;
    let hours = response.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == "log.retention.hours")
        .unwrap();
    assert_eq!(
        (hours.value.as_deref(), hours.config_source),
        (Some("24"), 4)
    );
    broker.stop().await;
}

#[tokio::test]
async fn list_offsets_earliest_latest_by_timestamp_and_max_timestamp() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("times", 1, &[]).await;
    let base = now_ms() - 10_000;
    for i in 0..10i64 {
        let r = record(i, base + i * 100);
        conn.produce(
            "times",
            0,
            1,
            batch(&[r], kafka_protocol::records::Compression::None),
        )
        .await;
    }
    assert_eq!(conn.list_offset("times", 0, -2).await.offset, 0);
    assert_eq!(conn.list_offset("times", 0, -1).await.offset, 10);
    let by_time = conn.list_offset("times", 0, base + 450).await;
    assert_eq!((by_time.offset, by_time.timestamp), (5, base + 500));
    assert_eq!(
        conn.list_offset("times", 0, base + 100_000).await.offset,
        -1,
        "no record that late"
    );
    let max = conn.list_offset("times", 0, -3).await;
    assert_eq!((max.offset, max.timestamp), (9, base + 900));
    broker.stop().await;
}

#[tokio::test]
async fn delete_records_moves_the_log_start_offset() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("trim", 1, &[]).await;
    conn.produce("trim", 0, 1, simple_batch(0, 10)).await;
    conn.produce("trim", 0, 1, simple_batch(10, 10)).await;
    let request = |offset: i64| {
        DeleteRecordsRequest::default().with_topics(vec![
            delete_records_request::DeleteRecordsTopic::default()
                .with_name(topic_name("trim"))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(offset),
                ]),
        ])
    };
    let response = conn.send(2, request(10)).await;
    let result = &response.topics[0].partitions[0];
    assert_eq!((result.error_code, result.low_watermark), (0, 10));
    assert_eq!(conn.list_offset("trim", 0, -2).await.offset, 10);
    assert_eq!(
        conn.fetch("trim", 0, 0, 0, 0).await.error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(conn.consume("trim", 0, 10, 10).await[0].offset, 10);
    let beyond = conn.send(2, request(100)).await;
    assert_eq!(
        beyond.topics[0].partitions[0].error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    broker.stop().await;
}

#[tokio::test]
async fn describe_cluster_and_log_dirs() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let cluster = conn
        .send(1, DescribeClusterRequest::default().with_endpoint_type(1))
        .await;
    assert_eq!(cluster.error_code, 0);
    assert_eq!(cluster.cluster_id.len(), 22);
    assert_eq!(cluster.brokers.len(), 1);
    conn.create_topic("sized", 1, &[]).await;
    conn.produce("sized", 0, 1, simple_batch(0, 10)).await;
    let dirs = conn
        .send(4, DescribeLogDirsRequest::default().with_topics(None))
        .await;
    let result = &dirs.results[0];
    assert!(result.total_bytes > 0 && result.usable_bytes > 0);
    let partition = &result
        .topics
        .iter()
        .find(|t| t.name.as_str() == "sized")
        .unwrap()
        .partitions[0];
    assert!(partition.partition_size > 0);
    broker.stop().await;
}

#[tokio::test]
async fn offset_for_leader_epoch_reports_the_log_end_for_the_current_epoch() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    conn.create_topic("epochs", 1, &[]).await;
    conn.produce("epochs", 0, 1, simple_batch(0, 7)).await;
    let request = OffsetForLeaderEpochRequest::default().with_topics(vec![
        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
            .with_topic(topic_name("epochs"))
            .with_partitions(vec![
                offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(0)
                    .with_leader_epoch(0),
            ]),
    ]);
    let response = conn.send(4, request).await;
    let result = &response.topics[0].partitions[0];
    assert_eq!(
        (result.error_code, result.leader_epoch, result.end_offset),
        (0, 0, 7)
    );
    broker.stop().await;
}
