//! Bytes on the wire, with no MQTT rule in sight: a [`Reader`] cursor over a frame, a
//! [`Writer`] that cannot drop a byte unnoticed, Variable Byte Integers, and the scan kernels
//! that look for U+0000 and control characters fast.

mod reader;
pub(crate) mod scan;
pub(crate) mod vbi;
mod writer;

pub(crate) use reader::Reader;
pub(crate) use writer::Writer;
