//! Where replicas should go: the pure planning behind `strom cluster rebalance` and
//! `strom cluster remove-broker`. No IO: it takes every partition's replicas and the brokers
//! that may hold them, and returns the partitions whose replicas change.
//!
//! A partition's first replica is its preferred leader (the one a preferred leader election
//! picks), so a plan balances two things: where replicas are (moving one copies the log) and
//! which replica comes first (reordering costs nothing but a leadership change).
//!
//! 1. **Evacuate** (`remove-broker`): each replica on the removed broker goes to the target
//!    broker with the fewest replicas (then, for a first replica, the fewest preferred
//!    leaderships; then the fewest replicas of the same topic; then the lowest id) that does
//!    not hold the partition yet. It keeps its position, so the replication factor and the
//!    order of the other replicas stay.
//! 2. **Spread replicas** (`rebalance`): while the target broker with the most replicas has
//!    at least two more than the one with the fewest, move one replica from the first to the
//!    second. Such a move always exists (the fuller broker holds at least two partitions the
//!    emptier one does not). Of the candidates it takes the partition whose topic is most
//!    over-represented on the fuller broker, preferring a replica that is not the preferred
//!    leader. Only over-full brokers give replicas away, so the number of moves is the
//!    smallest that evens the counts.
//! 3. **Spread preferred leaders**: a partition whose preferred leader is not a target broker
//!    puts its least-leading target replica first. Then, while some broker leads at least two
//!    more partitions than another it could hand leadership to, leadership shifts along a
//!    shortest chain of partitions (broker a leads p, which has replica b; b leads q, which
//!    has replica c; ...), each link moving one replica to the front of one partition.
//!
//! Replicas on brokers that are neither targets nor removed (fenced brokers, which may only be
//! restarting) stay where they are and are not counted. Each step strictly lowers the sum of
//! squared counts, so each ends; planning an already planned assignment changes nothing.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// A partition and its replicas, preferred leader first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Assignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
}

/// One partition the plan changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub topic: String,
    pub partition: i32,
    pub current: Vec<i32>,
    pub target: Vec<i32>,
}

impl Change {
    /// Replicas the target adds: each copies the partition's log from its leader.
    pub fn added(&self) -> Vec<i32> {
        minus(&self.target, &self.current)
    }

    /// Replicas the target drops once the added ones are in sync.
    pub fn removed(&self) -> Vec<i32> {
        minus(&self.current, &self.target)
    }

    /// Whether the target has another preferred leader.
    pub fn changes_preferred_leader(&self) -> bool {
        self.current.first() != self.target.first()
    }
}

/// The partitions whose replicas change, sorted by topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many replicas move (each one a copy of a log).
    pub fn replicas_moved(&self) -> usize {
        self.changes.iter().map(|c| c.added().len()).sum()
    }

    /// The assignment after the plan.
    pub fn apply(&self, assignments: &[Assignment]) -> Vec<Assignment> {
        assignments
            .iter()
            .map(|a| {
                let target = self
                    .changes
                    .iter()
                    .find(|c| c.topic == a.topic && c.partition == a.partition);
                Assignment {
                    replicas: target.map_or_else(|| a.replicas.clone(), |c| c.target.clone()),
                    ..a.clone()
                }
            })
            .collect()
    }
}

/// How many replicas and preferred leaderships each broker has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Load {
    pub replicas: usize,
    pub preferred_leaders: usize,
}

/// The load of every broker in `brokers` or named by an assignment.
pub fn loads(assignments: &[Assignment], brokers: &[i32]) -> BTreeMap<i32, Load> {
    let mut loads: BTreeMap<i32, Load> = brokers.iter().map(|&b| (b, Load::default())).collect();
    for a in assignments {
        for (i, &b) in a.replicas.iter().enumerate() {
            let load = loads.entry(b).or_default();
            load.replicas += 1;
            if i == 0 {
                load.preferred_leaders += 1;
            }
        }
    }
    loads
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no broker can take replicas")]
    NoBrokers,
    #[error(
        "topic '{topic}' has replication factor {replication_factor} but only {brokers} other broker(s) would remain"
    )]
    ReplicationFactor {
        topic: String,
        replication_factor: usize,
        brokers: usize,
    },
    #[error(
        "no broker can take the replica of {topic}-{partition} on broker {broker}: every other unfenced broker already holds {topic}-{partition}"
    )]
    NoRoom {
        topic: String,
        partition: i32,
        broker: i32,
    },
}

/// `rebalance`: spread replicas, then preferred leaders, evenly over `brokers` (the unfenced
/// ones), moving as few replicas as that takes.
pub fn rebalance(assignments: &[Assignment], brokers: &[i32]) -> Result<Plan, PlanError> {
    let mut work = Work::new(assignments, brokers, None)?;
    work.movable = vec![true; work.parts.len()];
    work.spread_replicas();
    work.spread_preferred_leaders();
    Ok(work.plan(assignments))
}

/// `remove-broker`: move every replica on `removed` to `brokers` (the unfenced brokers other
/// than `removed`), evenly, and spread the preferred leaders of the partitions that change.
/// `registered` is how many brokers other than `removed` are registered (fenced ones too):
/// fewer than some topic's replication factor is refused.
pub fn remove_broker(
    assignments: &[Assignment],
    brokers: &[i32],
    removed: i32,
    registered: usize,
) -> Result<Plan, PlanError> {
    if let Some(a) = assignments
        .iter()
        .filter(|a| a.replicas.len() > registered)
        .max_by_key(|a| a.replicas.len())
    {
        return Err(PlanError::ReplicationFactor {
            topic: a.topic.clone(),
            replication_factor: a.replicas.len(),
            brokers: registered,
        });
    }
    let brokers: Vec<i32> = brokers.iter().copied().filter(|&b| b != removed).collect();
    let mut work = Work::new(assignments, &brokers, Some(removed))?;
    work.evacuate(removed)?;
    work.spread_preferred_leaders();
    Ok(work.plan(assignments))
}

/// The assignment being planned, with counts kept up to date.
struct Work {
    /// Sorted by topic and partition, so every choice is deterministic.
    parts: Vec<Assignment>,
    /// Index of each part's topic in `topics`.
    topic_of: Vec<usize>,
    topics: usize,
    /// The target brokers, sorted.
    brokers: Vec<i32>,
    /// Partitions whose order the leader step may change.
    movable: Vec<bool>,
    replicas: HashMap<i32, usize>,
    /// Replicas per (topic, broker).
    topic_replicas: HashMap<(usize, i32), usize>,
}

impl Work {
    fn new(
        assignments: &[Assignment],
        brokers: &[i32],
        removed: Option<i32>,
    ) -> Result<Work, PlanError> {
        let has_work = removed.is_some_and(|r| assignments.iter().any(|a| a.replicas.contains(&r)));
        if brokers.is_empty() && (removed.is_none() || has_work) {
            return Err(PlanError::NoBrokers);
        }
        let mut parts = assignments.to_vec();
        parts.sort();
        let mut names: Vec<&str> = parts.iter().map(|a| a.topic.as_str()).collect();
        names.dedup();
        let topic_of = parts
            .iter()
            .map(|a| names.iter().position(|n| *n == a.topic).unwrap_or(0))
            .collect();
        let mut brokers = brokers.to_vec();
        brokers.sort_unstable();
        brokers.dedup();
        let mut work = Work {
            movable: vec![false; parts.len()],
            topics: names.len(),
            topic_of,
            parts,
            replicas: brokers.iter().map(|&b| (b, 0)).collect(),
            topic_replicas: HashMap::new(),
            brokers,
        };
        for i in 0..work.parts.len() {
            for b in work.parts[i].replicas.clone() {
                work.count(i, b, 1);
            }
        }
        Ok(work)
    }

    fn is_target(&self, broker: i32) -> bool {
        self.brokers.binary_search(&broker).is_ok()
    }

    /// Adds `delta` to the replica counts of `broker` for part `i`; others are not counted.
    fn count(&mut self, i: usize, broker: i32, delta: isize) {
        if !self.is_target(broker) {
            return;
        }
        let topic = self.topic_of[i];
        for n in [
            self.replicas.entry(broker).or_default(),
            self.topic_replicas.entry((topic, broker)).or_default(),
        ] {
            *n = n.saturating_add_signed(delta);
        }
    }

    fn topic_count(&self, i: usize, broker: i32) -> usize {
        let topic = self.topic_of[i];
        self.topic_replicas
            .get(&(topic, broker))
            .copied()
            .unwrap_or(0)
    }

    /// Replaces the replica at `position` of part `i` with `to`.
    fn replace(&mut self, i: usize, position: usize, to: i32) {
        let from = self.parts[i].replicas[position];
        self.count(i, from, -1);
        self.parts[i].replicas[position] = to;
        self.count(i, to, 1);
        self.movable[i] = true;
    }

    fn preferred_leaders(&self) -> HashMap<i32, usize> {
        let mut leaders: HashMap<i32, usize> = self.brokers.iter().map(|&b| (b, 0)).collect();
        for a in &self.parts {
            if let Some(first) = a.replicas.first()
                && let Some(n) = leaders.get_mut(first)
            {
                *n += 1;
            }
        }
        leaders
    }

    /// Step 1 (module docs).
    fn evacuate(&mut self, removed: i32) -> Result<(), PlanError> {
        let mut leaders = self.preferred_leaders();
        for i in 0..self.parts.len() {
            let Some(position) = self.parts[i].replicas.iter().position(|&b| b == removed) else {
                continue;
            };
            let to = self
                .brokers
                .iter()
                .copied()
                .filter(|b| !self.parts[i].replicas.contains(b))
                .min_by_key(|&b| {
                    let leads = if position == 0 { leaders[&b] } else { 0 };
                    (self.replicas[&b], leads, self.topic_count(i, b), b)
                })
                .ok_or_else(|| PlanError::NoRoom {
                    topic: self.parts[i].topic.clone(),
                    partition: self.parts[i].partition,
                    broker: removed,
                })?;
            if position == 0 {
                *leaders.entry(to).or_default() += 1;
            }
            self.replace(i, position, to);
        }
        Ok(())
    }

    /// Step 2 (module docs).
    fn spread_replicas(&mut self) {
        loop {
            let (Some(max), Some(min)) = (
                self.replicas.values().copied().max(),
                self.replicas.values().copied().min(),
            ) else {
                return;
            };
            if max - min <= 1 {
                return;
            }
            let fullest: Vec<i32> = self.brokers_with(max);
            let emptiest: Vec<i32> = self.brokers_with(min);
            // (topic surplus, not the preferred leader), then the first candidate in order.
            let mut best: Option<((isize, bool), usize, usize, i32)> = None;
            for i in 0..self.parts.len() {
                for &from in &fullest {
                    let Some(position) = self.parts[i].replicas.iter().position(|&b| b == from)
                    else {
                        continue;
                    };
                    for &to in &emptiest {
                        if self.parts[i].replicas.contains(&to) {
                            continue;
                        }
                        let surplus =
                            self.topic_count(i, from) as isize - self.topic_count(i, to) as isize;
                        let score = (surplus, position != 0);
                        if best.as_ref().is_none_or(|(s, ..)| score > *s) {
                            best = Some((score, i, position, to));
                        }
                    }
                }
            }
            let Some((_, i, position, to)) = best else {
                return;
            };
            self.replace(i, position, to);
        }
    }

    fn brokers_with(&self, count: usize) -> Vec<i32> {
        self.brokers
            .iter()
            .copied()
            .filter(|b| self.replicas[b] == count)
            .collect()
    }

    /// Step 3 (module docs).
    fn spread_preferred_leaders(&mut self) {
        let mut leaders = self.preferred_leaders();
        for i in 0..self.parts.len() {
            let first = self.parts[i].replicas.first().copied();
            if !self.movable[i] || first.is_none_or(|b| self.is_target(b)) {
                continue;
            }
            let candidate = self.parts[i]
                .replicas
                .iter()
                .copied()
                .filter(|&b| self.is_target(b))
                .min_by_key(|b| (leaders[b], *b));
            if let Some(b) = candidate {
                move_to_front(&mut self.parts[i].replicas, b);
                *leaders.entry(b).or_default() += 1;
            }
        }
        // Leaderships per (topic, broker), to prefer chains that even out a topic.
        let mut topic_leaders = vec![HashMap::<i32, usize>::new(); self.topics];
        for (i, a) in self.parts.iter().enumerate() {
            if let Some(&first) = a.replicas.first() {
                *topic_leaders[self.topic_of[i]].entry(first).or_default() += 1;
            }
        }
        while let Some(chain) = self.leadership_chain(&leaders, &topic_leaders) {
            for &(i, to) in &chain {
                let topic = self.topic_of[i];
                let from = self.parts[i].replicas[0];
                move_to_front(&mut self.parts[i].replicas, to);
                *topic_leaders[topic].entry(from).or_default() -= 1;
                *topic_leaders[topic].entry(to).or_default() += 1;
                *leaders.entry(from).or_default() -= 1;
                *leaders.entry(to).or_default() += 1;
            }
        }
    }

    /// A shortest chain from a broker leading the most partitions to one leading at least two
    /// fewer, as links `(part, its new preferred leader)`: the first part is led by the
    /// source, each next one by the previous link's new leader. `None` when there is none.
    fn leadership_chain(
        &self,
        leaders: &HashMap<i32, usize>,
        topic_leaders: &[HashMap<i32, usize>],
    ) -> Option<Vec<(usize, i32)>> {
        let max = leaders.values().copied().max()?;
        let sources: Vec<i32> = self
            .brokers
            .iter()
            .copied()
            .filter(|b| leaders[b] == max)
            .collect();
        for source in sources {
            // parent[b] = (previous broker, part) of the link that reached b.
            let mut parent: HashMap<i32, (i32, usize)> = HashMap::new();
            let mut queue = VecDeque::from([source]);
            while let Some(a) = queue.pop_front() {
                for (i, b) in self.links(a, topic_leaders) {
                    if b == source || parent.contains_key(&b) {
                        continue;
                    }
                    parent.insert(b, (a, i));
                    if leaders[&b] + 2 > max {
                        queue.push_back(b);
                        continue;
                    }
                    let mut chain = Vec::new();
                    let mut at = b;
                    while at != source {
                        let (prev, i) = parent[&at];
                        chain.push((i, at));
                        at = prev;
                    }
                    chain.reverse();
                    return Some(chain);
                }
            }
        }
        None
    }

    /// The links out of broker `a`: (part it leads, target replica that could lead it
    /// instead), those that even out their topic first.
    fn links(&self, a: i32, topic_leaders: &[HashMap<i32, usize>]) -> Vec<(usize, i32)> {
        let mut links: Vec<(isize, usize, i32)> = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            if !self.movable[i] || part.replicas.first() != Some(&a) {
                continue;
            }
            let leads = &topic_leaders[self.topic_of[i]];
            for &b in &part.replicas[1..] {
                if self.is_target(b) {
                    let surplus = leads.get(&a).copied().unwrap_or(0) as isize
                        - leads.get(&b).copied().unwrap_or(0) as isize;
                    links.push((-surplus, i, b));
                }
            }
        }
        links.sort();
        links.into_iter().map(|(_, i, b)| (i, b)).collect()
    }

    fn plan(self, original: &[Assignment]) -> Plan {
        let mut original = original.to_vec();
        original.sort();
        let changes = original
            .into_iter()
            .zip(self.parts)
            .filter(|(before, after)| before.replicas != after.replicas)
            .map(|(before, after)| Change {
                topic: before.topic,
                partition: before.partition,
                current: before.replicas,
                target: after.replicas,
            })
            .collect();
        Plan { changes }
    }
}

fn move_to_front(replicas: &mut Vec<i32>, broker: i32) {
    if let Some(position) = replicas.iter().position(|&b| b == broker) {
        let b = replicas.remove(position);
        replicas.insert(0, b);
    }
}

fn minus(list: &[i32], removed: &[i32]) -> Vec<i32> {
    list.iter()
        .copied()
        .filter(|b| !removed.contains(b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn topic(name: &str, replicas: &[&[i32]]) -> Vec<Assignment> {
        replicas
            .iter()
            .enumerate()
            .map(|(p, r)| Assignment {
                topic: name.into(),
                partition: p as i32,
                replicas: r.to_vec(),
            })
            .collect()
    }

    /// Kafka's placement of `partitions` partitions with `rf` replicas on brokers 1..=n.
    fn placed(name: &str, partitions: usize, rf: usize, n: i32) -> Vec<Assignment> {
        (0..partitions)
            .map(|p| Assignment {
                topic: name.into(),
                partition: p as i32,
                replicas: (0..rf).map(|r| ((p + r) as i32 % n) + 1).collect(),
            })
            .collect()
    }

    fn spread(counts: impl Iterator<Item = usize>) -> usize {
        let counts: Vec<usize> = counts.collect();
        counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0)
    }

    /// What every plan keeps: the same partitions, the same replication factor, no broker
    /// twice in a partition, and new replicas only on target brokers.
    fn check_invariants(before: &[Assignment], after: &[Assignment], targets: &[i32]) {
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(after) {
            assert_eq!((&b.topic, b.partition), (&a.topic, a.partition));
            assert_eq!(b.replicas.len(), a.replicas.len(), "{a:?}");
            let mut unique = a.replicas.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), a.replicas.len(), "a broker twice: {a:?}");
            for r in &a.replicas {
                assert!(
                    b.replicas.contains(r) || targets.contains(r),
                    "{r} is not a target: {a:?}"
                );
            }
        }
    }

    #[test]
    fn a_new_broker_gets_an_even_share_with_the_fewest_moves() {
        let before = placed("t", 6, 2, 3);
        let plan = rebalance(&before, &[1, 2, 3, 4]).unwrap();
        let after = plan.apply(&before);
        check_invariants(&before, &after, &[1, 2, 3, 4]);
        assert_eq!(plan.replicas_moved(), 3, "12 replicas, 3 each: {plan:?}");
        for c in &plan.changes {
            assert!(
                c.added().iter().all(|&b| b == 4),
                "only onto the new one: {c:?}"
            );
        }
        let loads = loads(&after, &[1, 2, 3, 4]);
        assert!(loads.values().all(|l| l.replicas == 3), "{loads:?}");
        assert!(
            spread(loads.values().map(|l| l.preferred_leaders)) <= 1,
            "{loads:?}"
        );
        assert!(loads[&4].preferred_leaders >= 1, "{loads:?}");
    }

    #[test]
    fn a_balanced_cluster_needs_no_change() {
        let before = placed("t", 6, 2, 3);
        assert_eq!(rebalance(&before, &[1, 2, 3]).unwrap(), Plan::default());
    }

    #[test]
    fn planning_a_planned_assignment_changes_nothing() {
        let before = [
            placed("a", 7, 3, 3),
            placed("b", 5, 2, 3),
            placed("c", 1, 1, 3),
        ]
        .concat();
        let brokers = [1, 2, 3, 4, 5];
        let after = rebalance(&before, &brokers).unwrap().apply(&before);
        assert_eq!(rebalance(&after, &brokers).unwrap(), Plan::default());
    }

    #[test]
    fn preferred_leaders_are_spread_by_reordering_without_moving_replicas() {
        // Four replicas on each broker, but broker 1 leads four partitions and 3 none.
        let before = topic("t", &[&[1, 2], &[1, 3], &[1, 2], &[1, 3], &[2, 3], &[2, 3]]);
        let plan = rebalance(&before, &[1, 2, 3]).unwrap();
        assert_eq!(plan.replicas_moved(), 0, "{plan:?}");
        let loads = loads(&plan.apply(&before), &[1, 2, 3]);
        assert!(
            loads.values().all(|l| l.preferred_leaders == 2),
            "{loads:?}"
        );
    }

    #[test]
    fn leadership_moves_along_a_chain_when_no_direct_swap_exists() {
        // Broker 1 leads three, broker 3 none, and no partition led by 1 has replica 3:
        // 1 hands a partition to 2, which hands one to 3.
        let before = topic("t", &[&[1, 2], &[1, 2], &[1, 2], &[2, 3], &[2, 3]]);
        let plan = rebalance(&before, &[1, 2, 3]).unwrap();
        let after = plan.apply(&before);
        let loads = loads(&after, &[1, 2, 3]);
        let leaders: Vec<usize> = loads.values().map(|l| l.preferred_leaders).collect();
        assert!(spread(leaders.iter().copied()) <= 1, "{leaders:?} {plan:?}");
    }

    #[test]
    fn replicas_on_fenced_brokers_stay_and_are_not_counted() {
        // Broker 3 is fenced: its replicas stay, and 1 and 2 even out between themselves.
        let before = topic("t", &[&[1, 3], &[1, 3], &[1, 2], &[1, 2]]);
        let plan = rebalance(&before, &[1, 2]).unwrap();
        let after = plan.apply(&before);
        check_invariants(&before, &after, &[1, 2]);
        assert!(after[0].replicas.contains(&3) && after[1].replicas.contains(&3));
        let loads = loads(&after, &[1, 2]);
        assert_eq!(
            (loads[&1].replicas, loads[&2].replicas),
            (3, 3),
            "{after:?}"
        );
    }

    #[test]
    fn removing_a_broker_moves_only_its_replicas_and_keeps_the_replication_factor() {
        let before = [placed("a", 8, 2, 4), placed("b", 4, 3, 4)].concat();
        let plan = remove_broker(&before, &[1, 2, 3, 4], 4, 3).unwrap();
        let after = plan.apply(&before);
        check_invariants(&before, &after, &[1, 2, 3]);
        assert!(after.iter().all(|a| !a.replicas.contains(&4)), "{after:?}");
        let on_4 = before.iter().filter(|a| a.replicas.contains(&4)).count();
        assert_eq!(plan.replicas_moved(), on_4, "one move per replica of 4");
        for c in &plan.changes {
            assert!(c.removed().iter().all(|&b| b == 4), "only 4 leaves: {c:?}");
        }
        let loads = loads(&after, &[1, 2, 3]);
        assert!(spread(loads.values().map(|l| l.replicas)) <= 1, "{loads:?}");
    }

    #[test]
    fn removing_a_broker_that_holds_nothing_plans_nothing() {
        let before = placed("t", 6, 2, 3);
        assert_eq!(
            remove_broker(&before, &[1, 2, 3, 4], 4, 3).unwrap(),
            Plan::default()
        );
    }

    #[test]
    fn removing_a_broker_refuses_when_fewer_brokers_than_the_replication_factor_remain() {
        let before = [placed("small", 2, 1, 3), placed("wide", 3, 3, 3)].concat();
        let err = remove_broker(&before, &[1, 2, 3], 3, 2).unwrap_err();
        assert_eq!(
            err,
            PlanError::ReplicationFactor {
                topic: "wide".into(),
                replication_factor: 3,
                brokers: 2
            }
        );
        assert!(err.to_string().contains("replication factor 3"), "{err}");
    }

    #[test]
    fn removing_a_broker_with_no_room_left_names_the_partition() {
        // Broker 2 is registered but fenced: only 1 remains as a target, and it already
        // holds t-0.
        let before = topic("t", &[&[1, 3]]);
        let err = remove_broker(&before, &[1, 3], 3, 2).unwrap_err();
        assert!(
            matches!(err, PlanError::NoRoom { partition: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn random_clusters_end_balanced_and_keep_every_invariant() {
        let seed: u64 = std::env::var("STROM_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| rand::rng().random());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..200 {
            let n = rng.random_range(1..=6);
            let mut before = Vec::new();
            for t in 0..rng.random_range(1..=4) {
                let rf = rng.random_range(1..=n);
                for p in 0..rng.random_range(1..=12) {
                    let mut brokers: Vec<i32> = (1..=n).collect();
                    let mut replicas = Vec::new();
                    for _ in 0..rf {
                        let i = rng.random_range(0..brokers.len());
                        replicas.push(brokers.remove(i));
                    }
                    before.push(Assignment {
                        topic: format!("t{t}"),
                        partition: p,
                        replicas,
                    });
                }
            }
            let grown: Vec<i32> = (1..=n + rng.random_range(0..=2)).collect();
            let plan = rebalance(&before, &grown).unwrap();
            let after = plan.apply(&before);
            let context = format!("seed {seed} (STROM_TEST_SEED replays): {before:?}");
            check_invariants(&before, &after, &grown);
            let loads = loads(&after, &grown);
            assert!(
                spread(loads.values().map(|l| l.replicas)) <= 1,
                "{loads:?} {context}"
            );
            assert_eq!(
                rebalance(&after, &grown).unwrap(),
                Plan::default(),
                "not idempotent: {context}"
            );
            if n >= 2 {
                let removed = rng.random_range(1..=n);
                let remaining: Vec<i32> = (1..=n).filter(|&b| b != removed).collect();
                let rf_max = after.iter().map(|a| a.replicas.len()).max().unwrap_or(0);
                match remove_broker(&after, &remaining, removed, remaining.len()) {
                    Ok(plan) => {
                        let emptied = plan.apply(&after);
                        check_invariants(&after, &emptied, &remaining);
                        assert!(
                            emptied.iter().all(|a| !a.replicas.contains(&removed)),
                            "{context}"
                        );
                    }
                    Err(e) => assert!(rf_max > remaining.len(), "{e}: {context}"),
                }
            }
        }
    }
}
