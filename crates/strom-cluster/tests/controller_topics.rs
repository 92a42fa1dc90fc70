//! Topic decisions: the pure functions (`create_topic`, `create_partitions`, `delete_topic`)
//! and the controller's batched CreateTopics / DeleteTopics.

mod support;

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use strom_cluster::controller::{
    CreateTopic, CreatedTopic, Decision, create_partitions, create_topic, delete_topic,
    validate_topic_name,
};
use strom_cluster::{BrokerId, MetadataImage};
use support::*;
use uuid::Uuid;

fn single_broker() -> Cluster {
    let mut c = Cluster::new(config(1), 11);
    c.start_brokers(0, &[(1, None)]);
    c
}

/// Creation through the pure function, with a fixed start, as the single-node broker does.
fn create(image: &mut MetadataImage, name: &str, partitions: i32) -> Decision<CreatedTopic> {
    let req = CreateTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: -1,
        ..Default::default()
    };
    let topic_id = Uuid::from_u128(image.topics.len() as u128 + 1);
    let (records, created) = create_topic(image, &req, DEFAULTS, topic_id, 0)?;
    for r in &records {
        image.replay(r);
    }
    Ok(created)
}

#[test]
fn topic_names_follow_kafka_rules() {
    for good in ["a", "A.b_c-1", &"x".repeat(249)] {
        assert!(validate_topic_name(good).is_ok(), "{good}");
    }
    for bad in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(250)] {
        let err = validate_topic_name(bad).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidTopicException, "{bad}");
    }
}

#[test]
fn created_topic_has_partitions_led_by_the_broker() {
    let mut image = single_broker().image;
    let created = create(&mut image, "orders", 3).unwrap();
    assert_eq!(created.num_partitions, 3);
    let topic = image.topic("orders").unwrap();
    assert_eq!(topic.partitions.len(), 3);
    assert!(
        topic
            .partitions
            .values()
            .all(|p| p.leader == BrokerId(1) && p.replicas == ids(&[1]))
    );
}

#[test]
fn duplicate_and_colliding_names_are_refused() {
    let mut image = single_broker().image;
    create(&mut image, "a.b", 1).unwrap();
    assert_eq!(
        create(&mut image, "a.b", 1).unwrap_err().error,
        ResponseError::TopicAlreadyExists
    );
    assert_eq!(
        create(&mut image, "a_b", 1).unwrap_err().error,
        ResponseError::InvalidTopicException
    );
}

#[test]
fn invalid_partitions_and_replication_are_refused() {
    let mut image = single_broker().image;
    assert_eq!(
        create(&mut image, "t", 0).unwrap_err().error,
        ResponseError::InvalidPartitions
    );
    let req = CreateTopic {
        name: "t".into(),
        num_partitions: 1,
        replication_factor: 3,
        ..Default::default()
    };
    let err = create_topic(&image, &req, DEFAULTS, Uuid::nil(), 0).unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidReplicationFactor);
    assert!(err.message.contains("only 1 broker(s)"), "{}", err.message);
}

#[test]
fn invalid_topic_configs_are_refused_at_creation() {
    let image = single_broker().image;
    let req = CreateTopic {
        name: "t".into(),
        num_partitions: 1,
        replication_factor: 1,
        configs: vec![("retention.ms".into(), Some("never".into()))],
        ..Default::default()
    };
    let err = create_topic(&image, &req, DEFAULTS, Uuid::nil(), 0).unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidConfig);
    assert!(err.message.contains("retention.ms"));
}

#[test]
fn partitions_only_grow() {
    let mut image = single_broker().image;
    create(&mut image, "t", 2).unwrap();
    for total in [2, 1] {
        let err = create_partitions(&image, "t", total, None, 0).unwrap_err();
        assert_eq!(err.error, ResponseError::InvalidPartitions);
    }
    let records = create_partitions(&image, "t", 4, None, 0).unwrap();
    for r in &records {
        image.replay(r);
    }
    assert_eq!(image.topic("t").unwrap().partitions.len(), 4);
    let err = create_partitions(&image, "nope", 4, None, 0).unwrap_err();
    assert_eq!(err.error, ResponseError::UnknownTopicOrPartition);
}

#[test]
fn a_batch_sees_the_topics_created_before_it() {
    let mut c = single_broker();
    let topic = |name: &str| CreateTopic {
        name: name.into(),
        num_partitions: 2,
        replication_factor: -1,
        ..Default::default()
    };
    let request = [topic("a"), topic("a"), topic("a_"), topic("a.")];
    let (records, results) = c
        .controller
        .create_topics(&c.image, &request, DEFAULTS, false);
    assert!(results[0].is_ok());
    assert_eq!(
        results[1].as_ref().unwrap_err().error,
        ResponseError::TopicAlreadyExists
    );
    assert!(results[2].is_ok());
    assert_eq!(
        results[3].as_ref().unwrap_err().error,
        ResponseError::InvalidTopicException,
        "collides with a_, created earlier in the same request"
    );
    c.apply(&records);
    assert_eq!(c.image.topics.len(), 2);
    check_invariants(&c.image);
}

#[test]
fn validate_only_decides_without_records() {
    let mut c = single_broker();
    let request = [CreateTopic {
        name: "t".into(),
        num_partitions: 3,
        replication_factor: 1,
        ..Default::default()
    }];
    let (records, results) = c
        .controller
        .create_topics(&c.image, &request, DEFAULTS, true);
    assert!(records.is_empty());
    assert_eq!(results[0].as_ref().unwrap().num_partitions, 3);
}

#[test]
fn a_request_for_too_many_partitions_is_refused_whole() {
    let c = single_broker();
    let topic = |name: &str, partitions| CreateTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: 1,
        ..Default::default()
    };
    let request = [topic("a", 6_000), topic("b", 5_000)];
    let mut controller = c.controller.clone();
    let (records, results) = controller.create_topics(&c.image, &request, DEFAULTS, false);
    assert!(records.is_empty());
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap_err().error == ResponseError::PolicyViolation)
    );
}

#[test]
fn manual_assignments_start_with_their_available_replicas_in_sync() {
    let mut c = Cluster::new(config(2), 4);
    c.start_brokers(0, &[(1, None), (2, None)]);
    c.register(1, registration(3, 0, None)).unwrap(); // registered, still fenced
    let manual = |assignment: &[&[i32]]| CreateTopic {
        name: "m".into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: assignment
            .iter()
            .enumerate()
            .map(|(p, r)| (p as i32, ids(r)))
            .collect::<BTreeMap<_, _>>(),
        ..Default::default()
    };
    let (records, results) =
        c.controller
            .create_topics(&c.image, &[manual(&[&[3, 2], &[1, 3]])], DEFAULTS, false);
    assert_eq!(results[0].as_ref().unwrap().replication_factor, 2);
    c.apply(&records);
    let p0 = c.partition("m", 0);
    assert_eq!(
        (p0.leader, p0.in_sync_replicas.clone()),
        (BrokerId(2), ids(&[2]))
    );
    let p1 = c.partition("m", 1);
    assert_eq!(
        (p1.leader, p1.in_sync_replicas.clone()),
        (BrokerId(1), ids(&[1]))
    );
    check_invariants(&c.image);

    let image = &c.image;
    let only_fenced = CreateTopic {
        name: "f".into(),
        ..manual(&[&[3]])
    };
    let err = create_topic(image, &only_fenced, DEFAULTS, Uuid::nil(), 0).unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidReplicaAssignment);
    assert!(err.message.contains("fenced or in controlled shutdown"));
    let unknown = CreateTopic {
        name: "u".into(),
        ..manual(&[&[9]])
    };
    let err = create_topic(image, &unknown, DEFAULTS, Uuid::nil(), 0).unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidReplicaAssignment);
}

#[test]
fn deleting_topics_in_a_batch_deletes_each_once() {
    let mut c = single_broker();
    let created = c.create("t", 1, 1).unwrap();
    let names = ["t".to_string(), "t".to_string(), "nope".to_string()];
    let (records, results) = c.controller.delete_topics(&c.image, &names);
    assert_eq!(results[0].as_ref().unwrap(), &created.topic_id);
    assert_eq!(
        results[1].as_ref().unwrap_err().error,
        ResponseError::UnknownTopicOrPartition
    );
    assert!(results[2].is_err());
    assert_eq!(records.len(), 1);
    c.apply(&records);
    assert!(c.image.topic("t").is_none());
    assert!(delete_topic(&c.image, "t").is_err());
}

#[test]
fn the_controller_grows_partitions_within_its_replication_limit() {
    let mut c = Cluster::new(config(1), 4);
    c.start_brokers(0, &[(1, None), (2, None)]);
    c.create("t", 1, 1).unwrap();
    let records = c
        .controller
        .create_partitions(&c.image, "t", 5, None)
        .unwrap();
    c.apply(&records);
    assert_eq!(c.image.topic("t").unwrap().partitions.len(), 5);
    let err = c
        .controller
        .create_partitions(&c.image, "t", 6, Some(&[ids(&[1, 2])]))
        .unwrap_err();
    assert_eq!(err.error, ResponseError::InvalidReplicaAssignment);
    check_invariants(&c.image);
}
