//! SIP request methods.

use std::fmt;

/// A request method. Known methods are matched case-sensitively, as RFC
/// 3261 says method names are; anything else is [`Method::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO (RFC 6086)
    Info,
    /// PRACK (RFC 3262)
    Prack,
    /// UPDATE (RFC 3311)
    Update,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// PUBLISH (RFC 3903)
    Publish,
    /// MESSAGE (RFC 3428)
    Message,
    /// REFER (RFC 3515)
    Refer,
    /// An extension method, with its name.
    Other(&'a str),
}

impl<'a> Method<'a> {
    /// The same method with its extension name (if any) mapped by `f`,
    /// for moving a message to another borrow of its bytes.
    pub(crate) fn map_name<'b>(
        self,
        f: impl FnOnce(&'a str) -> Option<&'b str>,
    ) -> Option<Method<'b>> {
        Some(match self {
            Method::Invite => Method::Invite,
            Method::Ack => Method::Ack,
            Method::Bye => Method::Bye,
            Method::Cancel => Method::Cancel,
            Method::Register => Method::Register,
            Method::Options => Method::Options,
            Method::Info => Method::Info,
            Method::Prack => Method::Prack,
            Method::Update => Method::Update,
            Method::Subscribe => Method::Subscribe,
            Method::Notify => Method::Notify,
            Method::Publish => Method::Publish,
            Method::Message => Method::Message,
            Method::Refer => Method::Refer,
            Method::Other(s) => Method::Other(f(s)?),
        })
    }

    /// Recognises a method token.
    pub fn parse(s: &'a str) -> Method<'a> {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "PUBLISH" => Method::Publish,
            "MESSAGE" => Method::Message,
            "REFER" => Method::Refer,
            other => Method::Other(other),
        }
    }

    /// The method name.
    pub fn as_str(&self) -> &'a str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Message => "MESSAGE",
            Method::Refer => "REFER",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Method;

    #[test]
    fn round_trip() {
        for m in [
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "REGISTER",
            "OPTIONS",
            "INFO",
            "PRACK",
            "UPDATE",
            "SUBSCRIBE",
            "NOTIFY",
            "PUBLISH",
            "MESSAGE",
            "REFER",
            "KDMQ",
        ] {
            assert_eq!(Method::parse(m).as_str(), m);
        }
        assert_eq!(Method::parse("invite"), Method::Other("invite"));
    }
}
