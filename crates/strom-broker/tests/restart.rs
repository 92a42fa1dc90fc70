//! Everything persists across a restart: topics, configs, offsets, data.

mod common;

use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

#[tokio::test]
async fn topics_configs_and_data_survive_a_restart() {
    let broker = TestBroker::start().await;
    let mut conn = broker.connect().await;
    let id = conn
        .create_topic("kept", 3, &[("retention.ms", "999999")])
        .await
        .topics[0]
        .topic_id;
    for p in 0..3 {
        for i in 0..4 {
            assert_eq!(
                conn.produce("kept", p, -1, simple_batch(i * 25, 25))
                    .await
                    .error_code,
                0
            );
        }
    }
    conn.send(
        2,
        DeleteRecordsRequest::default().with_topics(vec![
            delete_records_request::DeleteRecordsTopic::default()
                .with_name(topic_name("kept"))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(2)
                        .with_offset(50),
                ]),
        ]),
    )
    .await;

    let broker = broker.restart().await;
    let mut conn = broker.connect().await;
    let md = conn
        .send(
            12,
            MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(topic_name("kept"))),
            ])),
        )
        .await;
    assert_eq!(md.topics[0].topic_id, id, "the topic id is kept");
    assert_eq!(md.topics[0].partitions.len(), 3);
    for p in 0..2 {
        let records = conn.consume("kept", p, 0, 100).await;
        assert_eq!(records.len(), 100);
        assert!(
            records
                .iter()
                .enumerate()
                .all(|(i, r)| r.offset == i as i64)
        );
    }
    assert_eq!(
        conn.list_offset("kept", 2, -2).await.offset,
        50,
        "the log start offset is kept"
    );
    let configs = conn
        .send(
            4,
            DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("kept"))
                    .with_configuration_keys(Some(vec![StrBytes::from_static_str("retention.ms")])),
            ]),
        )
        .await;
    assert_eq!(
        configs.results[0].configs[0].value.as_deref(),
        Some("999999")
    );
    // Appends continue where the log ended.
    assert_eq!(
        conn.produce("kept", 0, 1, simple_batch(0, 1))
            .await
            .base_offset,
        100
    );
    broker.stop().await;
}
