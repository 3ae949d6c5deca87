//! Test support for `mqtt-connect`, in one home for its tests, its fuzz targets and its
//! benches, which depend on this crate by path.
//!
//! - [`wire`]: raw CONNECT bytes built by hand, valid or not, encode-to-`Vec`, and the two
//!   assertions on decoding them.
//! - [`owned`]: a CONNECT as owned values, convertible to and from the borrowed
//!   [`mqtt_connect::Connect`], with `Arbitrary` (feature `arbitrary`) and a proptest
//!   strategy of valid packets (feature `proptest`).
//! - [`shapes`]: the packet shapes every bench decodes.
//! - [`connack_rewrite`]: what the proxy's CONNACK rewrite for sticky client ids must keep.
//! - [`proxy_header`]: what the proxy's PROXY protocol header reader must keep.
//! - `fuzz` (feature `arbitrary`): what each fuzz target checks; the targets in `fuzz/` and
//!   the corpus replay in `tests/fuzz_corpus.rs` both call it.
//! - `allocations` (feature `count-allocations`): this thread's allocations while a closure
//!   runs.
//!
//! The crate is never published. The library's package leaves out the tests and benches that
//! use it (see `exclude` in the root `Cargo.toml`), so the packaged crate's `cargo test` runs
//! without it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "count-allocations")]
mod alloc;
pub mod connack_rewrite;
#[cfg(feature = "arbitrary")]
pub mod fuzz;
pub mod owned;
pub mod proxy_header;
pub mod shapes;
pub mod wire;

#[cfg(feature = "count-allocations")]
pub use alloc::allocations;
