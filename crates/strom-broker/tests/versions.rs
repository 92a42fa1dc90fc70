//! Every served version of every API answers a realistic request.
//!
//! The codec refuses to encode a response that sets a field its version does not have, and the
//! broker then closes the connection; this test sends one request per version of every API in
//! the registry, so such a field cannot hide in a version no test happens to use.

mod common;

use std::collections::BTreeSet;

use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Request, StrBytes};
use strom_broker::handlers::{SUPPORTED_APIS, supported_versions};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Sends `build(version)` at every served version of `R`'s API.
async fn every_version<R: Request>(
    conn: &mut Conn,
    checked: &mut BTreeSet<i16>,
    build: impl Fn(i16) -> R,
) {
    let key = ApiKey::try_from(R::KEY).unwrap();
    let versions = supported_versions(key).expect("served");
    for version in versions.min..=versions.max {
        conn.send(version, build(version)).await;
    }
    checked.insert(R::KEY);
}

#[tokio::test]
async fn every_version_of_every_api_answers() {
    let broker = TestBroker::start_with(&[("group.initial.rebalance.delay.ms", "0")]).await;
    let mut conn = broker.connect().await;
    let topic_id = conn.create_topic("t", 1, &[]).await.topics[0].topic_id;
    conn.produce("t", 0, 1, simple_batch(0, 3)).await;
    let mut checked = BTreeSet::new();

    every_version(&mut conn, &mut checked, |_| {
        ApiVersionsRequest::default()
            .with_client_software_name(s("strom-test"))
            .with_client_software_version(s("1"))
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        MetadataRequest::default()
            .with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name("t"))),
            ]))
            .with_allow_auto_topic_creation(true)
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        let topic = produce_request::TopicProduceData::default().with_partition_data(vec![
            produce_request::PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(simple_batch(0, 2))),
        ]);
        let topic = if v >= 13 {
            topic.with_topic_id(topic_id)
        } else {
            topic.with_name(topic_name("t"))
        };
        ProduceRequest::default()
            .with_transactional_id(None)
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![topic])
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        let topic = fetch_request::FetchTopic::default().with_partitions(vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20),
        ]);
        let topic = if v >= 13 {
            topic.with_topic_id(topic_id)
        } else {
            topic.with_topic(topic_name("t"))
        };
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![topic])
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        ListOffsetsRequest::default().with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic_name("t"))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(0),
                ]),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        OffsetForLeaderEpochRequest::default().with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(topic_name("t"))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(-1)
                        .with_leader_epoch(0),
                ]),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        CreateTopicsRequest::default().with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(topic_name(&format!("created-{v}")))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        CreatePartitionsRequest::default().with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(topic_name(&format!("created-{}", v + 2)))
                .with_count(2)
                .with_assignments(None),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        let name = format!("created-{}", v + 2);
        if v >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(topic_name(&name))),
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![topic_name(&name)])
        }
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        DeleteRecordsRequest::default().with_topics(vec![
            delete_records_request::DeleteRecordsTopic::default()
                .with_name(topic_name("t"))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(0),
                ]),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        DescribeConfigsRequest::default()
            .with_include_synonyms(v >= 1)
            .with_include_documentation(v >= 3)
            .with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configuration_keys(None),
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("1"))
                    .with_configuration_keys(None),
            ])
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_configs(vec![
                    alter_configs_request::AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("100000"))),
                ]),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_config_operation(0)
                        .with_value(Some(s("200000"))),
                ]),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        DescribeLogDirsRequest::default().with_topics(None)
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        // Partition 0 exists, 5 does not: both the answer and the error shape are encoded.
        DescribeProducersRequest::default().with_topics(vec![
            describe_producers_request::TopicRequest::default()
                .with_name(topic_name("t"))
                .with_partition_indexes(vec![0, 5]),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        DescribeClusterRequest::default().with_include_fenced_brokers(v >= 2)
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(topic_name("__cluster_metadata"))
                .with_partitions(vec![
                    describe_quorum_request::PartitionData::default().with_partition_index(0),
                ]),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        // v1+ carries the election type; PREFERRED on a partition its first replica leads.
        ElectLeadersRequest::default()
            .with_election_type(0)
            .with_timeout_ms(5000)
            .with_topic_partitions(if v == 2 {
                None
            } else {
                Some(vec![
                    elect_leaders_request::TopicPartitions::default()
                        .with_topic(topic_name("t"))
                        .with_partitions(vec![0]),
                    elect_leaders_request::TopicPartitions::default()
                        .with_topic(topic_name("missing"))
                        .with_partitions(vec![0]),
                ])
            })
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                alter_partition_reassignments_request::ReassignableTopic::default()
                    .with_name(topic_name("t"))
                    .with_partitions(vec![
                        // The current replicas: accepted, nothing to move.
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_partition_index(0)
                            .with_replicas(Some(vec![BrokerId(1)])),
                        // A cancel with nothing in progress: NO_REASSIGNMENT_IN_PROGRESS.
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_partition_index(0)
                            .with_replicas(None),
                    ]),
            ])
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(Some(vec![
                list_partition_reassignments_request::ListPartitionReassignmentsTopics::default()
                    .with_name(topic_name("t"))
                    .with_partition_indexes(vec![0]),
            ]))
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        UnregisterBrokerRequest::default().with_broker_id(BrokerId(99))
    })
    .await;

    // Security metadata: SCRAM users.
    every_version(&mut conn, &mut checked, |v| {
        AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                .with_name(s(&format!("user{v}")))
                .with_mechanism(1)
                .with_iterations(4096)
                .with_salt(bytes::Bytes::from_static(b"salt"))
                .with_salted_password(bytes::Bytes::from_static(&[7; 32])),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        DescribeUserScramCredentialsRequest::default().with_users(None)
    })
    .await;
    // ACLs.
    every_version(&mut conn, &mut checked, |v| {
        CreateAclsRequest::default().with_creations(vec![
            create_acls_request::AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(s(&format!("t{v}")))
                .with_resource_pattern_type(3)
                .with_principal(s("User:alice"))
                .with_host(s("*"))
                .with_operation(3)
                .with_permission_type(3),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        DescribeAclsRequest::default()
            .with_resource_type_filter(1)
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_pattern_type_filter(1)
            .with_operation(1)
            .with_permission_type(1)
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        DeleteAclsRequest::default().with_filters(vec![
            delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(s(&format!("t{v}"))))
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        ])
    })
    .await;

    // Group APIs.
    let group = |v: i16| GroupId(s(&format!("g{v}")));
    every_version(&mut conn, &mut checked, |v| {
        FindCoordinatorRequest::default()
            .with_key(if v < 4 { s("g") } else { StrBytes::default() })
            .with_coordinator_keys(if v >= 4 {
                vec![s("g"), s("h")]
            } else {
                Vec::new()
            })
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        JoinGroupRequest::default()
            .with_group_id(group(v))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(if v >= 1 { 10_000 } else { -1 })
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![
                join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0])),
            ])
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        SyncGroupRequest::default()
            .with_group_id(group(v))
            .with_generation_id(1)
            .with_member_id(s("nobody"))
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        HeartbeatRequest::default()
            .with_group_id(group(v))
            .with_generation_id(1)
            .with_member_id(s("nobody"))
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        let request = LeaveGroupRequest::default().with_group_id(group(v));
        if v >= 3 {
            request.with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(s("nobody")),
            ])
        } else {
            request.with_member_id(s("nobody"))
        }
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s("standalone")))
            .with_generation_id_or_member_epoch(-1)
            .with_retention_time_ms(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic_name("t"))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(v as i64)
                            .with_committed_metadata(Some(s("m"))),
                    ]),
            ])
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        // No transaction is open for this producer, so the commit may be refused; the answer
        // must still encode at every version.
        TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s("txn")))
            .with_group_id(GroupId(s("txn-standalone")))
            .with_producer_id(ProducerId(1))
            .with_producer_epoch(0)
            .with_generation_id(-1)
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(topic_name("t"))
                    .with_partitions(vec![
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(v as i64)
                            .with_committed_leader_epoch(if v >= 2 { 0 } else { -1 })
                            .with_committed_metadata(Some(s("m"))),
                    ]),
            ])
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        if v >= 8 {
            OffsetFetchRequest::default().with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s("standalone")))
                    .with_topics(None),
            ])
        } else {
            OffsetFetchRequest::default()
                .with_group_id(GroupId(s("standalone")))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(topic_name("t"))
                        .with_partition_indexes(vec![0]),
                ]))
        }
    })
    .await;
    every_version(&mut conn, &mut checked, |_| ListGroupsRequest::default()).await;
    every_version(&mut conn, &mut checked, |_| {
        DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(s("standalone")), GroupId(s("g9"))])
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(s("standalone")))
            .with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(topic_name("t"))
                    .with_partitions(vec![
                        offset_delete_request::OffsetDeleteRequestPartition::default()
                            .with_partition_index(0),
                    ]),
            ])
    })
    .await;
    every_version(&mut conn, &mut checked, |v| {
        DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(&format!("none{v}")))])
    })
    .await;

    // Transactions: a real transactional producer, so answers carry real state.
    let (pid, epoch) = conn.transactional_producer("vtxn", &[("t", 0)]).await;
    every_version(&mut conn, &mut checked, |v| {
        let topics = vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(topic_name("t"))
                .with_partitions(vec![0]),
        ];
        if v >= 4 {
            // The batched broker-to-broker form, asking only to verify.
            AddPartitionsToTxnRequest::default().with_transactions(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(TransactionalId(s("vtxn")))
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch)
                    .with_verify_only(true)
                    .with_topics(topics),
            ])
        } else {
            AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s("vtxn")))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(topics)
        }
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s("vtxn")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(s("vtxn-group")))
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        DescribeTransactionsRequest::default().with_transactional_ids(vec![
            TransactionalId(s("vtxn")),
            TransactionalId(s("no-such-id")),
        ])
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        ListTransactionsRequest::default()
            .with_state_filters(vec![s("Ongoing"), s("Bogus")])
            .with_duration_filter(-1)
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        // The first commits; the later ones are refused (the transaction is completing or
        // complete), which must encode at every version too.
        EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s("vtxn")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(true)
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        // Partition 0 gets an ABORT marker for a producer with nothing open; 7 does not exist.
        WriteTxnMarkersRequest::default().with_markers(vec![
            write_txn_markers_request::WritableTxnMarker::default()
                .with_producer_id(ProducerId(pid + 1000))
                .with_producer_epoch(0)
                .with_transaction_result(false)
                .with_coordinator_epoch(0)
                .with_topics(vec![
                    write_txn_markers_request::WritableTxnMarkerTopic::default()
                        .with_name(topic_name("t"))
                        .with_partition_indexes(vec![0, 7]),
                ]),
        ])
    })
    .await;

    // On a PLAINTEXT listener SASL is not in use: both are answered ILLEGAL_SASL_STATE, at
    // every version, and the connection keeps serving.
    every_version(&mut conn, &mut checked, |_| {
        SaslHandshakeRequest::default().with_mechanism(s("PLAIN"))
    })
    .await;
    every_version(&mut conn, &mut checked, |_| {
        SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from_static(b"\0u\0p"))
    })
    .await;

    let missing: Vec<_> = SUPPORTED_APIS
        .iter()
        .filter(|(key, _)| !checked.contains(&(*key as i16)))
        .map(|(key, _)| *key)
        .collect();
    assert!(
        missing.is_empty(),
        "APIs this test does not exercise: {missing:?}"
    );
    broker.stop().await;
}
