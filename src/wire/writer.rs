//! A cursor that writes into a buffer sized beforehand, and says so when the size was wrong.

/// Writes forward into a buffer. A write that does not fit is remembered, not dropped in
/// silence: [`finish`](Self::finish) then fails, so a sizing bug can never hand back the
/// length of a corrupt packet.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    /// Bytes asked to be written, whether they fit or not.
    pos: usize,
    /// A write did not fit.
    overflow: bool,
}

/// The buffer a [`Writer`] was given did not match the bytes written into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overflow {
    /// The buffer's size.
    pub(crate) room: usize,
    /// Bytes asked to be written.
    pub(crate) written: usize,
}

impl<'b> Writer<'b> {
    /// A writer that must fill `buf` exactly.
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, pos: 0, overflow: false }
    }

    /// The bytes' length once the buffer is filled exactly; an [`Overflow`] when a write
    /// did not fit or the buffer is not full.
    pub(crate) fn finish(self) -> Result<usize, Overflow> {
        if self.overflow || self.pos != self.buf.len() {
            return Err(Overflow { room: self.buf.len(), written: self.pos });
        }
        Ok(self.pos)
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        let end = self.pos.saturating_add(bytes.len());
        match self.buf.get_mut(self.pos..end) {
            Some(out) => out.copy_from_slice(bytes),
            None => self.overflow = true,
        }
        self.pos = end;
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    /// Binary Data or a UTF-8 string: a u16 length, then the bytes. A length over 65,535 is
    /// an overflow too, never a length cut short.
    pub(crate) fn binary(&mut self, bytes: &[u8]) {
        match u16::try_from(bytes.len()) {
            Ok(len) => self.u16(len),
            Err(_) => self.overflow = true,
        }
        self.bytes(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_does_not_fit_fails_the_finish() {
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf);
        w.u16(1);
        w.u8(2);
        assert_eq!(w.finish(), Err(Overflow { room: 4, written: 3 }), "short of the buffer");
        let mut w = Writer::new(&mut buf);
        w.binary(b"abc");
        assert_eq!(w.finish(), Err(Overflow { room: 4, written: 5 }), "past the buffer");
        let mut w = Writer::new(&mut buf);
        w.binary(b"ab");
        assert_eq!(w.finish(), Ok(4));
        assert_eq!(buf, [0, 2, b'a', b'b']);
    }
}
