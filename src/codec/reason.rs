//! Reason codes (MQTT 5.0 §2.4) as one typed enum per packet family, so a
//! value that a packet may not carry cannot be built or decoded.
//!
//! The same byte means different things in different packets (0x00 is
//! "Success", "Normal disconnection" and "Granted QoS 0"), which is why there
//! is no single reason-code enum: each packet gets the list the spec allows
//! it. Every enum converts to and from its byte, says whether it is an error
//! (0x80 and above), and displays the spec's name for it.

macro_rules! reason_codes {
    (
        $(#[$meta:meta])*
        $name:ident ($packet:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* #[doc = concat!("`", stringify!($value), "` ", $text, ".")] $variant = $value, )+
        }

        impl $name {
            /// Every value, in ascending order of its byte.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The byte on the wire.
            pub const fn as_u8(self) -> u8 {
                self as u8
            }

            /// The name the MQTT 5.0 specification gives this code.
            pub const fn description(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// True for codes below 0x80, which report success of some kind.
            pub const fn is_success(self) -> bool {
                (self as u8) < 0x80
            }

            /// True for codes 0x80 and above, which report a failure.
            pub const fn is_error(self) -> bool {
                !self.is_success()
            }
        }

        impl TryFrom<u8> for $name {
            type Error = InvalidReasonCode;
            fn try_from(value: u8) -> Result<Self, InvalidReasonCode> {
                match value {
                    $( $value => Ok($name::$variant), )+
                    _ => Err(InvalidReasonCode { packet: $packet, code: value }),
                }
            }
        }

        impl From<$name> for u8 {
            fn from(code: $name) -> u8 {
                code as u8
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} (0x{:02X})", self.description(), *self as u8)
            }
        }
    };
}

/// A byte that is not a reason code the named packet may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("0x{code:02X} is not a valid {packet} reason code")]
pub struct InvalidReasonCode {
    /// The packet family, e.g. `"CONNACK"`.
    pub packet: &'static str,
    /// The byte that was found.
    pub code: u8,
}

reason_codes! {
    /// The result of a connection attempt, carried by CONNACK (§3.2.2.2).
    ///
    /// MQTT 3.1.1 has six return codes; they decode to their 5.0
    /// equivalents (see [`ConnectReasonCode::from_v311`]).
    ConnectReasonCode ("CONNACK") {
        Success = 0x00 => "Success",
        UnspecifiedError = 0x80 => "Unspecified error",
        MalformedPacket = 0x81 => "Malformed Packet",
        ProtocolError = 0x82 => "Protocol Error",
        ImplementationSpecificError = 0x83 => "Implementation specific error",
        UnsupportedProtocolVersion = 0x84 => "Unsupported Protocol Version",
        ClientIdentifierNotValid = 0x85 => "Client Identifier not valid",
        BadUserNameOrPassword = 0x86 => "Bad User Name or Password",
        NotAuthorized = 0x87 => "Not authorized",
        ServerUnavailable = 0x88 => "Server unavailable",
        ServerBusy = 0x89 => "Server busy",
        Banned = 0x8A => "Banned",
        BadAuthenticationMethod = 0x8C => "Bad authentication method",
        TopicNameInvalid = 0x90 => "Topic Name invalid",
        PacketTooLarge = 0x95 => "Packet too large",
        QuotaExceeded = 0x97 => "Quota exceeded",
        PayloadFormatInvalid = 0x99 => "Payload format invalid",
        RetainNotSupported = 0x9A => "Retain not supported",
        QoSNotSupported = 0x9B => "QoS not supported",
        UseAnotherServer = 0x9C => "Use another server",
        ServerMoved = 0x9D => "Server moved",
        ConnectionRateExceeded = 0x9F => "Connection rate exceeded",
    }
}

impl ConnectReasonCode {
    /// Maps an MQTT 3.1.1 CONNACK return code (§3.2.2.3) to its 5.0 reason
    /// code; `None` for the values 3.1.1 reserves (6 to 255).
    pub const fn from_v311(code: u8) -> Option<Self> {
        Some(match code {
            0 => ConnectReasonCode::Success,
            1 => ConnectReasonCode::UnsupportedProtocolVersion,
            2 => ConnectReasonCode::ClientIdentifierNotValid,
            3 => ConnectReasonCode::ServerUnavailable,
            4 => ConnectReasonCode::BadUserNameOrPassword,
            5 => ConnectReasonCode::NotAuthorized,
            _ => return None,
        })
    }

    /// The MQTT 3.1.1 return code for this reason, where 3.1.1 has one.
    pub const fn to_v311(self) -> Option<u8> {
        Some(match self {
            ConnectReasonCode::Success => 0,
            ConnectReasonCode::UnsupportedProtocolVersion => 1,
            ConnectReasonCode::ClientIdentifierNotValid => 2,
            ConnectReasonCode::ServerUnavailable => 3,
            ConnectReasonCode::BadUserNameOrPassword => 4,
            ConnectReasonCode::NotAuthorized => 5,
            _ => return None,
        })
    }
}

reason_codes! {
    /// The result of a QoS 1 or QoS 2 PUBLISH, carried by PUBACK (§3.4.2.1)
    /// and PUBREC (§3.5.2.1), which share one list.
    PubAckReasonCode ("PUBACK/PUBREC") {
        Success = 0x00 => "Success",
        NoMatchingSubscribers = 0x10 => "No matching subscribers",
        UnspecifiedError = 0x80 => "Unspecified error",
        ImplementationSpecificError = 0x83 => "Implementation specific error",
        NotAuthorized = 0x87 => "Not authorized",
        TopicNameInvalid = 0x90 => "Topic Name invalid",
        PacketIdentifierInUse = 0x91 => "Packet Identifier in use",
        QuotaExceeded = 0x97 => "Quota exceeded",
        PayloadFormatInvalid = 0x99 => "Payload format invalid",
    }
}

reason_codes! {
    /// The result of the second half of a QoS 2 exchange, carried by PUBREL
    /// (§3.6.2.1) and PUBCOMP (§3.7.2.1).
    PubRelReasonCode ("PUBREL/PUBCOMP") {
        Success = 0x00 => "Success",
        PacketIdentifierNotFound = 0x92 => "Packet Identifier not found",
    }
}

reason_codes! {
    /// The result of one topic filter of a SUBSCRIBE, carried by SUBACK
    /// (§3.9.3). MQTT 3.1.1 has only the three grants and 0x80 Failure.
    SubAckReasonCode ("SUBACK") {
        GrantedQoS0 = 0x00 => "Granted QoS 0",
        GrantedQoS1 = 0x01 => "Granted QoS 1",
        GrantedQoS2 = 0x02 => "Granted QoS 2",
        UnspecifiedError = 0x80 => "Unspecified error",
        ImplementationSpecificError = 0x83 => "Implementation specific error",
        NotAuthorized = 0x87 => "Not authorized",
        TopicFilterInvalid = 0x8F => "Topic Filter invalid",
        PacketIdentifierInUse = 0x91 => "Packet Identifier in use",
        QuotaExceeded = 0x97 => "Quota exceeded",
        SharedSubscriptionsNotSupported = 0x9E => "Shared Subscriptions not supported",
        SubscriptionIdentifiersNotSupported = 0xA1 => "Subscription Identifiers not supported",
        WildcardSubscriptionsNotSupported = 0xA2 => "Wildcard Subscriptions not supported",
    }
}

impl SubAckReasonCode {
    /// The granted maximum QoS, or `None` if the subscription failed.
    pub const fn granted_qos(self) -> Option<super::QoS> {
        match self {
            SubAckReasonCode::GrantedQoS0 => Some(super::QoS::AtMostOnce),
            SubAckReasonCode::GrantedQoS1 => Some(super::QoS::AtLeastOnce),
            SubAckReasonCode::GrantedQoS2 => Some(super::QoS::ExactlyOnce),
            _ => None,
        }
    }
}

reason_codes! {
    /// The result of one topic filter of an UNSUBSCRIBE, carried by UNSUBACK
    /// (§3.11.3). MQTT 3.1.1's UNSUBACK carries none.
    UnsubAckReasonCode ("UNSUBACK") {
        Success = 0x00 => "Success",
        NoSubscriptionExisted = 0x11 => "No subscription existed",
        UnspecifiedError = 0x80 => "Unspecified error",
        ImplementationSpecificError = 0x83 => "Implementation specific error",
        NotAuthorized = 0x87 => "Not authorized",
        TopicFilterInvalid = 0x8F => "Topic Filter invalid",
        PacketIdentifierInUse = 0x91 => "Packet Identifier in use",
    }
}

reason_codes! {
    /// Why a connection is being closed, carried by DISCONNECT (§3.14.2.1)
    /// in either direction. Decode errors map to one of these with `From`.
    DisconnectReasonCode ("DISCONNECT") {
        NormalDisconnection = 0x00 => "Normal disconnection",
        DisconnectWithWillMessage = 0x04 => "Disconnect with Will Message",
        UnspecifiedError = 0x80 => "Unspecified error",
        MalformedPacket = 0x81 => "Malformed Packet",
        ProtocolError = 0x82 => "Protocol Error",
        ImplementationSpecificError = 0x83 => "Implementation specific error",
        NotAuthorized = 0x87 => "Not authorized",
        ServerBusy = 0x89 => "Server busy",
        ServerShuttingDown = 0x8B => "Server shutting down",
        KeepAliveTimeout = 0x8D => "Keep Alive timeout",
        SessionTakenOver = 0x8E => "Session taken over",
        TopicFilterInvalid = 0x8F => "Topic Filter invalid",
        TopicNameInvalid = 0x90 => "Topic Name invalid",
        ReceiveMaximumExceeded = 0x93 => "Receive Maximum exceeded",
        TopicAliasInvalid = 0x94 => "Topic Alias invalid",
        PacketTooLarge = 0x95 => "Packet too large",
        MessageRateTooHigh = 0x96 => "Message rate too high",
        QuotaExceeded = 0x97 => "Quota exceeded",
        AdministrativeAction = 0x98 => "Administrative action",
        PayloadFormatInvalid = 0x99 => "Payload format invalid",
        RetainNotSupported = 0x9A => "Retain not supported",
        QoSNotSupported = 0x9B => "QoS not supported",
        UseAnotherServer = 0x9C => "Use another server",
        ServerMoved = 0x9D => "Server moved",
        SharedSubscriptionsNotSupported = 0x9E => "Shared Subscriptions not supported",
        ConnectionRateExceeded = 0x9F => "Connection rate exceeded",
        MaximumConnectTime = 0xA0 => "Maximum connect time",
        SubscriptionIdentifiersNotSupported = 0xA1 => "Subscription Identifiers not supported",
        WildcardSubscriptionsNotSupported = 0xA2 => "Wildcard Subscriptions not supported",
    }
}

reason_codes! {
    /// The step of an enhanced authentication exchange, carried by AUTH
    /// (§3.15.2.1; MQTT 5.0 only).
    AuthReasonCode ("AUTH") {
        Success = 0x00 => "Success",
        ContinueAuthentication = 0x18 => "Continue authentication",
        ReAuthenticate = 0x19 => "Re-authenticate",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_byte() {
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + std::fmt::Debug + TryFrom<u8> + Into<u8>,
        {
            let mut seen = 0;
            for byte in 0..=255u8 {
                if let Ok(code) = T::try_from(byte) {
                    assert_eq!(code.into(), byte);
                    assert!(all.contains(&code));
                    seen += 1;
                }
            }
            assert_eq!(seen, all.len());
        }
        check(ConnectReasonCode::ALL);
        check(PubAckReasonCode::ALL);
        check(PubRelReasonCode::ALL);
        check(SubAckReasonCode::ALL);
        check(UnsubAckReasonCode::ALL);
        check(DisconnectReasonCode::ALL);
        check(AuthReasonCode::ALL);
    }

    #[test]
    fn the_spec_defines_43_distinct_reason_code_values() {
        let mut values: Vec<u8> = Vec::new();
        values.extend(ConnectReasonCode::ALL.iter().map(|c| c.as_u8()));
        values.extend(PubAckReasonCode::ALL.iter().map(|c| c.as_u8()));
        values.extend(PubRelReasonCode::ALL.iter().map(|c| c.as_u8()));
        values.extend(SubAckReasonCode::ALL.iter().map(|c| c.as_u8()));
        values.extend(UnsubAckReasonCode::ALL.iter().map(|c| c.as_u8()));
        values.extend(DisconnectReasonCode::ALL.iter().map(|c| c.as_u8()));
        values.extend(AuthReasonCode::ALL.iter().map(|c| c.as_u8()));
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), 43);
    }

    #[test]
    fn display_names_the_code() {
        assert_eq!(
            ConnectReasonCode::BadUserNameOrPassword.to_string(),
            "Bad User Name or Password (0x86)"
        );
        assert_eq!(
            SubAckReasonCode::try_from(0x03),
            Err(InvalidReasonCode {
                packet: "SUBACK",
                code: 3
            })
        );
        assert!(PubAckReasonCode::NoMatchingSubscribers.is_success());
        assert!(DisconnectReasonCode::MalformedPacket.is_error());
    }

    #[test]
    fn v311_return_codes_map_both_ways() {
        for code in 0..=5u8 {
            let reason = ConnectReasonCode::from_v311(code).unwrap();
            assert_eq!(reason.to_v311(), Some(code));
        }
        assert_eq!(ConnectReasonCode::from_v311(6), None);
        assert_eq!(ConnectReasonCode::Banned.to_v311(), None);
    }
}
