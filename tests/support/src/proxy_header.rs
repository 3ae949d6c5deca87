//! What the `proxy_header` fuzz target checks: the proxy example's PROXY protocol header reader
//! and parser (`examples/proxy/proxy_header.rs`), with arbitrary bytes as the start of a
//! stream, read the way the listener reads them.
//!
//! The reader must never stall (ask for no bytes), never read past the header it measured, and
//! agree with itself as more bytes arrive; the parser must take any bytes without panicking, and
//! a header it takes must be as long as the reader measures.
//!
//! An example is not a library, so the reader is included here as source; it depends on
//! nothing but `ppp` and `crc`.

mod reader {
    #![allow(dead_code)]
    include!("../../../examples/proxy/proxy_header.rs");
}

use reader::{Next, next, parse};

/// The `proxy_header` target.
pub fn check(data: &[u8]) {
    // The reader as the listener runs it: ask, read what it asks for, ask again.
    let mut read = 0;
    let mut whole = None;
    while read <= data.len() {
        match next(&data[..read]) {
            Err(_) => break,
            Ok(Next::More(more)) => {
                assert!(more > 0, "asked for nothing after {read} bytes");
                assert!(whole.is_none(), "forgot the length it had measured");
                read += more;
            }
            Ok(Next::Whole(len)) => {
                assert!(len >= read, "measured {len} bytes after reading {read}");
                assert!(whole.is_none_or(|known| known == len), "the length changed");
                whole = Some(len);
                if read == len {
                    parse(&data[..len]).ok();
                    break;
                }
                read = len;
            }
        }
    }
    // Any bytes at all, as a whole header. The reader may refuse what the parser takes (its
    // length caps are tighter), but never measure it otherwise.
    if let (Ok(Some(_)), Ok(measured)) = (parse(data), next(data)) {
        assert_eq!(measured, Next::Whole(data.len()), "a parsed header is as long as measured");
    }
}
