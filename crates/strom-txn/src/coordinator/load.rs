//! Ownership of `__transaction_state` partitions: loading (replay), serving, unloading.

use super::*;

impl Coordinator {
    /// This broker became leader of `partition` at `coordinator_epoch`; replay follows.
    pub fn load_partition(&mut self, partition: i32, coordinator_epoch: i32) {
        self.drop_partition_state(partition);
        self.partitions.insert(
            partition,
            OwnedPartition {
                status: PartitionStatus::Loading,
                coordinator_epoch,
            },
        );
    }

    /// One record of the partition, in log order. A later record of an id replaces the
    /// earlier; a tombstone removes it.
    pub fn replay(
        &mut self,
        partition: i32,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> crate::Result<()> {
        if record::key_version(key).is_some_and(|v| v != record::KEY_VERSION) {
            // Kafka skips keys of unknown versions (left over by an aborted upgrade).
            return Ok(());
        }
        let id = record::decode_key(key)?;
        let Some(value) = value else {
            self.transactions.remove(&id);
            return Ok(());
        };
        let state = TxnTransition::from_record(&record::decode_value(value)?)?;
        debug_assert_eq!(self.partition_for(&id), partition);
        self.transactions
            .insert(id.clone(), TransactionMetadata::loaded(&id, state));
        Ok(())
    }

    /// The partition is replayed: serve it, and finish every transaction left in a Prepare
    /// state by sending its markers again.
    pub fn finish_load(&mut self, partition: i32) -> Output {
        let mut out = Output::default();
        let Some(owned) = self.partitions.get_mut(&partition) else {
            return out;
        };
        owned.status = PartitionStatus::Active;
        let epoch = owned.coordinator_epoch;
        let mut ids: Vec<&String> = self
            .transactions
            .keys()
            .filter(|id| {
                strom_group::partition_for_group(id, self.config.num_partitions) == partition
            })
            .collect();
        ids.sort();
        for id in ids {
            let txn = &self.transactions[id];
            if matches!(
                txn.state(),
                TransactionState::PrepareCommit | TransactionState::PrepareAbort
            ) {
                out.markers.push(markers_of(txn, epoch));
            }
        }
        out
    }

    /// Leadership of `partition` moved away: forget its ids, and answer NOT_COORDINATOR to
    /// every request still waiting for one of its writes (the write may or may not land; the
    /// client retries with the new coordinator, which replays whatever did).
    pub fn unload_partition(&mut self, partition: i32) -> Output {
        self.partitions.remove(&partition);
        let mut out = Output::default();
        let ids: Vec<WriteId> = self
            .writes
            .iter()
            .filter(|(_, w)| self.partition_for(&w.transactional_id) == partition)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(write) = self.writes.remove(&id)
                && let Some(response) = error_response(&write.purpose, codes::NOT_COORDINATOR)
            {
                out.responses.push(response);
            }
        }
        self.drop_partition_state(partition);
        out
    }

    pub(super) fn drop_partition_state(&mut self, partition: i32) {
        let partitions = self.config.num_partitions;
        self.transactions
            .retain(|id, _| strom_group::partition_for_group(id, partitions) != partition);
    }

    /// NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS when this broker cannot serve `id`.
    pub(super) fn check_owner(&self, transactional_id: &str) -> Result<i32, i16> {
        match self.partitions.get(&self.partition_for(transactional_id)) {
            Some(p) if p.status == PartitionStatus::Active => Ok(p.coordinator_epoch),
            Some(_) => Err(codes::COORDINATOR_LOAD_IN_PROGRESS),
            None => Err(codes::NOT_COORDINATOR),
        }
    }
}
