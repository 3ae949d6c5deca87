//! The CONNECT and CONNACK packets as values: what the decoders hand out and the encoders
//! take.

mod connack;
mod connect;
mod fmt;
mod properties;
mod user_properties;

pub use connack::{ConnackPacket, ConnackProperties};
pub use connect::{Connect, Will};
pub use fmt::Summary;
pub use properties::{ConnectProperties, WillProperties};
pub use user_properties::{Iter, UserProperties};
