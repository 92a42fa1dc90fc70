//! UnregisterBroker (API 64): a broker leaves the cluster for good (`strom cluster
//! remove-broker`).
//!
//! Kafka unregisters a broker that still holds replicas and leaves its partitions pointing
//! at a broker id that no longer exists. Strom refuses instead: the operator first moves the
//! broker's replicas elsewhere with a reassignment (which `remove-broker` does), so no
//! partition ever names an unknown broker and no data is stranded on it.

use kafka_protocol::error::ResponseError;

use super::{ApiError, Controller, Decision};
use crate::ids::BrokerId;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

impl Controller {
    /// Decides an UnregisterBroker: BROKER_ID_NOT_REGISTERED for an unknown id,
    /// INVALID_REQUEST while the broker is still a replica of any partition, else the
    /// `UnregisterBroker` record.
    pub fn unregister_broker(
        &mut self,
        image: &MetadataImage,
        broker_id: BrokerId,
    ) -> Decision<Vec<MetadataRecord>> {
        let registration = image.brokers.get(&broker_id).ok_or_else(|| {
            ApiError::new(
                ResponseError::BrokerIdNotRegistered,
                format!("Broker ID {broker_id} is not currently registered"),
            )
        })?;
        let hosted: Vec<String> = image
            .topic_partitions()
            .filter(|(_, _, p)| p.replicas.contains(&broker_id))
            .map(|(t, partition, _)| format!("{}-{partition}", t.name))
            .collect();
        if !hosted.is_empty() {
            const SHOWN: usize = 5;
            let more = hosted.len().saturating_sub(SHOWN);
            let mut listed = hosted[..hosted.len().min(SHOWN)].join(", ");
            if more > 0 {
                listed.push_str(&format!(" and {more} more"));
            }
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!(
                    "Broker {broker_id} is still a replica of {} partition(s) ({listed}); reassign them to other brokers before unregistering it.",
                    hosted.len()
                ),
            ));
        }
        Ok(vec![MetadataRecord::UnregisterBroker {
            broker_id,
            broker_epoch: registration.broker_epoch,
        }])
    }
}
