//! The image as it will be once the records decided so far are applied.
//!
//! One decision often builds on another: unfencing a broker and then electing it, or creating
//! the second topic of a request after the first. [`Pending`] replays each record into a copy
//! of the committed image as it is decided, so the next step sees its effect. The copy is made
//! only when the first record arrives: most heartbeats decide nothing and copy nothing.

use std::borrow::Cow;

use crate::image::MetadataImage;
use crate::records::MetadataRecord;

pub(crate) struct Pending<'a> {
    image: Cow<'a, MetadataImage>,
    records: Vec<MetadataRecord>,
}

impl<'a> Pending<'a> {
    pub(crate) fn new(image: &'a MetadataImage) -> Self {
        Pending {
            image: Cow::Borrowed(image),
            records: Vec::new(),
        }
    }

    /// The committed image with every record pushed so far replayed into it.
    pub(crate) fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub(crate) fn push(&mut self, record: MetadataRecord) {
        self.image.to_mut().replay(&record);
        self.records.push(record);
    }

    pub(crate) fn extend(&mut self, records: impl IntoIterator<Item = MetadataRecord>) {
        for record in records {
            self.push(record);
        }
    }

    pub(crate) fn into_records(self) -> Vec<MetadataRecord> {
        self.records
    }
}
