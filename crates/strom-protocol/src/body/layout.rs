//! The layout of a non-flexible request body, learned from the codec, and the walk that checks a
//! body against it before the codec decodes it.
//!
//! # Learning a layout
//!
//! A non-flexible body is a sequence of fixed-size values, length-prefixed strings and bytes
//! (int16 or int32 prefix) and arrays (int32 count, then the elements). The codec reads it front
//! to back, each field with one call on its buffer, so decoding through [`Tracer`] records the
//! width of every read. A body of zeros decodes (every count is 0, every string empty) and gives
//! the reads of the top-level fields. Then, for each 2- or 4-byte read, the same body with that
//! field set to 1 is decoded again:
//!
//! - the same reads: a plain value;
//! - one more read of 1 byte right after it: a length prefix (a string, bytes, records);
//! - more reads right after it, the rest unchanged: a count, and the inserted reads are one
//!   element, whose own fields are learned the same way (with the count left at 1).
//!
//! Values never steer the codec's parse except counts and lengths, which is what makes this
//! exact; the tests learn every non-flexible version of every request the codec knows and check
//! that real encoded requests pass the walk.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use bytes::{Buf, Bytes};
use kafka_protocol::protocol::buf::ByteBuf;
use kafka_protocol::protocol::{Decodable, Request};

use super::BodyError;

/// One field of a non-flexible body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A fixed number of bytes: integers, booleans, uuids, floats (adjacent ones merged).
    Fixed(usize),
    /// A big-endian length of `prefix` bytes (int16 for strings, int32 for bytes and records),
    /// then that many bytes; -1 is null.
    Bytes { prefix: usize },
    /// An int32 count, then that many elements; -1 is null.
    Array {
        element: Vec<Field>,
        /// The fewest bytes one element can take: bounds the count by the bytes left.
        element_bytes_min: usize,
        /// The exact size of an element made only of fixed fields, skipped without a walk.
        element_fixed_bytes: Option<usize>,
    },
}

/// Size of the zeroed body the layouts are learned from; it only needs to hold one element of
/// every nested array.
const PROBE_BYTES: usize = 4096;

/// Arrays nest at most a few levels in Kafka's schemas; deeper means the learning went wrong.
const NESTING_MAX: usize = 8;

type Layouts = RwLock<HashMap<(i16, i16), Result<Arc<Vec<Field>>, String>>>;

/// The layout of `R` at a non-flexible `version`, learned on first use and kept.
pub fn layout<R: Request>(version: i16) -> Result<Arc<Vec<Field>>, BodyError> {
    static LAYOUTS: OnceLock<Layouts> = OnceLock::new();
    let layouts = LAYOUTS.get_or_init(Default::default);
    let key = (R::KEY, version);
    let known = layouts
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(&key)
        .cloned();
    // Learning runs outside the lock; two threads may both learn a layout the first time, and
    // they learn the same one.
    let learned = known.unwrap_or_else(|| {
        let learned = learn::<R>(version).map(Arc::new);
        layouts
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key, learned.clone());
        learned
    });
    learned.map_err(|reason| BodyError::NoLayout {
        api_key: R::KEY,
        version,
        reason,
    })
}

/// Learns the layout of `R` at `version` by decoding synthetic bodies.
pub fn learn<R: Decodable>(version: i16) -> Result<Vec<Field>, String> {
    let mut probe = vec![0u8; PROBE_BYTES];
    let reads = trace::<R>(&probe, version).ok_or("a body of zeros does not decode")?;
    let fields = learn_fields::<R>(version, &mut probe, &reads, 0, 0..reads.len(), 0)?;
    Ok(fields)
}

/// Learns the fields read by `reads[range]`, which start at byte `position` of `probe`.
fn learn_fields<R: Decodable>(
    version: i16,
    probe: &mut [u8],
    reads: &[usize],
    mut position: usize,
    range: std::ops::Range<usize>,
    depth: usize,
) -> Result<Vec<Field>, String> {
    if depth > NESTING_MAX {
        return Err(format!("arrays nested deeper than {NESTING_MAX}"));
    }
    let mut fields = Vec::new();
    for index in range {
        let width = reads[index];
        let field = if width == 2 || width == 4 {
            set_one(probe, position, width);
            let field = classify::<R>(version, probe, reads, position, index, depth);
            probe[position..position + width].fill(0);
            field?
        } else {
            Field::Fixed(width)
        };
        push_merged(&mut fields, field);
        position += width;
    }
    Ok(fields)
}

/// What the 2- or 4-byte read `reads[index]` at `position` is, given that `probe` now holds 1
/// there.
fn classify<R: Decodable>(
    version: i16,
    probe: &mut [u8],
    reads: &[usize],
    position: usize,
    index: usize,
    depth: usize,
) -> Result<Field, String> {
    let width = reads[index];
    let changed = trace::<R>(probe, version)
        .ok_or_else(|| format!("a body with 1 at byte {position} does not decode"))?;
    if changed == reads {
        return Ok(Field::Fixed(width));
    }
    let inserted = changed.len().saturating_sub(reads.len());
    let after = index + 1;
    if inserted == 0
        || changed[..after] != reads[..after]
        || changed[after + inserted..] != reads[after..]
    {
        return Err(format!(
            "setting the {width}-byte value at byte {position} to 1 changed the reads in a way \
             that is neither a length nor a count"
        ));
    }
    let element = &changed[after..after + inserted];
    if element == [1] {
        return Ok(Field::Bytes { prefix: width });
    }
    if width != 4 {
        return Err(format!("a {width}-byte count at byte {position}"));
    }
    let element = learn_fields::<R>(
        version,
        probe,
        &changed,
        position + width,
        after..after + inserted,
        depth + 1,
    )?;
    let element_bytes_min = element.iter().map(bytes_min).sum::<usize>();
    if element_bytes_min == 0 {
        return Err(format!("an element of zero bytes at byte {position}"));
    }
    let element_fixed_bytes = element
        .iter()
        .map(|field| match field {
            Field::Fixed(width) => Some(*width),
            _ => None,
        })
        .sum::<Option<usize>>();
    Ok(Field::Array {
        element,
        element_bytes_min,
        element_fixed_bytes,
    })
}

fn set_one(probe: &mut [u8], position: usize, width: usize) {
    probe[position..position + width].fill(0);
    probe[position + width - 1] = 1;
}

fn push_merged(fields: &mut Vec<Field>, field: Field) {
    if let (Some(Field::Fixed(last)), Field::Fixed(width)) = (fields.last_mut(), &field) {
        *last += width;
    } else {
        fields.push(field);
    }
}

fn bytes_min(field: &Field) -> usize {
    match field {
        Field::Fixed(width) => *width,
        Field::Bytes { prefix } => *prefix,
        Field::Array { .. } => 4,
    }
}

/// Checks `body` against `fields` without allocating: every length fits in the bytes that
/// follow it, every count times its element's smallest size too.
pub fn check(fields: &[Field], body: &[u8]) -> Result<(), BodyError> {
    let mut rest = body;
    check_fields(fields, &mut rest)
}

fn check_fields(fields: &[Field], rest: &mut &[u8]) -> Result<(), BodyError> {
    for field in fields {
        match field {
            Field::Fixed(width) => skip(rest, *width)?,
            Field::Bytes { prefix } => {
                let length = read_signed(rest, *prefix)?;
                match length {
                    -1 => {}
                    length if length < 0 => {
                        return Err(BodyError::Malformed(format!("negative length {length}")));
                    }
                    length => {
                        let length = length as usize;
                        if length > rest.len() {
                            return Err(BodyError::Oversized {
                                what: "length",
                                declared: length as u64,
                                remaining: rest.len(),
                            });
                        }
                        rest.advance(length);
                    }
                }
            }
            Field::Array {
                element,
                element_bytes_min,
                element_fixed_bytes,
            } => {
                let count = read_signed(rest, 4)?;
                if count == -1 {
                    continue;
                }
                if count < 0 {
                    return Err(BodyError::Malformed(format!("negative count {count}")));
                }
                let count = count as usize;
                if count > rest.len() / element_bytes_min {
                    return Err(BodyError::Oversized {
                        what: "array",
                        declared: count as u64,
                        remaining: rest.len(),
                    });
                }
                match element_fixed_bytes {
                    Some(width) => skip(rest, count * width)?,
                    None => {
                        for _ in 0..count {
                            check_fields(element, rest)?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn skip(rest: &mut &[u8], bytes: usize) -> Result<(), BodyError> {
    if rest.len() < bytes {
        return Err(BodyError::Malformed(format!(
            "{bytes} bytes needed, {} left",
            rest.len()
        )));
    }
    rest.advance(bytes);
    Ok(())
}

fn read_signed(rest: &mut &[u8], width: usize) -> Result<i64, BodyError> {
    if rest.len() < width {
        return Err(BodyError::Malformed(format!(
            "{width} bytes needed, {} left",
            rest.len()
        )));
    }
    Ok(match width {
        2 => i64::from(rest.get_i16()),
        _ => i64::from(rest.get_i32()),
    })
}

/// A buffer that records the width of every read the codec makes, in order. Reads of zero
/// bytes (an empty string's contents) are left out: they do not move the position.
struct Tracer<'a> {
    data: &'a [u8],
    position: usize,
    reads: Vec<usize>,
}

impl Buf for Tracer<'_> {
    fn remaining(&self) -> usize {
        self.data.len() - self.position
    }

    fn chunk(&self) -> &[u8] {
        &self.data[self.position..]
    }

    fn advance(&mut self, count: usize) {
        assert!(count <= self.remaining(), "advance past the end of a probe");
        if count > 0 {
            self.reads.push(count);
        }
        self.position += count;
    }
}

impl ByteBuf for Tracer<'_> {
    fn peek_bytes(&mut self, range: std::ops::Range<usize>) -> Bytes {
        Bytes::copy_from_slice(&self.chunk()[range])
    }

    fn get_bytes(&mut self, size: usize) -> Bytes {
        let bytes = Bytes::copy_from_slice(&self.chunk()[..size]);
        self.advance(size);
        bytes
    }
}

/// The widths of the reads that decode `data` as `R` at `version`, or `None` if it does not
/// decode.
fn trace<R: Decodable>(data: &[u8], version: i16) -> Option<Vec<usize>> {
    let mut tracer = Tracer {
        data,
        position: 0,
        reads: Vec::new(),
    };
    R::decode(&mut tracer, version).ok().map(|_| tracer.reads)
}
