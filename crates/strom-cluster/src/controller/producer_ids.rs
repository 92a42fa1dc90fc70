//! Producer id blocks: a broker reserves a range of producer ids for its idempotent and
//! transactional producers (Kafka's AllocateProducerIds), and the metadata log remembers the
//! next free id so that no two brokers ever hand out the same one.
//!
//! The controller hands out blocks of [`PRODUCER_ID_BLOCK_SIZE`] to registered brokers only,
//! checking the broker epoch as a heartbeat does, so a previous incarnation cannot reserve
//! ids it will never use.

use kafka_protocol::error::ResponseError;

use super::lifecycle::registration_for;
use super::{ApiError, Controller, Decision};
use crate::ids::{BrokerEpoch, BrokerId};
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Reserves `count` producer ids for a broker: returns the first id and the record.
pub fn allocate_producer_ids(
    image: &MetadataImage,
    broker_id: BrokerId,
    count: i64,
) -> (i64, MetadataRecord) {
    let first = image.next_producer_id;
    (
        first,
        MetadataRecord::ProducerIds {
            broker_id,
            next_producer_id: first + count,
        },
    )
}

impl Controller {
    /// AllocateProducerIds: a block of [`PRODUCER_ID_BLOCK_SIZE`] ids for a registered
    /// broker. Returns the first id, the block size and the record that reserves them.
    pub fn allocate_producer_ids(
        &self,
        image: &MetadataImage,
        broker_id: BrokerId,
        broker_epoch: BrokerEpoch,
    ) -> Decision<(i64, i64, MetadataRecord)> {
        registration_for(image, broker_id, broker_epoch)?;
        if image.next_producer_id > i64::MAX - PRODUCER_ID_BLOCK_SIZE {
            return Err(ApiError::new(
                ResponseError::UnknownServerError,
                "Exhausted all producerIds as the next block's end producerId will exceed the long type limit",
            ));
        }
        let (first, record) = allocate_producer_ids(image, broker_id, PRODUCER_ID_BLOCK_SIZE);
        Ok((first, PRODUCER_ID_BLOCK_SIZE, record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::ControllerConfig;

    #[test]
    fn producer_id_blocks_do_not_overlap() {
        let mut image = MetadataImage::default();
        let (first, record) = allocate_producer_ids(&image, BrokerId(1), 1000);
        image.replay(&record);
        let (second, _) = allocate_producer_ids(&image, BrokerId(2), 1000);
        assert_eq!((first, second), (0, 1000));
    }

    #[test]
    fn only_the_current_incarnation_of_a_registered_broker_gets_a_block() {
        let mut image = MetadataImage::default();
        image.replay(&MetadataRecord::RegisterBroker {
            broker_id: BrokerId(1),
            broker_epoch: BrokerEpoch(5),
            incarnation_id: uuid::Uuid::from_u128(1),
            endpoints: vec![],
            rack: None,
            fenced: false,
        });
        let controller = Controller::new(ControllerConfig::default(), 0);
        let (first, count, record) = controller
            .allocate_producer_ids(&image, BrokerId(1), BrokerEpoch(5))
            .unwrap();
        assert_eq!((first, count), (0, PRODUCER_ID_BLOCK_SIZE));
        image.replay(&record);
        let (next, _, _) = controller
            .allocate_producer_ids(&image, BrokerId(1), BrokerEpoch(5))
            .unwrap();
        assert_eq!(next, PRODUCER_ID_BLOCK_SIZE);
        let stale = controller.allocate_producer_ids(&image, BrokerId(1), BrokerEpoch(4));
        assert_eq!(stale.unwrap_err().error, ResponseError::StaleBrokerEpoch);
        let unknown = controller.allocate_producer_ids(&image, BrokerId(2), BrokerEpoch(5));
        assert_eq!(
            unknown.unwrap_err().error,
            ResponseError::BrokerIdNotRegistered
        );
    }
}
