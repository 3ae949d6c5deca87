//! A CONNECT (and a CONNACK) that owns its frame, for the tasks and structs a borrowed
//! [`Connect`] cannot live in: split off the read buffer, validated once, then read for as long
//! as it is kept.

extern crate alloc;

use alloc::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::decode::{Decoder, Status};
use crate::encode::EncodeError;
use crate::error::{Error, ReasonCode};
use crate::packet::{ConnackPacket, ConnackProperties, Connect, UserProperties, Will};
use crate::spec::{Block, PayloadFormat, Protocol, QoS};

/// A decoded CONNECT that owns its bytes: `'static`, `Send + Sync`, and cheap to clone (two
/// reference counts).
///
/// Built by splitting the frame off the read buffer ([`OwnedConnect::split_from`]), it is
/// decoded and validated once. What it stores is where each field lies in the frame, and the
/// numbers: a field is then read as `&str` or `&[u8]`, or as a [`Bytes`] that shares the frame
/// and copies nothing (the `*_bytes` methods). Reading a string checks that one string's
/// UTF-8 again, as this crate has no `unsafe` to skip it: the cost of its length, never of the
/// packet. [`OwnedConnect::frame`] is the packet as received, ready to forward.
///
/// ```
/// use bytes::BytesMut;
/// use mqtt_connect::{Decoder, OwnedConnect, Status};
///
/// let mut buf = BytesMut::from(&b"\x10\x18\x00\x04MQTT\x04\xc2\x00\x3c\x00\x02c1\x00\x03bob\x00\x03pwdNEXT"[..]);
/// let Status::Complete { packet: connect, len } = OwnedConnect::split_from(&Decoder::new(), &mut buf)? else {
///     unreachable!("the packet is whole")
/// };
/// assert_eq!((connect.client_id(), connect.username()), ("c1", Some("bob")));
/// assert_eq!(connect.frame().len(), len);
/// assert_eq!(&buf[..], b"NEXT"); // what followed the CONNECT stays in the buffer
///
/// // Zero-copy: the user name as `Bytes` is a view of the frame.
/// let username = connect.username_bytes().unwrap();
/// assert!(connect.frame().as_ptr_range().contains(&username.as_ptr()));
/// # Ok::<(), mqtt_connect::Error>(())
/// ```
#[derive(Clone)]
pub struct OwnedConnect {
    frame: Bytes,
    layout: Arc<Layout>,
}

/// Where a field lies in the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The span of `part`, a slice of `frame`.
    fn of(frame: &[u8], part: &[u8]) -> Self {
        // Address arithmetic only, no pointer is made: `part` was decoded out of `frame`.
        let start = part.as_ptr().addr().wrapping_sub(frame.as_ptr().addr());
        Self { start, end: start.saturating_add(part.len()) }
    }
}

/// Everything but the bytes: numbers as decoded, fields as spans.
#[derive(Debug)]
struct Layout {
    protocol: Protocol,
    bridge: bool,
    clean_start: bool,
    keep_alive: u16,
    client_id: Span,
    username: Option<Span>,
    password: Option<Span>,
    will: Option<WillLayout>,
    session_expiry_interval: Option<u32>,
    receive_maximum: Option<u16>,
    maximum_packet_size: Option<u32>,
    topic_alias_maximum: Option<u16>,
    request_response_information: Option<bool>,
    request_problem_information: Option<bool>,
    authentication_method: Option<Span>,
    authentication_data: Option<Span>,
    user_properties: Users,
}

#[derive(Debug)]
struct WillLayout {
    qos: QoS,
    retain: bool,
    topic: Span,
    payload: Span,
    will_delay_interval: Option<u32>,
    payload_format: Option<PayloadFormat>,
    message_expiry_interval: Option<u32>,
    content_type: Option<Span>,
    response_topic: Option<Span>,
    correlation_data: Option<Span>,
    user_properties: Users,
}

/// User Properties as the decoder left them: the validated span of the block that holds
/// them, how many there are, and which block; `None` when there are none.
#[derive(Clone, Copy, Debug)]
struct Users(Option<(Span, usize, Block)>);

impl Users {
    fn of(frame: &[u8], users: &UserProperties<'_>) -> Self {
        Self(users.wire().map(|(bytes, len, block)| (Span::of(frame, bytes), len, block)))
    }
}

impl Layout {
    fn of(frame: &[u8], c: &Connect<'_>) -> Self {
        let span = |part: &[u8]| Span::of(frame, part);
        let p = &c.properties;
        Self {
            protocol: c.protocol,
            bridge: c.bridge,
            clean_start: c.clean_start,
            keep_alive: c.keep_alive,
            client_id: span(c.client_id.as_bytes()),
            username: c.username.map(|u| span(u.as_bytes())),
            password: c.password.map(span),
            will: c.will.map(|w| {
                let p = &w.properties;
                WillLayout {
                    qos: w.qos,
                    retain: w.retain,
                    topic: span(w.topic.as_bytes()),
                    payload: span(w.payload),
                    will_delay_interval: p.will_delay_interval,
                    payload_format: p.payload_format,
                    message_expiry_interval: p.message_expiry_interval,
                    content_type: p.content_type.map(|t| span(t.as_bytes())),
                    response_topic: p.response_topic.map(|t| span(t.as_bytes())),
                    correlation_data: p.correlation_data.map(span),
                    user_properties: Users::of(frame, &p.user_properties),
                }
            }),
            session_expiry_interval: p.session_expiry_interval,
            receive_maximum: p.receive_maximum,
            maximum_packet_size: p.maximum_packet_size,
            topic_alias_maximum: p.topic_alias_maximum,
            request_response_information: p.request_response_information,
            request_problem_information: p.request_problem_information,
            authentication_method: p.authentication_method.map(|m| span(m.as_bytes())),
            authentication_data: p.authentication_data.map(span),
            user_properties: Users::of(frame, &p.user_properties),
        }
    }
}

/// Reads spans out of a frame.
#[derive(Clone, Copy)]
struct Reader<'a>(&'a Bytes);

impl<'a> Reader<'a> {
    fn bin(self, span: Span) -> &'a [u8] {
        self.0.get(span.start..span.end).unwrap_or_default()
    }

    /// A span the decoder validated as UTF-8, so the check cannot fail.
    fn text(self, span: Span) -> &'a str {
        core::str::from_utf8(self.bin(span)).unwrap_or_default()
    }

    fn bytes(self, span: Span) -> Bytes {
        self.0.slice_ref(self.bin(span))
    }

    /// The borrowed User Properties, over the span the decoder validated: no decode again.
    fn users(self, users: Users) -> UserProperties<'a> {
        match users.0 {
            Some((span, len, block)) => UserProperties::from_wire(self.bin(span), len, block),
            None => UserProperties::default(),
        }
    }

    fn pair_bytes(self, users: Users) -> impl ExactSizeIterator<Item = (Bytes, Bytes)> + 'a {
        self.users(users)
            .iter()
            .map(move |(name, value)| (self.0.slice_ref(name.as_bytes()), self.0.slice_ref(value.as_bytes())))
    }
}

impl OwnedConnect {
    /// Frames the CONNECT at the front of `buf` and, once it is whole, decodes it, splits it
    /// off `buf` and keeps it; what follows it stays in `buf`.
    ///
    /// `Incomplete` and errors leave `buf` as it was, so that
    /// [`Error::connack`](crate::Error::connack) can still read the client's version from it.
    ///
    /// The frame shares `buf`'s allocation, as `BytesMut::split_to` does, and keeps all of it
    /// alive while the CONNECT lives. To keep a small CONNECT for a connection's life without
    /// the read buffer, decode a copy of its frame with [`decode`](Self::decode)
    /// (`Bytes::copy_from_slice(connect.frame())`).
    ///
    /// A tokio read loop, the CONNECT decoded once:
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use mqtt_connect::{Decoder, OwnedConnect, Status};
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// use tokio::net::TcpStream;
    ///
    /// /// The CONNECT of a new connection; `buf` keeps what the client sent after it.
    /// async fn read_connect(socket: &mut TcpStream, buf: &mut BytesMut) -> Result<OwnedConnect, Box<dyn std::error::Error>> {
    ///     let decoder = Decoder::new().max_packet_size(64 * 1024);
    ///     loop {
    ///         match OwnedConnect::split_from(&decoder, buf) {
    ///             Ok(Status::Complete { packet, .. }) => return Ok(packet),
    ///             Ok(Status::Incomplete(_)) => {}
    ///             Err(e) => {
    ///                 if let Some(ack) = e.connack(buf) {
    ///                     socket.write_all(ack.as_bytes()).await?; // refused, in the client's version
    ///                 }
    ///                 return Err(e.into());
    ///             }
    ///         }
    ///         if socket.read_buf(buf).await? == 0 {
    ///             return Err("closed before a whole CONNECT".into());
    ///         }
    ///     }
    /// }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// #     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    /// #     let (mut socket, _) = listener.accept().await?;
    /// #     client.write_all(b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1\xc0\x00").await?;
    /// #     let mut buf = BytesMut::new();
    /// #     let connect = read_connect(&mut socket, &mut buf).await?;
    /// #     assert_eq!(connect.client_id(), "c1");
    /// #     assert_eq!(&buf[..], b"\xc0\x00");
    /// #     Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn split_from(decoder: &Decoder, buf: &mut BytesMut) -> Result<Status<Self>, Error> {
        let len = match decoder.frame(buf)? {
            Status::Complete { len, .. } => len,
            Status::Incomplete(needed) => return Ok(Status::Incomplete(needed)),
        };
        let layout = match decoder.decode(buf.get(..len).unwrap_or_default())? {
            Status::Complete { packet, .. } => Layout::of(&buf[..], &packet),
            Status::Incomplete(needed) => return Ok(Status::Incomplete(needed)),
        };
        let frame = buf.split_to(len).freeze();
        Ok(Status::Complete { packet: Self { frame, layout: Arc::new(layout) }, len })
    }

    /// Decodes the CONNECT at the front of `bytes` and keeps its frame, a view of `bytes`
    /// that copies nothing; the `len` of `Complete` is the frame's length.
    pub fn decode(decoder: &Decoder, bytes: &Bytes) -> Result<Status<Self>, Error> {
        match decoder.decode(bytes)? {
            Status::Complete { packet, len } => {
                let layout = Arc::new(Layout::of(bytes, &packet));
                Ok(Status::Complete { packet: Self { frame: bytes.slice(..len), layout }, len })
            }
            Status::Incomplete(needed) => Ok(Status::Incomplete(needed)),
        }
    }

    /// The packet as received, fixed header included: forward it as it is.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The frame, dropping the rest.
    pub fn into_frame(self) -> Bytes {
        self.frame
    }

    /// The packet as a borrowed [`Connect`], for the routing keys, the encoder, and anything
    /// else that takes one.
    ///
    /// Built from the stored positions, not decoded again: each string's UTF-8 is checked
    /// once more, as every accessor does, and User Properties are read lazily as in a decoded
    /// packet.
    pub fn connect(&self) -> Connect<'_> {
        let (r, l) = (self.read(), &*self.layout);
        let mut c = Connect::new(l.protocol, r.text(l.client_id));
        c.bridge = l.bridge;
        c.clean_start = l.clean_start;
        c.keep_alive = l.keep_alive;
        c.username = l.username.map(|s| r.text(s));
        c.password = l.password.map(|s| r.bin(s));
        c.will = self.will().map(|w| w.to_will());
        let p = &mut c.properties;
        p.session_expiry_interval = l.session_expiry_interval;
        p.receive_maximum = l.receive_maximum;
        p.maximum_packet_size = l.maximum_packet_size;
        p.topic_alias_maximum = l.topic_alias_maximum;
        p.request_response_information = l.request_response_information;
        p.request_problem_information = l.request_problem_information;
        p.authentication_method = l.authentication_method.map(|s| r.text(s));
        p.authentication_data = l.authentication_data.map(|s| r.bin(s));
        p.user_properties = r.users(l.user_properties);
        c
    }

    fn read(&self) -> Reader<'_> {
        Reader(&self.frame)
    }

    /// The version.
    pub fn protocol(&self) -> Protocol {
        self.layout.protocol
    }

    /// Whether the level byte had the bridge bit.
    pub fn bridge(&self) -> bool {
        self.layout.bridge
    }

    /// Clean Start in 5.0, Clean Session in 3.x.
    pub fn clean_start(&self) -> bool {
        self.layout.clean_start
    }

    /// Seconds between control packets; 0 turns keep-alive off.
    pub fn keep_alive(&self) -> u16 {
        self.layout.keep_alive
    }

    /// The Client Identifier.
    pub fn client_id(&self) -> &str {
        self.read().text(self.layout.client_id)
    }

    /// The Client Identifier, sharing the frame.
    pub fn client_id_bytes(&self) -> Bytes {
        self.read().bytes(self.layout.client_id)
    }

    /// The User Name.
    pub fn username(&self) -> Option<&str> {
        self.layout.username.map(|s| self.read().text(s))
    }

    /// The User Name, sharing the frame.
    pub fn username_bytes(&self) -> Option<Bytes> {
        self.layout.username.map(|s| self.read().bytes(s))
    }

    /// The Password.
    pub fn password(&self) -> Option<&[u8]> {
        self.layout.password.map(|s| self.read().bin(s))
    }

    /// The Password, sharing the frame.
    pub fn password_bytes(&self) -> Option<Bytes> {
        self.layout.password.map(|s| self.read().bytes(s))
    }

    /// The will, when the will flag is set.
    pub fn will(&self) -> Option<OwnedWill<'_>> {
        self.layout.will.as_ref().map(|layout| OwnedWill { read: self.read(), layout })
    }

    /// Session Expiry Interval (5.0).
    pub fn session_expiry_interval(&self) -> Option<u32> {
        self.layout.session_expiry_interval
    }

    /// Receive Maximum (5.0).
    pub fn receive_maximum(&self) -> Option<u16> {
        self.layout.receive_maximum
    }

    /// Maximum Packet Size (5.0).
    pub fn maximum_packet_size(&self) -> Option<u32> {
        self.layout.maximum_packet_size
    }

    /// Topic Alias Maximum (5.0).
    pub fn topic_alias_maximum(&self) -> Option<u16> {
        self.layout.topic_alias_maximum
    }

    /// Request Response Information (5.0).
    pub fn request_response_information(&self) -> Option<bool> {
        self.layout.request_response_information
    }

    /// Request Problem Information (5.0).
    pub fn request_problem_information(&self) -> Option<bool> {
        self.layout.request_problem_information
    }

    /// Authentication Method (5.0).
    pub fn authentication_method(&self) -> Option<&str> {
        self.layout.authentication_method.map(|s| self.read().text(s))
    }

    /// Authentication Method (5.0), sharing the frame.
    pub fn authentication_method_bytes(&self) -> Option<Bytes> {
        self.layout.authentication_method.map(|s| self.read().bytes(s))
    }

    /// Authentication Data (5.0).
    pub fn authentication_data(&self) -> Option<&[u8]> {
        self.layout.authentication_data.map(|s| self.read().bin(s))
    }

    /// Authentication Data (5.0), sharing the frame.
    pub fn authentication_data_bytes(&self) -> Option<Bytes> {
        self.layout.authentication_data.map(|s| self.read().bytes(s))
    }

    /// The CONNECT's User Properties (5.0), in wire order.
    pub fn user_properties(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.read().users(self.layout.user_properties).iter()
    }

    /// The CONNECT's User Properties (5.0), in wire order, sharing the frame.
    pub fn user_properties_bytes(&self) -> impl ExactSizeIterator<Item = (Bytes, Bytes)> + '_ {
        self.read().pair_bytes(self.layout.user_properties)
    }

    /// The value of the first CONNECT User Property named `name`.
    pub fn user_property(&self, name: &str) -> Option<&str> {
        self.user_properties().find(|&(n, _)| n == name).map(|(_, value)| value)
    }
}

impl core::fmt::Debug for OwnedConnect {
    /// The borrowed packet's `Debug`, and the frame's length.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OwnedConnect")
            .field("len", &self.frame.len())
            .field("packet", &self.connect())
            .finish()
    }
}

impl PartialEq for OwnedConnect {
    /// Two packets are equal when their frames are.
    fn eq(&self, other: &Self) -> bool {
        self.frame == other.frame
    }
}

impl Eq for OwnedConnect {}

/// Hashes the frame, as equality compares it.
impl core::hash::Hash for OwnedConnect {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.frame.hash(state);
    }
}

/// The will of an [`OwnedConnect`], read from its frame.
#[derive(Clone, Copy)]
pub struct OwnedWill<'a> {
    read: Reader<'a>,
    layout: &'a WillLayout,
}

impl<'a> OwnedWill<'a> {
    /// The borrowed [`Will`], from the stored positions.
    fn to_will(self) -> Will<'a> {
        let (r, l) = (self.read, self.layout);
        let mut will = Will::new(r.text(l.topic), r.bin(l.payload));
        will.qos = l.qos;
        will.retain = l.retain;
        let p = &mut will.properties;
        p.will_delay_interval = l.will_delay_interval;
        p.payload_format = l.payload_format;
        p.message_expiry_interval = l.message_expiry_interval;
        p.content_type = l.content_type.map(|s| r.text(s));
        p.response_topic = l.response_topic.map(|s| r.text(s));
        p.correlation_data = l.correlation_data.map(|s| r.bin(s));
        p.user_properties = r.users(l.user_properties);
        will
    }

    /// The QoS to publish it with.
    pub fn qos(&self) -> QoS {
        self.layout.qos
    }

    /// Whether to publish it retained.
    pub fn retain(&self) -> bool {
        self.layout.retain
    }

    /// The Will Topic.
    pub fn topic(&self) -> &'a str {
        self.read.text(self.layout.topic)
    }

    /// The Will Topic, sharing the frame.
    pub fn topic_bytes(&self) -> Bytes {
        self.read.bytes(self.layout.topic)
    }

    /// The Will Payload.
    pub fn payload(&self) -> &'a [u8] {
        self.read.bin(self.layout.payload)
    }

    /// The Will Payload, sharing the frame.
    pub fn payload_bytes(&self) -> Bytes {
        self.read.bytes(self.layout.payload)
    }

    /// Will Delay Interval (5.0).
    pub fn will_delay_interval(&self) -> Option<u32> {
        self.layout.will_delay_interval
    }

    /// Payload Format Indicator (5.0).
    pub fn payload_format(&self) -> Option<PayloadFormat> {
        self.layout.payload_format
    }

    /// Message Expiry Interval (5.0).
    pub fn message_expiry_interval(&self) -> Option<u32> {
        self.layout.message_expiry_interval
    }

    /// Content Type (5.0).
    pub fn content_type(&self) -> Option<&'a str> {
        self.layout.content_type.map(|s| self.read.text(s))
    }

    /// Content Type (5.0), sharing the frame.
    pub fn content_type_bytes(&self) -> Option<Bytes> {
        self.layout.content_type.map(|s| self.read.bytes(s))
    }

    /// Response Topic (5.0).
    pub fn response_topic(&self) -> Option<&'a str> {
        self.layout.response_topic.map(|s| self.read.text(s))
    }

    /// Response Topic (5.0), sharing the frame.
    pub fn response_topic_bytes(&self) -> Option<Bytes> {
        self.layout.response_topic.map(|s| self.read.bytes(s))
    }

    /// Correlation Data (5.0).
    pub fn correlation_data(&self) -> Option<&'a [u8]> {
        self.layout.correlation_data.map(|s| self.read.bin(s))
    }

    /// Correlation Data (5.0), sharing the frame.
    pub fn correlation_data_bytes(&self) -> Option<Bytes> {
        self.layout.correlation_data.map(|s| self.read.bytes(s))
    }

    /// The will's User Properties (5.0), in wire order.
    pub fn user_properties(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        self.read.users(self.layout.user_properties).iter()
    }

    /// The will's User Properties (5.0), in wire order, sharing the frame.
    pub fn user_properties_bytes(&self) -> impl ExactSizeIterator<Item = (Bytes, Bytes)> + 'a {
        self.read.pair_bytes(self.layout.user_properties)
    }
}

/// Equal when the borrowed [`Will`]s are: the same fields, wherever each frame holds them.
impl PartialEq for OwnedWill<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.to_will() == other.to_will()
    }
}

impl Eq for OwnedWill<'_> {}

impl core::fmt::Debug for OwnedWill<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OwnedWill")
            .field("qos", &self.qos())
            .field("retain", &self.retain())
            .field("topic", &self.topic())
            .field("payload_len", &self.payload().len())
            .finish_non_exhaustive()
    }
}

/// Grows `dst` by `len` bytes and has `encode` fill them; on an error `dst` is as it was.
fn append(
    dst: &mut BytesMut,
    len: usize,
    encode: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
) -> Result<usize, EncodeError> {
    let start = dst.len();
    dst.resize(start + len, 0);
    let written = match dst.get_mut(start..) {
        Some(out) => encode(out),
        None => Err(EncodeError::BufferTooSmall { needed: len, len: 0 }),
    };
    if written.is_err() {
        dst.truncate(start);
    }
    written
}

impl ConnackPacket<'_> {
    /// Appends the packet to `dst`, which grows to fit, and returns its length.
    pub fn encode_to(&self, dst: &mut BytesMut) -> Result<usize, EncodeError> {
        append(dst, self.encoded_len()?, |out| self.encode(out))
    }
}

impl Connect<'_> {
    /// Appends the packet to `dst`, which grows to fit, and returns its length.
    ///
    /// ```
    /// use mqtt_connect::{Connect, Protocol};
    ///
    /// let mut buf = bytes::BytesMut::new();
    /// let len = Connect::new(Protocol::V3_1_1, "c1").encode_to(&mut buf)?;
    /// assert_eq!(&buf[..len], b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1");
    /// # Ok::<(), mqtt_connect::EncodeError>(())
    /// ```
    pub fn encode_to(&self, dst: &mut BytesMut) -> Result<usize, EncodeError> {
        append(dst, self.encoded_len()?, |out| self.encode(out))
    }
}

/// A decoded CONNACK that owns its frame, validated once: what a proxy keeps of its upstream's
/// answer. It keeps the numbers of the properties, and where each string lies in the frame, in
/// place: no allocation, and [`packet`](Self::packet) reads them back without a decode.
///
/// ```
/// use bytes::BytesMut;
/// use mqtt_connect::{OwnedConnack, Protocol, ReasonCode, Status};
///
/// let mut buf = BytesMut::from(&b"\x20\x02\x01\x00\x30"[..]);
/// let Status::Complete { packet: ack, .. } = OwnedConnack::split_from(Protocol::V3_1_1, &mut buf)? else {
///     unreachable!()
/// };
/// assert_eq!((ack.reason_code(), ack.session_present()), (ReasonCode::Success, true));
/// assert_eq!(&buf[..], b"\x30"); // the next packet's first byte stays
/// # Ok::<(), mqtt_connect::Error>(())
/// ```
#[derive(Clone)]
pub struct OwnedConnack {
    protocol: Protocol,
    frame: Bytes,
    session_present: bool,
    reason_code: ReasonCode,
    properties: ConnackLayout,
}

/// A CONNACK's properties as the decoder left them: numbers and flags as decoded, what
/// borrows from the frame as its span there. Stored in place, as a CONNACK has no more.
#[derive(Clone, Copy)]
struct ConnackLayout {
    /// Every number and flag; its strings, binary data and User Properties are empty.
    numbers: ConnackProperties<'static>,
    assigned_client_identifier: Option<Span>,
    reason_string: Option<Span>,
    response_information: Option<Span>,
    server_reference: Option<Span>,
    authentication_method: Option<Span>,
    authentication_data: Option<Span>,
    user_properties: Users,
}

impl ConnackLayout {
    fn of(frame: &[u8], p: &ConnackProperties<'_>) -> Self {
        let text = |t: Option<&str>| t.map(|t| Span::of(frame, t.as_bytes()));
        Self {
            numbers: p.numbers(),
            assigned_client_identifier: text(p.assigned_client_identifier),
            reason_string: text(p.reason_string),
            response_information: text(p.response_information),
            server_reference: text(p.server_reference),
            authentication_method: text(p.authentication_method),
            authentication_data: p.authentication_data.map(|d| Span::of(frame, d)),
            user_properties: Users::of(frame, &p.user_properties),
        }
    }
}

impl OwnedConnack {
    /// Decodes the CONNACK at the front of `buf`, answering a CONNECT of `protocol`, and once
    /// it is whole splits it off `buf`; `Incomplete` and errors leave `buf` as it was.
    pub fn split_from(protocol: Protocol, buf: &mut BytesMut) -> Result<Status<Self>, Error> {
        Self::split_within(protocol, buf, u32::MAX)
    }

    /// [`split_from`](Self::split_from), refusing a CONNACK over `max_packet_size` bytes from
    /// its fixed header, as [`ConnackPacket::decode_within`] does.
    pub fn split_within(
        protocol: Protocol,
        buf: &mut BytesMut,
        max_packet_size: u32,
    ) -> Result<Status<Self>, Error> {
        let (len, mut packet) = match ConnackPacket::decode_within(protocol, buf, max_packet_size)? {
            Status::Complete { packet, len } => (len, Self::unframed(&packet, buf)),
            Status::Incomplete(needed) => return Ok(Status::Incomplete(needed)),
        };
        packet.frame = buf.split_to(len).freeze();
        Ok(Status::Complete { packet, len })
    }

    /// What it keeps of `packet`, decoded from the front of `source`, but the frame, which the
    /// caller sets once `packet`'s borrow of `source` has ended.
    fn unframed(packet: &ConnackPacket<'_>, source: &[u8]) -> Self {
        Self {
            protocol: packet.protocol,
            frame: Bytes::new(),
            session_present: packet.session_present,
            reason_code: packet.reason_code,
            properties: ConnackLayout::of(source, &packet.properties),
        }
    }

    /// Decodes the CONNACK at the front of `bytes`, answering a CONNECT of `protocol`, and
    /// keeps its frame, a view of `bytes` that copies nothing; the `len` of `Complete` is the
    /// frame's length. For a CONNACK that arrived whole, as in a WebSocket message.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use mqtt_connect::{OwnedConnack, Protocol, ReasonCode, Status};
    ///
    /// let bytes = Bytes::from_static(b"\x20\x03\x00\x00\x00\x30");
    /// let Status::Complete { packet: ack, len } = OwnedConnack::decode(Protocol::V5, &bytes)? else {
    ///     unreachable!()
    /// };
    /// assert_eq!((ack.reason_code(), len), (ReasonCode::Success, 5));
    /// assert_eq!(ack.into_frame(), bytes.slice(..5));
    /// # Ok::<(), mqtt_connect::Error>(())
    /// ```
    pub fn decode(protocol: Protocol, bytes: &Bytes) -> Result<Status<Self>, Error> {
        match ConnackPacket::decode(protocol, bytes)? {
            Status::Complete { packet, len } => {
                let packet = Self { frame: bytes.slice(..len), ..Self::unframed(&packet, bytes) };
                Ok(Status::Complete { packet, len })
            }
            Status::Incomplete(needed) => Ok(Status::Incomplete(needed)),
        }
    }

    /// The packet as received.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The frame, dropping the rest.
    pub fn into_frame(self) -> Bytes {
        self.frame
    }

    /// The version it was decoded in: that of the CONNECT it answers, but for a server's
    /// refusal of a version it does not support, in its own [MQTT-3.1.2-2].
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Whether it carries an Authentication Method, read without a UTF-8 check.
    #[cfg(feature = "tokio-util")]
    pub(crate) fn has_authentication_method(&self) -> bool {
        self.properties.authentication_method.is_some()
    }

    /// Session Present.
    pub fn session_present(&self) -> bool {
        self.session_present
    }

    /// The reason code, 3.x return codes by their 5.0 names.
    pub fn reason_code(&self) -> ReasonCode {
        self.reason_code
    }

    /// The whole packet, properties included, borrowed from the frame. No decode again: the
    /// cost is a UTF-8 check of each string property, as for [`OwnedConnect`]'s strings.
    pub fn packet(&self) -> ConnackPacket<'_> {
        let r = Reader(&self.frame);
        let l = &self.properties;
        let text = |span: Option<Span>| span.map(|s| r.text(s));
        let mut properties: ConnackProperties<'_> = l.numbers;
        properties.assigned_client_identifier = text(l.assigned_client_identifier);
        properties.reason_string = text(l.reason_string);
        properties.response_information = text(l.response_information);
        properties.server_reference = text(l.server_reference);
        properties.authentication_method = text(l.authentication_method);
        properties.authentication_data = l.authentication_data.map(|s| r.bin(s));
        properties.user_properties = r.users(l.user_properties);
        ConnackPacket {
            protocol: self.protocol,
            session_present: self.session_present,
            reason_code: self.reason_code,
            properties,
        }
    }
}

/// Equal when the frames are, in the same version: all else is read from them.
impl PartialEq for OwnedConnack {
    fn eq(&self, other: &Self) -> bool {
        self.protocol == other.protocol && self.frame == other.frame
    }
}

impl Eq for OwnedConnack {}

/// Hashes the version and the frame, as equality compares them.
impl core::hash::Hash for OwnedConnack {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.protocol.hash(state);
        self.frame.hash(state);
    }
}

impl core::fmt::Debug for OwnedConnack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&self.packet(), f)
    }
}
