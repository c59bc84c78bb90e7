//! DISCONNECT (§3.14) and AUTH (§3.15, MQTT 5.0 only): the packets that end
//! a connection and that carry an enhanced authentication exchange.
//! (PINGREQ and PINGRESP have no body and live in the `Packet` enum itself.)

use bytes::{BufMut, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::primitives::Reader;
use super::properties::{AuthProperties, DisconnectProperties};
use super::reason::{AuthReasonCode, DisconnectReasonCode};
use super::{PacketType, ProtocolVersion, props_block_len, write_props_block};

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

    pub(super) fn read(r: &mut Reader, version: ProtocolVersion) -> Result<Self, DecodeError> {
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

    fn is_short(&self) -> bool {
        self.properties.is_empty()
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        Ok(match version {
            ProtocolVersion::V311 => 0,
            ProtocolVersion::V5 if self.is_short() => {
                usize::from(self.reason_code != DisconnectReasonCode::NormalDisconnection)
            }
            ProtocolVersion::V5 => {
                self.properties.check()?;
                1 + props_block_len(version, self.properties.wire_len())
            }
        })
    }

    pub(super) fn write_body(&self, version: ProtocolVersion, buf: &mut BytesMut) {
        if version == ProtocolVersion::V311 {
            return;
        }
        if self.is_short() {
            if self.reason_code != DisconnectReasonCode::NormalDisconnection {
                buf.put_u8(self.reason_code.as_u8());
            }
            return;
        }
        buf.put_u8(self.reason_code.as_u8());
        let len = self.properties.wire_len();
        write_props_block(buf, len, |b| self.properties.write(b));
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

    pub(super) fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        // §3.15.2.1: "The Reason Code and Property Length can be omitted if
        // the Reason Code is 0x00 (Success) and there are no Properties."
        let mut out = Auth::new(AuthReasonCode::Success);
        if !r.is_empty() {
            out.reason_code = AuthReasonCode::try_from(r.u8()?)?;
        }
        if !r.is_empty() {
            out.properties = AuthProperties::read(r, PacketType::Auth)?;
        }
        if out.properties.authentication_data.is_some()
            && out.properties.authentication_method.is_none()
        {
            return Err(DecodeError::AuthDataWithoutMethod);
        }
        Ok(out)
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        if version == ProtocolVersion::V311 {
            return Err(EncodeError::NotInVersion {
                what: "AUTH",
                version,
            });
        }
        self.properties.check()?;
        if self.reason_code == AuthReasonCode::Success && self.properties.is_empty() {
            return Ok(0);
        }
        Ok(1 + props_block_len(version, self.properties.wire_len()))
    }

    pub(super) fn write_body(&self, buf: &mut BytesMut) {
        if self.reason_code == AuthReasonCode::Success && self.properties.is_empty() {
            return;
        }
        buf.put_u8(self.reason_code.as_u8());
        let len = self.properties.wire_len();
        write_props_block(buf, len, |b| self.properties.write(b));
    }
}
