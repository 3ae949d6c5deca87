//! A 5.0 property block read whole: each property checked as it comes, and the User
//! Properties validated together, as one span, when their layout allows.

use crate::error::{Error, Field};
use crate::packet::UserProperties;
use crate::rules;
use crate::spec::{Block, Property};
use crate::values::{self, Properties, Value};
use crate::wire::{Reader, scan};

/// Reads a property block, handing each property but User Property to `set` once checked,
/// and keeping User Properties as validated bytes. `control` refuses control characters in
/// will property strings and in User Properties.
#[inline(always)] // once per block per decode; its loop is the block's whole cost
pub(crate) fn read<'a>(
    r: &mut Reader<'a>,
    block: Block,
    control: bool,
    mut set: impl FnMut(Property, Value<'a>),
) -> Result<UserProperties<'a>, Error> {
    let mut props = Properties::read_block(r, block)?;
    let bytes = props.bytes();
    let mut users = Users::default();
    let mut seen = 0u64;
    // A fault in a User Property before the one found is the first on the wire.
    let first_fault = |users: &Users, e| Err(users.finish(bytes, block, control).err().unwrap_or(e));
    loop {
        let start = props.position();
        let Some(item) = props.next() else { break };
        let (property, value) = match item {
            Ok(item) => item,
            Err(e) => return first_fault(&users, e),
        };
        if let Value::Pair(name, value) = value {
            // Framed here; `finish` validates all their strings together.
            users.push(start, props.position(), [name.len(), value.len()]);
            continue;
        }
        if let Err(e) = rules::property_at_most_once(&mut seen, property) {
            return first_fault(&users, e);
        }
        if let Err(e) = value.check(property) {
            return first_fault(&users, e);
        }
        if let (true, Block::Will, Value::Str(text)) = (control, block, value)
            && let Err(e) = rules::no_control_character(text, Field::Property(property))
        {
            return first_fault(&users, e);
        }
        set(property, value);
    }
    users.finish(bytes, block, control)
}

/// The span of a block that holds its User Properties, gathered while the block is read.
#[derive(Clone, Copy, Default)]
struct Users {
    start: Option<usize>,
    end: usize,
    len: usize,
    /// The span holds other properties too, or a length prefix of 128 or more: it cannot be
    /// validated whole.
    mixed: bool,
    /// Zero bytes in the span's length prefixes.
    zeros: usize,
}

impl Users {
    /// Records a User Property at `start..end` of the block, with the lengths of its name
    /// and value.
    #[inline(always)] // once per User Property, a few additions
    fn push(&mut self, start: usize, end: usize, lens: [usize; 2]) {
        self.mixed |= self.start.is_some_and(|_| start != self.end);
        self.start.get_or_insert(start);
        self.end = end;
        self.len = self.len.saturating_add(1);
        for len in lens {
            // Below 128, the high byte is 0, and the low one too when the string is empty.
            self.mixed |= len >= 0x80;
            self.zeros = self.zeros.saturating_add(1 + usize::from(len == 0));
        }
    }

    /// Validates every User Property string in `bytes`, the block's, then hands out their span.
    ///
    /// A span that is not `mixed` is checked whole, without a walk: one `from_utf8` call, and
    /// one count of its zero bytes. Outside the strings it holds only the id `&` and length
    /// bytes below 128, all ASCII, so a valid run splits into valid strings, and a zero byte
    /// the length prefixes do not account for is a U+0000 in a string. Any other span, a span that
    /// fails, or one that must be checked for control characters is walked with the block's
    /// iterator, each string validated by itself, so that the first fault is the one named.
    fn finish<'a>(&self, bytes: &'a [u8], block: Block, control: bool) -> Result<UserProperties<'a>, Error> {
        let Some(span) = self.start.and_then(|start| bytes.get(start..self.end)) else {
            return Ok(UserProperties::default());
        };
        let users = UserProperties::from_wire(span, self.len, block);
        if !self.mixed && !control && core::str::from_utf8(span).is_ok() {
            // `rules::no_null_character` [MQTT-1.5.4-2] for every string of the span at once.
            if scan::count_zero_bytes(span) != self.zeros {
                return Err(Error::NullCharacter { field: Field::Property(Property::UserProperty) });
            }
            return Ok(users);
        }
        let field = Field::Property(Property::UserProperty);
        for item in Properties::new(span, block) {
            if let (_, Value::Pair(name, value)) = item? {
                for text in [name, value] {
                    let text = values::well_formed(text, field)?;
                    rules::no_null_character(text, field)?;
                    if control {
                        rules::no_control_character(text, field)?;
                    }
                }
            }
        }
        Ok(users)
    }
}
