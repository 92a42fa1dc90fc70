//! Newtypes for the numbers of the metadata model that must never be mixed up: a broker id is
//! not a leader epoch, and a leader epoch is not a partition epoch, although all three are
//! `i32` on the wire. They serialize as the bare number, so records stay readable JSON.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }
    };
}

id_type!(
    /// A node's `node.id`: the same number names a broker and, in combined mode, its
    /// controller.
    BrokerId(i32)
);
id_type!(
    /// Bumped every time a partition's leader changes. Clients and followers use it to tell a
    /// stale leader from the current one.
    LeaderEpoch(i32)
);
id_type!(
    /// Bumped on every change of a partition's state (leader, replicas, in-sync replicas), so
    /// a change computed against an old state can be refused (AlterPartition).
    PartitionEpoch(i32)
);
id_type!(
    /// Identifies one registration of a broker: every start registers anew and gets a higher
    /// epoch, so heartbeats from a previous incarnation are refused.
    BrokerEpoch(i64)
);

impl BrokerId {
    /// "No broker": a partition without a leader, Kafka's -1.
    pub const NONE: BrokerId = BrokerId(-1);

    pub fn is_none(self) -> bool {
        self.0 < 0
    }
}

impl LeaderEpoch {
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl PartitionEpoch {
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// A position in the metadata log: the Raft term and index of an entry. Images carry the
/// position of the last entry replayed into them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct MetadataOffset {
    pub term: u64,
    pub index: u64,
}

impl std::fmt::Display for MetadataOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.term, self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_bare_numbers() {
        assert_eq!(serde_json::to_string(&BrokerId(3)).unwrap(), "3");
        assert_eq!(
            serde_json::from_str::<Vec<BrokerId>>("[1,2]").unwrap(),
            vec![BrokerId(1), BrokerId(2)]
        );
        assert!(BrokerId::NONE.is_none());
        assert_eq!(LeaderEpoch(4).next(), LeaderEpoch(5));
    }
}
