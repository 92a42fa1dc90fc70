use super::*;

const NOW: i64 = 1_000_000;
const TIMEOUT: i32 = 60_000;
const EPOCH: i32 = 7;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    (topic.to_string(), partition)
}

/// A coordinator owning every `__transaction_state` partition, and the log it wrote.
struct Harness {
    coordinator: Coordinator,
    log: Vec<(i32, Bytes, Option<Bytes>)>,
    next_rid: u64,
}

impl Harness {
    fn new() -> Self {
        let mut coordinator = Coordinator::new(Config::default());
        for p in 0..Config::default().num_partitions {
            coordinator.load_partition(p, EPOCH);
            coordinator.finish_load(p);
        }
        Harness {
            coordinator,
            log: Vec::new(),
            next_rid: 0,
        }
    }

    fn rid(&mut self) -> RequestId {
        self.next_rid += 1;
        RequestId(self.next_rid)
    }

    /// Makes every write of `out` durable, in order, and returns everything that followed
    /// (including `out`'s own immediate responses and markers).
    fn settle(&mut self, out: Output) -> Output {
        let mut all = Output {
            writes: Vec::new(),
            responses: out.responses,
            markers: out.markers,
        };
        for write in out.writes {
            self.log
                .push((write.partition, write.key.clone(), write.value.clone()));
            let more = self.coordinator.write_completed(write.id);
            let more = self.settle(more);
            all.responses.extend(more.responses);
            all.markers.extend(more.markers);
        }
        all
    }

    fn init(&mut self, id: &str) -> Response {
        let rid = self.rid();
        let out = self
            .coordinator
            .init_producer_id(NOW, rid, id, TIMEOUT, 1000);
        let out = self.settle(out);
        out.response(rid).cloned().expect("answered")
    }

    fn add(&mut self, id: &str, epoch: i16, partitions: &[TopicPartition]) -> i16 {
        let rid = self.rid();
        let out = self.coordinator.add_partitions(
            NOW + 1,
            rid,
            id,
            Producer { id: 1000, epoch },
            partitions,
        );
        match self.settle(out).response(rid) {
            Some(Response::AddPartitions { error }) => *error,
            other => panic!("{other:?}"),
        }
    }

    fn end(&mut self, id: &str, epoch: i16, commit: bool) -> (i16, Vec<Markers>) {
        let rid = self.rid();
        let out = self.coordinator.end_txn(
            NOW + 2,
            rid,
            id,
            Producer { id: 1000, epoch },
            commit,
            false,
        );
        let out = self.settle(out);
        match out.response(rid) {
            Some(Response::EndTxn { error, .. }) => (*error, out.markers),
            other => panic!("{other:?}"),
        }
    }

    fn state(&self, id: &str) -> Option<TransactionState> {
        self.coordinator.describe(&[id.to_string()])[0].state
    }
}

fn init_ok(response: Response) -> (i64, i16) {
    match response {
        Response::InitProducerId {
            error: 0,
            producer_id,
            producer_epoch,
        } => (producer_id, producer_epoch),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_committed_transaction_writes_prepare_markers_then_complete() {
    let mut h = Harness::new();
    assert_eq!(init_ok(h.init("app")), (1000, 0));
    assert_eq!(h.add("app", 0, &[tp("a", 0), tp("b", 1)]), 0);
    let rid = h.rid();
    let out = h.coordinator.add_offsets(
        NOW + 1,
        rid,
        "app",
        Producer { id: 1000, epoch: 0 },
        "group-1",
    );
    assert_eq!(
        h.settle(out).response(rid),
        Some(&Response::AddOffsets { error: 0 })
    );
    assert_eq!(h.state("app"), Some(TransactionState::Ongoing));

    let (error, markers) = h.end("app", 0, true);
    assert_eq!(error, 0);
    let offsets_partition = strom_group::partition_for_group("group-1", 50);
    assert_eq!(
        markers,
        vec![Markers {
            transactional_id: "app".into(),
            producer_id: 1000,
            producer_epoch: 0,
            commit: true,
            coordinator_epoch: EPOCH,
            partitions: vec![
                tp(CONSUMER_OFFSETS, offsets_partition),
                tp("a", 0),
                tp("b", 1)
            ],
        }]
    );
    assert_eq!(h.state("app"), Some(TransactionState::PrepareCommit));
    let out = h
        .coordinator
        .markers_written(NOW + 3, "app", Producer { id: 1000, epoch: 0 });
    assert_eq!(out.writes.len(), 1);
    h.settle(out);
    assert_eq!(h.state("app"), Some(TransactionState::CompleteCommit));
    // Every record went to the id's partition: init, add, add offsets, prepare, complete.
    let partition = h.coordinator.partition_for("app");
    assert_eq!(h.log.len(), 5);
    assert!(h.log.iter().all(|(p, _, _)| *p == partition));
}

#[test]
fn answers_wait_for_their_write_and_a_failed_write_changes_nothing() {
    let mut h = Harness::new();
    init_ok(h.init("app"));
    let rid = h.rid();
    let out = h.coordinator.add_partitions(
        NOW,
        rid,
        "app",
        Producer { id: 1000, epoch: 0 },
        &[tp("a", 0)],
    );
    assert!(out.response(rid).is_none(), "held until durable");
    assert_eq!(out.writes.len(), 1);
    // Meanwhile the id is busy.
    let other = h.rid();
    let busy = h.coordinator.end_txn(
        NOW,
        other,
        "app",
        Producer { id: 1000, epoch: 0 },
        true,
        false,
    );
    assert_eq!(
        busy.response(other),
        Some(&Response::EndTxn {
            error: 51,
            producer_id: -1,
            producer_epoch: -1
        })
    );
    let failed = h
        .coordinator
        .write_failed(out.writes[0].id, codes::NOT_COORDINATOR);
    assert_eq!(
        failed.response(rid),
        Some(&Response::AddPartitions { error: 16 })
    );
    assert_eq!(h.state("app"), Some(TransactionState::Empty));
    // A late completion of the failed write is ignored.
    assert_eq!(
        h.coordinator.write_completed(out.writes[0].id),
        Output::default()
    );
    assert_eq!(h.add("app", 0, &[tp("a", 0)]), 0);
}

#[test]
fn a_new_instance_fences_the_old_one_and_aborts_its_transaction() {
    let mut h = Harness::new();
    init_ok(h.init("app"));
    assert_eq!(h.add("app", 0, &[tp("a", 0)]), 0);
    let rid = h.rid();
    let out = h
        .coordinator
        .init_producer_id(NOW, rid, "app", TIMEOUT, 2000);
    assert_eq!(
        out.response(rid),
        Some(&Response::InitProducerId {
            error: 51,
            producer_id: -1,
            producer_epoch: -1
        }),
        "retry once the abort is done"
    );
    let out = h.settle(out);
    assert_eq!(out.markers.len(), 1);
    let markers = &out.markers[0];
    assert!(!markers.commit);
    assert_eq!((markers.producer_id, markers.producer_epoch), (1000, 1));
    // The old instance cannot commit, before or after the markers.
    assert_eq!(h.end("app", 0, true).0, 90);
    let out = h
        .coordinator
        .markers_written(NOW, "app", Producer { id: 1000, epoch: 1 });
    h.settle(out);
    assert_eq!(h.state("app"), Some(TransactionState::CompleteAbort));
    assert_eq!(h.end("app", 0, true).0, 90);
    assert_eq!(init_ok(h.init("app")), (1000, 2));
}

#[test]
fn a_failed_completion_asks_for_the_markers_again() {
    let mut h = Harness::new();
    init_ok(h.init("app"));
    assert_eq!(h.add("app", 0, &[tp("a", 0)]), 0);
    let (_, markers) = h.end("app", 0, true);
    assert_eq!(markers.len(), 1);
    let producer = Producer { id: 1000, epoch: 0 };
    let out = h.coordinator.markers_written(NOW + 3, "app", producer);
    let failed = h
        .coordinator
        .write_failed(out.writes[0].id, codes::NOT_COORDINATOR);
    assert_eq!(failed.markers, markers, "the same markers, again");
    assert_eq!(h.state("app"), Some(TransactionState::PrepareCommit));
    let out = h.coordinator.markers_written(NOW + 4, "app", producer);
    h.settle(out);
    assert_eq!(h.state("app"), Some(TransactionState::CompleteCommit));
}

#[test]
fn a_timed_out_transaction_is_aborted_by_poll() {
    let mut h = Harness::new();
    init_ok(h.init("app"));
    assert_eq!(h.add("app", 0, &[tp("a", 0)]), 0);
    assert_eq!(
        h.coordinator.poll(NOW + 1 + i64::from(TIMEOUT)),
        Output::default()
    );
    let out = h.coordinator.poll(NOW + 2 + i64::from(TIMEOUT));
    assert_eq!(out.writes.len(), 1);
    let out = h.settle(out);
    assert_eq!(out.markers.len(), 1);
    assert!(!out.markers[0].commit);
    assert_eq!(
        out.markers[0].producer_epoch, 1,
        "the abandoned producer is fenced"
    );
    assert_eq!(h.state("app"), Some(TransactionState::PrepareAbort));
}

#[test]
fn an_idle_id_expires_with_a_tombstone() {
    let mut h = Harness::new();
    init_ok(h.init("app"));
    let expiry = NOW + Config::default().id_expiration_ms;
    assert!(h.coordinator.poll(expiry).writes.is_empty());
    let out = h.coordinator.poll(expiry + 1);
    assert_eq!(out.writes.len(), 1);
    assert_eq!(out.writes[0].value, None);
    h.settle(out);
    assert_eq!(
        h.coordinator.describe(&["app".to_string()])[0].error,
        codes::TRANSACTIONAL_ID_NOT_FOUND
    );
}

#[test]
fn a_new_coordinator_replays_the_log_and_finishes_prepared_transactions() {
    let mut h = Harness::new();
    init_ok(h.init("committing"));
    assert_eq!(h.add("committing", 0, &[tp("a", 0)]), 0);
    h.end("committing", 0, true);
    init_ok(h.init("idle"));
    init_ok(h.init("open"));
    assert_eq!(h.add("open", 0, &[tp("b", 2)]), 0);

    let mut next = Coordinator::new(Config::default());
    for p in 0..50 {
        next.load_partition(p, EPOCH + 1);
    }
    let rid = RequestId(1);
    let early = next.init_producer_id(NOW, rid, "idle", TIMEOUT, 5000);
    assert_eq!(
        early.response(rid),
        Some(&Response::InitProducerId {
            error: codes::COORDINATOR_LOAD_IN_PROGRESS,
            producer_id: -1,
            producer_epoch: -1
        })
    );
    for (p, key, value) in &h.log {
        next.replay(*p, key, value.as_deref()).unwrap();
    }
    let mut markers = Vec::new();
    for p in 0..50 {
        markers.extend(next.finish_load(p).markers);
    }
    assert_eq!(markers.len(), 1);
    assert_eq!(markers[0].transactional_id, "committing");
    assert!(markers[0].commit);
    assert_eq!(markers[0].coordinator_epoch, EPOCH + 1);
    let states: Vec<_> = next.list(&[], &[]);
    assert_eq!(
        states,
        vec![
            (
                "committing".to_string(),
                1000,
                TransactionState::PrepareCommit
            ),
            ("idle".to_string(), 1000, TransactionState::Empty),
            ("open".to_string(), 1000, TransactionState::Ongoing),
        ]
    );
    assert_eq!(
        next.list(&[TransactionState::Ongoing], &[]),
        vec![("open".to_string(), 1000, TransactionState::Ongoing)]
    );
}

#[test]
fn losing_a_partition_answers_what_waited_with_not_coordinator() {
    let mut h = Harness::new();
    init_ok(h.init("app"));
    let rid = h.rid();
    let out = h.coordinator.add_partitions(
        NOW,
        rid,
        "app",
        Producer { id: 1000, epoch: 0 },
        &[tp("a", 0)],
    );
    let partition = h.coordinator.partition_for("app");
    let unloaded = h.coordinator.unload_partition(partition);
    assert_eq!(
        unloaded.response(rid),
        Some(&Response::AddPartitions { error: 16 })
    );
    assert_eq!(
        h.coordinator.write_completed(out.writes[0].id),
        Output::default()
    );
    let rid = h.rid();
    let out = h.coordinator.init_producer_id(NOW, rid, "app", TIMEOUT, 1);
    assert_eq!(
        out.response(rid),
        Some(&Response::InitProducerId {
            error: 16,
            producer_id: -1,
            producer_epoch: -1
        })
    );
}

#[test]
fn bad_requests_get_kafkas_errors() {
    let mut h = Harness::new();
    let rid = h.rid();
    let out = h.coordinator.init_producer_id(NOW, rid, "app", 0, 1000);
    assert!(matches!(
        out.response(rid),
        Some(Response::InitProducerId { error: 50, .. })
    ));
    let rid = h.rid();
    let out = h
        .coordinator
        .init_producer_id(NOW, rid, "app", 900_001, 1000);
    assert!(matches!(
        out.response(rid),
        Some(Response::InitProducerId { error: 50, .. })
    ));
    let long = "x".repeat(record::MAX_TRANSACTIONAL_ID_LEN + 1);
    let rid = h.rid();
    let out = h
        .coordinator
        .init_producer_id(NOW, rid, &long, TIMEOUT, 1000);
    assert!(matches!(
        out.response(rid),
        Some(Response::InitProducerId { error: 42, .. })
    ));
    assert!(out.writes.is_empty());
    // Unknown id: no mapping.
    assert_eq!(h.add("nobody", 0, &[tp("a", 0)]), 49);
    assert_eq!(h.end("nobody", 0, true).0, 49);
    init_ok(h.init("app"));
    assert_eq!(h.end("app", 0, true).0, 48, "nothing open to commit");
}

#[test]
fn verify_only_checks_the_open_transaction_without_writing() {
    let mut h = Harness::new();
    init_ok(h.init("app"));
    assert_eq!(h.add("app", 0, &[tp("a", 0)]), 0);
    let verified = h.coordinator.verify_partitions(
        "app",
        Producer { id: 1000, epoch: 0 },
        &[tp("a", 0), tp("a", 1)],
    );
    assert_eq!(verified, vec![(tp("a", 0), 0), (tp("a", 1), 48)]);
    assert_eq!(
        h.coordinator
            .verify_partitions("app", Producer { id: 1000, epoch: 3 }, &[tp("a", 0)]),
        vec![(tp("a", 0), 90)]
    );
    assert_eq!(
        h.coordinator
            .verify_partitions("nobody", Producer { id: 1, epoch: 0 }, &[tp("a", 0)]),
        vec![(tp("a", 0), 49)]
    );
}

/// xorshift64*: a schedule generator whose output never changes between versions.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random requests, write outcomes, markers and polls over a few ids. Checks that every request
/// is answered exactly once, that markers are only asked for decided transactions, and that a
/// coordinator replaying the durable records ends where this one is.
#[test]
fn random_schedules_answer_everything_once_and_memory_matches_the_log() {
    let seed: u64 = std::env::var("STROM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de);
    println!("transaction coordinator schedule seed: {seed} (replay with STROM_TEST_SEED={seed})");
    let mut rng = Rng(seed | 1);
    let ids = ["a", "b", "c"];
    let mut h = Harness::new();
    let mut now = NOW;
    let mut queued: std::collections::VecDeque<Write> = Default::default();
    let mut markers: Vec<Markers> = Vec::new();
    let mut answered: HashMap<RequestId, usize> = HashMap::new();
    let mut asked: Vec<RequestId> = Vec::new();
    let mut next_pid = 1000;
    let (mut commits, mut aborts, mut failed) = (0, 0, 0);

    let mut take = |out: Output,
                    queued: &mut std::collections::VecDeque<Write>,
                    markers: &mut Vec<Markers>,
                    coordinator: &Coordinator| {
        for (rid, _) in &out.responses {
            *answered.entry(*rid).or_default() += 1;
        }
        for m in &out.markers {
            let state = coordinator.describe(std::slice::from_ref(&m.transactional_id))[0].state;
            assert!(
                matches!(
                    state,
                    Some(TransactionState::PrepareCommit | TransactionState::PrepareAbort)
                ),
                "markers for {} in {state:?}",
                m.transactional_id
            );
        }
        queued.extend(out.writes);
        markers.extend(out.markers.iter().cloned());
        (answered.clone(), out.markers)
    };

    for _ in 0..20_000 {
        // Mostly well inside the timeout, now and then past it.
        now += if rng.below(50) == 0 {
            i64::from(TIMEOUT)
        } else {
            rng.below(300) as i64
        };
        let id = ids[rng.below(ids.len() as u64) as usize];
        let current = h.coordinator.describe(&[id.to_string()])[0].clone();
        let producer = Producer {
            id: if rng.below(10) == 0 {
                1
            } else {
                current.producer_id
            },
            epoch: current.producer_epoch - (rng.below(5) == 0) as i16,
        };
        let rid = h.rid();
        let out = match rng.below(9) {
            0 => {
                next_pid += 1;
                h.coordinator
                    .init_producer_id(now, rid, id, TIMEOUT, next_pid)
            }
            1 | 2 => {
                let p = tp("t", rng.below(4) as i32);
                h.coordinator.add_partitions(now, rid, id, producer, &[p])
            }
            3 => h.coordinator.add_offsets(now, rid, id, producer, "g"),
            4 => {
                let (commit, tv2) = (rng.below(2) == 0, rng.below(3) == 0);
                h.coordinator.end_txn(now, rid, id, producer, commit, tv2)
            }
            5 if !markers.is_empty() => {
                let m = markers.remove(rng.below(markers.len() as u64) as usize);
                let producer = Producer {
                    id: m.producer_id,
                    epoch: m.producer_epoch,
                };
                if m.commit {
                    commits += 1;
                } else {
                    aborts += 1;
                }
                let out = h
                    .coordinator
                    .markers_written(now, &m.transactional_id, producer);
                take(out, &mut queued, &mut markers, &h.coordinator);
                continue;
            }
            6 => {
                let out = h.coordinator.poll(now);
                take(out, &mut queued, &mut markers, &h.coordinator);
                continue;
            }
            _ => {
                // Settle the oldest write: usually durable, sometimes failed.
                if let Some(write) = queued.pop_front() {
                    let out = if rng.below(8) == 0 {
                        failed += 1;
                        h.coordinator.write_failed(write.id, codes::NOT_COORDINATOR)
                    } else {
                        h.log.push((write.partition, write.key, write.value));
                        h.coordinator.write_completed(write.id)
                    };
                    take(out, &mut queued, &mut markers, &h.coordinator);
                }
                continue;
            }
        };
        asked.push(rid);
        take(out, &mut queued, &mut markers, &h.coordinator);
    }
    // Quiesce: every write durable, every marker written, until nothing is left.
    loop {
        if let Some(write) = queued.pop_front() {
            h.log.push((write.partition, write.key, write.value));
            let out = h.coordinator.write_completed(write.id);
            take(out, &mut queued, &mut markers, &h.coordinator);
        } else if let Some(m) = markers.pop() {
            let producer = Producer {
                id: m.producer_id,
                epoch: m.producer_epoch,
            };
            let out = h
                .coordinator
                .markers_written(now, &m.transactional_id, producer);
            take(out, &mut queued, &mut markers, &h.coordinator);
        } else {
            break;
        }
    }
    let (answered, _) = take(Output::default(), &mut queued, &mut markers, &h.coordinator);
    println!(
        "{commits} commits and {aborts} aborts completed during the schedule, {failed} writes failed"
    );
    assert!(
        commits > 10 && aborts > 10 && failed > 10,
        "the schedule reaches commits, aborts and failures"
    );
    for rid in &asked {
        assert_eq!(answered.get(rid), Some(&1), "request {rid:?} answered once");
    }
    assert_eq!(
        answered.len(),
        asked.len(),
        "no answer to a request never asked"
    );

    let mut replayed = Coordinator::new(Config::default());
    for p in 0..50 {
        replayed.load_partition(p, EPOCH);
    }
    for (p, key, value) in &h.log {
        replayed.replay(*p, key, value.as_deref()).unwrap();
    }
    for p in 0..50 {
        replayed.finish_load(p);
    }
    let all: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    assert_eq!(replayed.describe(&all), h.coordinator.describe(&all));
    assert_eq!(replayed.list(&[], &[]), h.coordinator.list(&[], &[]));
}
