//! How a CONNECT prints: `Debug` with the secrets redacted and binary fields in hex, and a
//! one-line summary for logs.

use core::fmt;

use super::{ConnackProperties, Connect, ConnectProperties, Will, WillProperties};

/// Binary data as hex: `0a1b2c`.
struct Hex<'a>(&'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A secret, by its length only.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0)
    }
}

impl fmt::Debug for Connect<'_> {
    /// Every field, but the password only by its length.
    ///
    /// ```
    /// let mut c = mqtt_connect::Connect::new(mqtt_connect::Protocol::V3_1_1, "c1");
    /// c.username = Some("bob");
    /// c.password = Some(b"hunter2");
    /// let shown = format!("{c:?}");
    /// assert!(shown.contains("password: Some(<redacted, 7 bytes>)"));
    /// assert!(!shown.contains("hunter2"));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connect")
            .field("protocol", &self.protocol)
            .field("bridge", &self.bridge)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.map(|p| Redacted(p.len())))
            .field("properties", &self.properties)
            .finish()
    }
}

impl fmt::Debug for Will<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Will")
            .field("qos", &self.qos)
            .field("retain", &self.retain)
            .field("topic", &self.topic)
            .field("payload", &Hex(self.payload))
            .field("properties", &self.properties)
            .finish()
    }
}

impl fmt::Debug for ConnectProperties<'_> {
    /// Authentication Data only by its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectProperties")
            .field("session_expiry_interval", &self.session_expiry_interval)
            .field("receive_maximum", &self.receive_maximum)
            .field("maximum_packet_size", &self.maximum_packet_size)
            .field("topic_alias_maximum", &self.topic_alias_maximum)
            .field("request_response_information", &self.request_response_information)
            .field("request_problem_information", &self.request_problem_information)
            .field("authentication_method", &self.authentication_method)
            .field("authentication_data", &self.authentication_data.map(|d| Redacted(d.len())))
            .field("user_properties", &self.user_properties)
            .finish()
    }
}

impl fmt::Debug for ConnackProperties<'_> {
    /// Authentication Data only by its length, as in [`ConnectProperties`].
    ///
    /// ```
    /// let mut p = mqtt_connect::ConnackProperties::default();
    /// p.authentication_method = Some("SCRAM-SHA-1");
    /// p.authentication_data = Some(b"server-final");
    /// let shown = format!("{p:?}");
    /// assert!(shown.contains("authentication_data: Some(<redacted, 12 bytes>)"));
    /// assert!(!shown.contains("server-final") && !shown.contains("115"));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnackProperties")
            .field("session_expiry_interval", &self.session_expiry_interval)
            .field("receive_maximum", &self.receive_maximum)
            .field("maximum_qos", &self.maximum_qos)
            .field("retain_available", &self.retain_available)
            .field("maximum_packet_size", &self.maximum_packet_size)
            .field("assigned_client_identifier", &self.assigned_client_identifier)
            .field("topic_alias_maximum", &self.topic_alias_maximum)
            .field("reason_string", &self.reason_string)
            .field("user_properties", &self.user_properties)
            .field("wildcard_subscription_available", &self.wildcard_subscription_available)
            .field("subscription_identifiers_available", &self.subscription_identifiers_available)
            .field("shared_subscription_available", &self.shared_subscription_available)
            .field("server_keep_alive", &self.server_keep_alive)
            .field("response_information", &self.response_information)
            .field("server_reference", &self.server_reference)
            .field("authentication_method", &self.authentication_method)
            .field("authentication_data", &self.authentication_data.map(|d| Redacted(d.len())))
            .finish()
    }
}

impl fmt::Debug for WillProperties<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WillProperties")
            .field("will_delay_interval", &self.will_delay_interval)
            .field("payload_format", &self.payload_format)
            .field("message_expiry_interval", &self.message_expiry_interval)
            .field("content_type", &self.content_type)
            .field("response_topic", &self.response_topic)
            .field("correlation_data", &self.correlation_data.map(Hex))
            .field("user_properties", &self.user_properties)
            .finish()
    }
}

/// A one-line account of a CONNECT for logs, from [`Connect::summary`]: version, client id,
/// session, keep-alive, user name, whether there is a password, and the will's topic. Never
/// a secret: no password, no authentication data, no payload. Strings print quoted and
/// escaped, so a client id cannot forge a log line.
#[derive(Clone, Copy)]
pub struct Summary<'c, 'a>(&'c Connect<'a>);

impl<'a> Connect<'a> {
    /// A one-line, secret-free account of this CONNECT for logs.
    ///
    /// ```
    /// use mqtt_connect::{Connect, Protocol, Will};
    ///
    /// let mut c = Connect::new(Protocol::V3_1_1, "sensor-17");
    /// c.username = Some("alice");
    /// c.password = Some(b"s3cret");
    /// c.will = Some(Will::new("status/17", b"offline"));
    /// assert_eq!(
    ///     c.summary().to_string(),
    ///     r#"MQTT 3.1.1 client_id="sensor-17" clean_start keep_alive=60 username="alice" password will="status/17" will_qos=0"#
    /// );
    /// ```
    #[must_use = "a summary shows nothing until it is displayed"]
    pub const fn summary(&self) -> Summary<'_, 'a> {
        Summary(self)
    }
}

impl fmt::Display for Summary<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        write!(f, "MQTT {} client_id={:?}", c.protocol, c.client_id)?;
        if c.bridge {
            f.write_str(" bridge")?;
        }
        if c.clean_start {
            f.write_str(" clean_start")?;
        }
        write!(f, " keep_alive={}", c.keep_alive)?;
        if let Some(username) = c.username {
            write!(f, " username={username:?}")?;
        }
        if c.password.is_some() {
            f.write_str(" password")?;
        }
        if let Some(method) = c.properties.authentication_method {
            write!(f, " auth={method:?}")?;
        }
        if let Some(will) = &c.will {
            write!(f, " will={:?} will_qos={}", will.topic, will.qos as u8)?;
            if will.retain {
                f.write_str(" will_retain")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Summary<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
