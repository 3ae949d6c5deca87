//! A strict, zero-copy decoder and encoder for the MQTT CONNECT packet, versions 3.1, 3.1.1
//! and 5.0, for the proxies and brokers that read the first packet of every connection.
//!
//! It is sans-IO, `no_std` and allocation-free: hand it the bytes received so far and it
//! answers [`Status::Complete`] with the packet and its length, [`Status::Incomplete`] with how
//! many bytes more, or an [`Error`] that names the fault and maps to the reason code a server
//! answers with. Strings and binary fields borrow from the input.
//!
//! ```
//! use mqtt_connect::{Decoder, Status};
//!
//! let bytes = b"\x10\x18\x00\x04MQTT\x04\xc2\x00\x3c\x00\x02c1\x00\x03bob\x00\x03pwd";
//! let decoder = Decoder::new().max_packet_size(64 * 1024);
//! match decoder.decode(bytes) {
//!     Ok(Status::Complete { packet, len }) => {
//!         assert_eq!(packet.client_id, "c1");
//!         assert_eq!(packet.username, Some("bob"));
//!         assert_eq!(packet.password, Some(&b"pwd"[..]));
//!         assert_eq!(len, bytes.len());
//!     }
//!     Ok(Status::Incomplete(_)) => { /* read more, then decode again */ }
//!     Err(e) => {
//!         // Answer as a broker would, in the client's version, then close.
//!         let _answer = e.connack(bytes);
//!     }
//! }
//! ```
//!
//! # Features
//!
//! - `routing` (default): the `routing` module, routing keys and weighted rendezvous hashing.
//! - `bytes`: `OwnedConnect` and `OwnedConnack` over `Bytes`, and `encode_to` a `BytesMut`;
//!   uses `alloc`.
//! - `tokio-util`: the `codec` module, `tokio_util` codecs for both sides of the handshake;
//!   implies `bytes`, uses `std`.
//! - `nom`: the `nom` module, a nom parser for the CONNECT to embed in larger ones.
//!
//! With `default-features = false` the crate depends on `thiserror` only. The decoder, encoder
//! and routing allocate nothing whatever the features.
//!
//! # Layout
//!
//! Each module uses only those below it, so the crate reads bottom-up:
//!
//! ```text
//! nom                       a nom parser over decode (feature nom)
//! codec                     tokio-util codecs over owned (feature tokio-util)
//! owned                     OwnedConnect, OwnedConnack over Bytes (feature bytes)
//! connack  routing          answering a CONNECT, CONNACK both ways; choosing a backend
//! decode   encode           bytes to Connect, Connect to bytes
//! packet                    Connect, Will, their properties, UserProperties, ConnackPacket
//! values                    UTF-8 strings, property values, the property block iterator
//! rules                     the standard's rules, one function each, named for it
//! wire                      Reader, Writer, Variable Byte Integers, scan kernels
//! error                     Field, Error, ReasonCode
//! spec                      Protocol, QoS, PayloadFormat, ConnectFlags, the property table
//!                           (CONNECT, will and CONNACK properties)
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "tokio-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio-util")))]
pub mod codec;
mod connack;
mod decode;
mod encode;
mod error;
#[cfg(feature = "nom")]
#[cfg_attr(docsrs, doc(cfg(feature = "nom")))]
pub mod nom;
#[cfg(feature = "bytes")]
mod owned;
mod packet;
#[cfg(feature = "routing")]
#[cfg_attr(docsrs, doc(cfg(feature = "routing")))]
pub mod routing;
mod rules;
mod spec;
mod values;
mod wire;

pub use connack::{Connack, protocol_of};
pub use decode::{Decoder, Needed, Status, decode};
pub use encode::EncodeError;
pub use error::{Error, Field, ReasonCode, UnknownReasonCode};
#[cfg(feature = "bytes")]
#[cfg_attr(docsrs, doc(cfg(feature = "bytes")))]
pub use owned::{OwnedConnack, OwnedConnect, OwnedWill};
pub use packet::{
    ConnackPacket, ConnackProperties, Connect, ConnectProperties, Iter as UserPropertiesIter, Summary,
    UserProperties, Will, WillProperties,
};
pub use spec::{PayloadFormat, Property, Protocol, QoS};

/// The README's examples, compiled and run as doc tests so that the README stays true.
// Its routing section needs `routing`, and its codec section `tokio-util`: without them, the
// package's own `cargo test` failed.
#[cfg(all(doctest, feature = "routing", feature = "tokio-util"))]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
