//! The public value types carry the traits a user keys, compares, copies and sends them by.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::num::NonZeroUsize;

use mqtt_connect::{Connack, Decoder, EncodeError, Error, Needed, Status};

fn value<T: Copy + Eq + Hash + Debug + Send + Sync + 'static>() {}

#[test]
fn statuses_errors_the_decoder_and_a_connack_are_plain_values() {
    value::<Status<usize>>();
    value::<Needed>();
    value::<Error>();
    value::<EncodeError>();
    value::<Decoder>();
    value::<Connack>();
}

/// A server that reads many connections counts how far each partial read got, keyed by the
/// decoder's answer.
#[test]
fn a_frame_status_keys_a_map() {
    let decoder = Decoder::new();
    let mut seen = HashMap::<Status<usize>, usize>::new();
    for input in [&b""[..], b"\x10", b"\x10\x0c", b"\x10\x0c\x00\x04"] {
        *seen.entry(decoder.frame(input).unwrap()).or_default() += 1;
    }
    assert_eq!(seen.get(&Status::Incomplete(Needed::Unknown)), Some(&2));
    assert_eq!(seen.get(&Status::Incomplete(Needed::Size(NonZeroUsize::new(12).unwrap()))), Some(&1));
    assert_eq!(seen.get(&Status::Incomplete(Needed::Size(NonZeroUsize::new(10).unwrap()))), Some(&1));
}
