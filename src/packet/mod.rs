//! The CONNECT packet as values: what the decoder hands out and the encoder takes.

mod connect;
mod fmt;
mod properties;
mod user_properties;

pub use connect::{Connect, Will};
pub use fmt::Summary;
pub use properties::{ConnectProperties, WillProperties};
pub use user_properties::{Iter, UserProperties};
