//! DISCONNECT (§3.14) and AUTH (§3.15, MQTT 5.0 only): the packets that end
//! a connection and that carry an enhanced authentication exchange.
//! (PINGREQ and PINGRESP have no body and live in the `Packet` enum itself.)

use bytes::BytesMut;

use super::error::{DecodeError, EncodeError, refuse};
use super::primitives::{Reader, put_u8};
use super::properties::{AuthProperties, DisconnectProperties};
use super::reason::{AuthReasonCode, DisconnectReasonCode};
use super::{PacketType, ProtocolVersion, Sizes, props_block_len, write_props_block};

/// The last packet of a connection (§3.14). In 3.1.1 only the client sends
/// it and it has no body; in 5.0 either side may, with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// Why the connection is closing (5.0; Normal disconnection in 3.1.1).
    pub reason_code: DisconnectReasonCode,
    /// 5.0 properties (session expiry, reason string, server reference, ...).
    pub properties: DisconnectProperties,
}

impl Default for Disconnect {
    /// A normal disconnection with no properties.
    fn default() -> Self {
        Disconnect::new(DisconnectReasonCode::NormalDisconnection)
    }
}

impl Disconnect {
    /// A DISCONNECT with this reason and no properties.
    pub fn new(reason_code: DisconnectReasonCode) -> Self {
        Disconnect {
            reason_code,
            properties: DisconnectProperties::default(),
        }
    }

    pub(super) fn read(r: &mut Reader<'_>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let mut out = Disconnect::default();
        if version == ProtocolVersion::V5 {
            // §3.14.2.1: "If the Remaining Length is less than 1 the value of
            // 0x00 (Normal disconnection) is used"; §3.14.2.2: "If the
            // Remaining Length is less than 2, a value of 0 is used" for the
            // property length.
            if !r.is_empty() {
                out.reason_code = DisconnectReasonCode::try_from(r.u8()?)?;
            }
            if !r.is_empty() {
                out.properties = DisconnectProperties::read(r, PacketType::Disconnect)?;
            }
        }
        Ok(out)
    }

    pub(super) fn measure(&self, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
        if version == ProtocolVersion::V311 {
            return Ok(Sizes::body(0));
        }
        // No properties (an empty set measures 0): the short forms.
        let props = self.properties.checked_len()?;
        if props == 0 {
            let reason = self.reason_code != DisconnectReasonCode::NormalDisconnection;
            return Ok(Sizes::body(usize::from(reason)));
        }
        Ok(Sizes {
            body: 1 + props_block_len(version, props),
            props,
            will_props: 0,
        })
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, sizes: &Sizes, buf: &mut BytesMut) {
        if version == ProtocolVersion::V311 {
            return;
        }
        if sizes.props == 0 {
            if self.reason_code != DisconnectReasonCode::NormalDisconnection {
                put_u8(buf, self.reason_code.as_u8());
            }
            return;
        }
        put_u8(buf, self.reason_code.as_u8());
        write_props_block(buf, sizes.props, |b| self.properties.write(b));
    }
}

/// One step of an enhanced authentication exchange (§3.15; 5.0 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Continue, re-authenticate, or success.
    pub reason_code: AuthReasonCode,
    /// Method, data and diagnostics of this step.
    pub properties: AuthProperties,
}

impl Auth {
    /// An AUTH step with this reason and no properties.
    pub fn new(reason_code: AuthReasonCode) -> Self {
        Auth {
            reason_code,
            properties: AuthProperties::default(),
        }
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // §3.15.2.1: "The Reason Code and Property Length can be omitted if
        // the Reason Code is 0x00 (Success) and there are no Properties."
        let mut out = Auth::new(AuthReasonCode::Success);
        if r.is_empty() {
            return Ok(out);
        }
        out.reason_code = AuthReasonCode::try_from(r.u8()?)?;
        if !r.is_empty() {
            out.properties = AuthProperties::read(r, PacketType::Auth)?;
        }
        if out.properties.authentication_data.is_some()
            && out.properties.authentication_method.is_none()
        {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
        // §3.15.2.2.2: "It is a Protocol Error to omit the Authentication
        // Method"; only the bare Success above carries none.
        if out.properties.authentication_method.is_none() {
            return Err(DecodeError::MissingAuthenticationMethod);
        }
        Ok(out)
    }

    pub(super) fn measure(&self, version: ProtocolVersion) -> Result<Sizes, EncodeError> {
        if version == ProtocolVersion::V311 {
            return refuse(EncodeError::NotInVersion {
                what: "AUTH",
                version,
            });
        }
        // No properties (an empty set measures 0) and Success: no body.
        let props = self.properties.checked_len()?;
        if self.reason_code == AuthReasonCode::Success && props == 0 {
            return Ok(Sizes::body(0));
        }
        if self.properties.authentication_method.is_none() {
            return refuse(EncodeError::MissingAuthenticationMethod);
        }
        Ok(Sizes {
            body: 1 + props_block_len(version, props),
            props,
            will_props: 0,
        })
    }

    pub(super) fn write_body(&self, sizes: &Sizes, buf: &mut BytesMut) {
        if sizes.body == 0 {
            return;
        }
        put_u8(buf, self.reason_code.as_u8());
        write_props_block(buf, sizes.props, |b| self.properties.write(b));
    }
}

#[cfg(test)]
mod tests {
    //! Byte vectors for DISCONNECT, AUTH, PINGREQ and PINGRESP, written by
    //! hand from the spec (§3.12 to §3.15) or captured from mosquitto
    //! 2.0.11's command-line tools. Each one is checked both ways: the bytes
    //! decode to the struct, the struct encodes to exactly the bytes, and
    //! `encoded_len` agrees.

    #[allow(unused_imports)]
    use crate::codec::test_vectors::{assert_decodes_to_shorter, assert_vector, hex};

    use bytes::{Bytes, BytesMut};

    use crate::codec::{
        Auth, AuthProperties, AuthReasonCode, Disconnect, DisconnectProperties,
        DisconnectReasonCode, MqttString, Packet, ProtocolVersion, UserProperties, decode,
    };

    use ProtocolVersion::{V5, V311};

    /// A test string as whichever MQTT string type the caller wants
    /// (`MqttString`, `TopicName` or `TopicFilter`).
    fn s<T: for<'a> TryFrom<&'a str, Error: std::fmt::Debug>>(v: &str) -> T {
        T::try_from(v).expect("a valid test string")
    }

    // ---- PINGREQ, PINGRESP ----

    #[test]
    fn pingreq_and_pingresp_in_both_versions() {
        for version in [V311, V5] {
            assert_vector(
                version,
                &[
                    &[0xC0], // PINGREQ
                    &[0x00], // remaining length 0
                ],
                Packet::PingReq,
            );
            assert_vector(
                version,
                &[
                    &[0xD0], // PINGRESP
                    &[0x00], // remaining length 0
                ],
                Packet::PingResp,
            );
        }
    }

    // ---- DISCONNECT ----

    #[test]
    fn v311_disconnect_as_sent_by_mosquitto_pub_2_0_x() {
        // mosquitto_pub 2.0.11 -V mqttv311 ..., after its PUBLISH was acknowledged.
        assert_vector(
            V311,
            &[
                &[0xE0], // DISCONNECT
                &[0x00], // remaining length 0
            ],
            Packet::Disconnect(Disconnect::default()),
        );
    }

    #[test]
    fn v311_disconnect_has_no_reason_or_properties() {
        let mut d = Disconnect::new(DisconnectReasonCode::ServerShuttingDown);
        d.properties.reason_string = Some(s("5.0 only"));
        let mut out = BytesMut::new();
        Packet::Disconnect(d.clone())
            .encode(V311, &mut out)
            .expect("encode");
        assert_eq!(
            &out[..],
            &[
                0xE0, // DISCONNECT
                0x00, // remaining length 0
            ]
        );
        assert_eq!(Packet::Disconnect(d).encoded_len(V311), Ok(2));
    }

    #[test]
    fn v5_disconnect_remaining_length_0_as_sent_by_mosquitto_pub_2_0_x() {
        // mosquitto_pub 2.0.11 -V mqttv5 ...: "If the Remaining Length is
        // less than 1 the value of 0x00 (Normal disconnection) is used".
        assert_vector(
            V5,
            &[
                &[0xE0], // DISCONNECT
                &[0x00], // remaining length 0: normal disconnection, no properties
            ],
            Packet::Disconnect(Disconnect::default()),
        );
    }

    #[test]
    fn v5_disconnect_remaining_length_1_as_sent_by_mosquitto_sub_2_0_x() {
        // mosquitto_sub 2.0.11 -V mqttv5 ... -W 2 when its timeout expires.
        assert_vector(
            V5,
            &[
                &[0xE0], // DISCONNECT
                &[0x01], // remaining length 1: no property length
                &[0x04], // reason code 0x04: disconnect with will message
            ],
            Packet::Disconnect(Disconnect::new(
                DisconnectReasonCode::DisconnectWithWillMessage,
            )),
        );
        assert_vector(
            V5,
            &[
                &[0xE0], // DISCONNECT
                &[0x01], // remaining length 1
                &[0x8E], // reason code 0x8E: session taken over
            ],
            Packet::Disconnect(Disconnect::new(DisconnectReasonCode::SessionTakenOver)),
        );
    }

    #[test]
    fn v5_disconnect_remaining_length_2_with_empty_properties_is_written_shorter() {
        assert_decodes_to_shorter(
            V5,
            &[
                &[0xE0], // DISCONNECT
                &[0x02], // remaining length 2
                &[0x00], // reason code 0x00: normal disconnection
                &[0x00], // property length 0
            ],
            Packet::Disconnect(Disconnect::default()),
            &[
                &[0xE0], // DISCONNECT
                &[0x00], // remaining length 0
            ],
        );
        assert_decodes_to_shorter(
            V5,
            &[
                &[0xE0], // DISCONNECT
                &[0x02], // remaining length 2
                &[0x8B], // reason code 0x8B: server shutting down
                &[0x00], // property length 0
            ],
            Packet::Disconnect(Disconnect::new(DisconnectReasonCode::ServerShuttingDown)),
            &[
                &[0xE0], // DISCONNECT
                &[0x01], // remaining length 1
                &[0x8B], // reason code 0x8B: server shutting down
            ],
        );
    }

    #[test]
    fn v5_disconnect_from_a_client_with_properties() {
        let mut users = UserProperties::new();
        users.push(s("k"), s("v"));
        let properties = DisconnectProperties {
            session_expiry_interval: Some(3600),
            reason_string: Some(s("bye")),
            user_properties: users,
            ..Default::default()
        };
        assert_vector(
            V5,
            &[
                &[0xE0],                         // DISCONNECT
                &[0x14],                         // remaining length 20
                &[0x04],                         // reason code 0x04: disconnect with will message
                &[0x12],                         // property length 18
                &[0x11, 0x00, 0x00, 0x0E, 0x10], // session expiry interval 3600 s
                &[0x1F, 0x00, 0x03],             // reason string, length 3
                b"bye",                          //   "bye"
                &[0x26, 0x00, 0x01],             // user property, name length 1
                b"k",                            //   name "k"
                &[0x00, 0x01],                   //   value length 1
                b"v",                            //   value "v"
            ],
            Packet::Disconnect(Disconnect {
                reason_code: DisconnectReasonCode::DisconnectWithWillMessage,
                properties,
            }),
        );
    }

    #[test]
    fn v5_disconnect_from_a_server_with_a_server_reference() {
        let mut moved = Disconnect::new(DisconnectReasonCode::ServerMoved);
        moved.properties.server_reference = Some(s("other:1883"));
        assert_vector(
            V5,
            &[
                &[0xE0],             // DISCONNECT
                &[0x0F],             // remaining length 15
                &[0x9D],             // reason code 0x9D: server moved
                &[0x0D],             // property length 13
                &[0x1C, 0x00, 0x0A], // server reference, length 10
                b"other:1883",       //   "other:1883"
            ],
            Packet::Disconnect(moved),
        );
        // Normal disconnection with properties: the reason byte is needed
        // in front of them.
        let mut normal = Disconnect::default();
        normal.properties.reason_string = Some(s("ok"));
        assert_vector(
            V5,
            &[
                &[0xE0],             // DISCONNECT
                &[0x07],             // remaining length 7
                &[0x00],             // reason code 0x00: normal disconnection
                &[0x05],             // property length 5
                &[0x1F, 0x00, 0x02], // reason string, length 2
                b"ok",               //   "ok"
            ],
            Packet::Disconnect(normal),
        );
    }

    // ---- AUTH (5.0 only) ----

    #[test]
    fn v5_auth_remaining_length_0_is_success() {
        assert_vector(
            V5,
            &[
                &[0xF0], // AUTH
                &[0x00], // remaining length 0: success, no properties
            ],
            Packet::Auth(Auth::new(AuthReasonCode::Success)),
        );
    }

    #[test]
    fn v5_auth_continue_with_method_and_data() {
        let properties = AuthProperties {
            authentication_method: Some(s("SCRAM-SHA-256")),
            authentication_data: Some(Bytes::from_static(&[1, 2, 3, 4])),
            ..Default::default()
        };
        assert_vector(
            V5,
            &[
                &[0xF0],                         // AUTH
                &[0x19],                         // remaining length 25
                &[0x18],                         // reason code 0x18: continue authentication
                &[0x17],                         // property length 23
                &[0x15, 0x00, 0x0D],             // authentication method, length 13
                b"SCRAM-SHA-256",                //   "SCRAM-SHA-256"
                &[0x16, 0x00, 0x04, 1, 2, 3, 4], // authentication data 01 02 03 04
            ],
            Packet::Auth(Auth {
                reason_code: AuthReasonCode::ContinueAuthentication,
                properties,
            }),
        );
    }

    #[test]
    fn v5_auth_reauthenticate_with_every_auth_property() {
        let mut users = UserProperties::new();
        users.push(s("x"), s("y"));
        users.push(s("x"), s("z"));
        let properties = AuthProperties {
            authentication_method: Some(s("SCRAM-SHA-256")),
            authentication_data: Some(Bytes::from_static(&[0xAA, 0xBB])),
            reason_string: Some(s("again")),
            user_properties: users,
        };
        assert_vector(
            V5,
            &[
                &[0xF0],                         // AUTH
                &[0x2D],                         // remaining length 45
                &[0x19],                         // reason code 0x19: re-authenticate
                &[0x2B],                         // property length 43
                &[0x15, 0x00, 0x0D],             // authentication method, length 13
                b"SCRAM-SHA-256",                //   "SCRAM-SHA-256"
                &[0x16, 0x00, 0x02, 0xAA, 0xBB], // authentication data AA BB
                &[0x1F, 0x00, 0x05],             // reason string, length 5
                b"again",                        //   "again"
                &[0x26, 0x00, 0x01],             // user property, name length 1
                b"x",                            //   name "x"
                &[0x00, 0x01],                   //   value length 1
                b"y",                            //   value "y"
                &[0x26, 0x00, 0x01],             // user property, name length 1
                b"x",                            //   name "x" again
                &[0x00, 0x01],                   //   value length 1
                b"z",                            //   value "z"
            ],
            Packet::Auth(Auth {
                reason_code: AuthReasonCode::ReAuthenticate,
                properties,
            }),
        );
    }

    #[test]
    fn v5_auth_success_with_properties_keeps_its_reason_byte() {
        let mut done = Auth::new(AuthReasonCode::Success);
        done.properties.authentication_method = Some(s("SCRAM-SHA-256"));
        assert_vector(
            V5,
            &[
                &[0xF0],             // AUTH
                &[0x12],             // remaining length 18
                &[0x00],             // reason code 0x00: success
                &[0x10],             // property length 16
                &[0x15, 0x00, 0x0D], // authentication method, length 13
                b"SCRAM-SHA-256",    //   "SCRAM-SHA-256"
            ],
            Packet::Auth(done),
        );
    }

    #[test]
    fn v5_auth_continue_needs_its_method() {
        // Only the bare Success may drop the reason code and properties
        // (§3.15.2.1); any other AUTH must name its method (§3.15.2.2.2).
        let mut auth = Auth::new(AuthReasonCode::ContinueAuthentication);
        auth.properties.authentication_method = Some(MqttString::from_static("X"));
        assert_vector(
            V5,
            &[
                &[0xF0],             // AUTH
                &[0x06],             // remaining length 6
                &[0x18],             // reason code 0x18: continue authentication
                &[0x04],             // property length 4
                &[0x15, 0x00, 0x01], // authentication method, length 1
                b"X",                // "X"
            ],
            Packet::Auth(auth),
        );
        let bare = Packet::Auth(Auth::new(AuthReasonCode::ContinueAuthentication));
        assert_eq!(
            bare.encode(V5, &mut BytesMut::new()),
            Err(crate::codec::EncodeError::MissingAuthenticationMethod)
        );
        assert_eq!(
            decode(&mut BytesMut::from(&[0xF0, 0x02, 0x18, 0x00][..]), V5, 100),
            Err(crate::codec::DecodeError::MissingAuthenticationMethod)
        );
    }
}
