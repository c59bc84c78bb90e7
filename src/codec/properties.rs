//! MQTT 5.0 properties (§2.2.2): the 27 identifiers, one typed set per packet
//! family, and zero-copy lists for the properties that may repeat.
//!
//! Each packet gets its own struct holding only the properties the spec
//! allows it, so "a property not allowed in that packet" is a decode error
//! and cannot be constructed for encoding. Single-valued properties are
//! `Option`s. User Properties (all packets) and Subscription Identifiers
//! (PUBLISH) may repeat: a decoded packet keeps them as a slice of its
//! property block and parses them when iterated, so decoding allocates
//! nothing for them.

use std::fmt;
use std::num::NonZeroU32;

use bytes::{Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::primitives::{
    MAX_FIELD_LEN, MAX_VARIABLE_INT, MqttString, Reader, put_u8, var_int_len, write_var_int,
};
use super::{PacketType, QoS};

/// A property identifier (§2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
#[allow(missing_docs)] // the names are the spec's; see §3.x for each.
pub enum PropertyId {
    PayloadFormatIndicator = 0x01,
    MessageExpiryInterval = 0x02,
    ContentType = 0x03,
    ResponseTopic = 0x08,
    CorrelationData = 0x09,
    SubscriptionIdentifier = 0x0B,
    SessionExpiryInterval = 0x11,
    AssignedClientIdentifier = 0x12,
    ServerKeepAlive = 0x13,
    AuthenticationMethod = 0x15,
    AuthenticationData = 0x16,
    RequestProblemInformation = 0x17,
    WillDelayInterval = 0x18,
    RequestResponseInformation = 0x19,
    ResponseInformation = 0x1A,
    ServerReference = 0x1C,
    ReasonString = 0x1F,
    ReceiveMaximum = 0x21,
    TopicAliasMaximum = 0x22,
    TopicAlias = 0x23,
    MaximumQoS = 0x24,
    RetainAvailable = 0x25,
    UserProperty = 0x26,
    MaximumPacketSize = 0x27,
    WildcardSubscriptionAvailable = 0x28,
    SubscriptionIdentifierAvailable = 0x29,
    SharedSubscriptionAvailable = 0x2A,
}

/// How a property's value is laid out on the wire.
#[derive(Clone, Copy)]
enum Layout {
    Byte,
    U16,
    U32,
    VarInt,
    Str,
    Bin,
    Pair,
}

impl PropertyId {
    /// All 27 identifiers, in ascending order.
    pub const ALL: [PropertyId; 27] = {
        use PropertyId::*;
        [
            PayloadFormatIndicator,
            MessageExpiryInterval,
            ContentType,
            ResponseTopic,
            CorrelationData,
            SubscriptionIdentifier,
            SessionExpiryInterval,
            AssignedClientIdentifier,
            ServerKeepAlive,
            AuthenticationMethod,
            AuthenticationData,
            RequestProblemInformation,
            WillDelayInterval,
            RequestResponseInformation,
            ResponseInformation,
            ServerReference,
            ReasonString,
            ReceiveMaximum,
            TopicAliasMaximum,
            TopicAlias,
            MaximumQoS,
            RetainAvailable,
            UserProperty,
            MaximumPacketSize,
            WildcardSubscriptionAvailable,
            SubscriptionIdentifierAvailable,
            SharedSubscriptionAvailable,
        ]
    };

    /// The identifier for a byte, if MQTT 5.0 defines one.
    pub fn from_u8(byte: u8) -> Option<Self> {
        PropertyId::ALL.iter().copied().find(|id| *id as u8 == byte)
    }

    fn layout(self) -> Layout {
        use PropertyId::*;
        match self {
            PayloadFormatIndicator
            | RequestProblemInformation
            | RequestResponseInformation
            | MaximumQoS
            | RetainAvailable
            | WildcardSubscriptionAvailable
            | SubscriptionIdentifierAvailable
            | SharedSubscriptionAvailable => Layout::Byte,
            ServerKeepAlive | ReceiveMaximum | TopicAliasMaximum | TopicAlias => Layout::U16,
            MessageExpiryInterval
            | SessionExpiryInterval
            | WillDelayInterval
            | MaximumPacketSize => Layout::U32,
            SubscriptionIdentifier => Layout::VarInt,
            ContentType
            | ResponseTopic
            | AssignedClientIdentifier
            | AuthenticationMethod
            | ResponseInformation
            | ServerReference
            | ReasonString => Layout::Str,
            CorrelationData | AuthenticationData => Layout::Bin,
            UserProperty => Layout::Pair,
        }
    }
}

/// Reads the identifier of the next property in a block.
#[inline]
fn read_id(r: &mut Reader<'_>) -> Result<PropertyId, DecodeError> {
    // The identifier is a variable byte integer; all defined ones fit in
    // one byte, so a longer encoding cannot name a known property.
    let raw = r.var_int()?;
    u8::try_from(raw)
        .ok()
        .and_then(PropertyId::from_u8)
        .ok_or(DecodeError::UnknownProperty(raw.min(0xFF) as u8))
}

/// Skips one property value of the given identifier in a block that was
/// validated when it was decoded: lengths are followed, nothing is checked.
fn skip_value(id: PropertyId, r: &mut Reader<'_>) -> Result<(), DecodeError> {
    let n = match id.layout() {
        Layout::Byte => 1,
        Layout::U16 => 2,
        Layout::U32 => 4,
        Layout::VarInt => return r.var_int().map(drop),
        Layout::Str | Layout::Bin => usize::from(r.u16()?),
        Layout::Pair => {
            let key = usize::from(r.u16()?);
            r.slice(key)?;
            usize::from(r.u16()?)
        }
    };
    r.slice(n).map(drop)
}

/// Reads the property length and returns a reader of the block it covers,
/// with the block's start and end in the source buffer.
#[inline]
pub(crate) fn read_block<'a>(
    r: &mut Reader<'a>,
) -> Result<(Reader<'a>, usize, usize), DecodeError> {
    let len = r.var_int()? as usize;
    if len > r.remaining() {
        return Err(DecodeError::PropertyLengthOverrun);
    }
    let start = r.position();
    let block = r.sub(len)?;
    Ok((block, start, r.position()))
}

/// A value type a single-valued property can hold.
pub(crate) trait PropValue: Sized {
    /// The value as the borrowing decoder gives it: `&str` / `&[u8]` for
    /// strings and binary data, the value itself otherwise.
    type Ref<'a>: Copy;
    fn read(id: PropertyId, r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// [`read`](Self::read), borrowed: the same checks and errors.
    fn read_ref<'a>(id: PropertyId, r: &mut Reader<'a>) -> Result<Self::Ref<'a>, DecodeError>;
    /// An owned copy of a borrowed value.
    fn from_ref(value: Self::Ref<'_>) -> Self;
    /// Wire size of the value (without the identifier).
    fn wire_len(&self) -> usize;
    /// Writes the identifier, then the value.
    fn write(&self, id: PropertyId, buf: &mut BytesMut);
    /// Checks a value the user set before it is written: what the
    /// receiver's `read` would reject must not be sent.
    fn check(&self, _id: PropertyId) -> Result<(), EncodeError> {
        Ok(())
    }
}

impl PropValue for bool {
    type Ref<'a> = Self;
    #[inline]
    fn read_ref<'a>(id: PropertyId, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Self::read(id, r)
    }
    fn from_ref(value: Self) -> Self {
        value
    }
    fn read(id: PropertyId, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // Every flag property: "It is a Protocol Error to include a value
        // other than 0 or 1."
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidPropertyValue(id)),
        }
    }
    fn wire_len(&self) -> usize {
        1
    }
    fn write(&self, id: PropertyId, buf: &mut BytesMut) {
        buf.extend_from_slice(&[id as u8, u8::from(*self)]);
    }
}

/// The Payload Format Indicator (§3.3.2.3.2): what a payload claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PayloadFormat {
    /// 0: unspecified bytes (the meaning when the property is absent).
    #[default]
    Unspecified,
    /// 1: UTF-8 encoded character data.
    Utf8,
}

impl PropValue for PayloadFormat {
    type Ref<'a> = Self;
    #[inline]
    fn read_ref<'a>(id: PropertyId, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Self::read(id, r)
    }
    fn from_ref(value: Self) -> Self {
        value
    }
    fn read(id: PropertyId, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(PayloadFormat::Unspecified),
            1 => Ok(PayloadFormat::Utf8),
            _ => Err(DecodeError::InvalidPropertyValue(id)),
        }
    }
    fn wire_len(&self) -> usize {
        1
    }
    fn write(&self, id: PropertyId, buf: &mut BytesMut) {
        let value = match self {
            PayloadFormat::Unspecified => 0,
            PayloadFormat::Utf8 => 1,
        };
        buf.extend_from_slice(&[id as u8, value]);
    }
}

impl PropValue for QoS {
    type Ref<'a> = Self;
    #[inline]
    fn read_ref<'a>(id: PropertyId, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Self::read(id, r)
    }
    fn from_ref(value: Self) -> Self {
        value
    }
    // Only Maximum QoS has this type: "It is a Protocol Error to include
    // Maximum QoS more than once, or to have a value other than 0 or 1"
    // (absent means 2).
    fn read(id: PropertyId, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(QoS::AtMostOnce),
            1 => Ok(QoS::AtLeastOnce),
            _ => Err(DecodeError::InvalidPropertyValue(id)),
        }
    }
    fn wire_len(&self) -> usize {
        1
    }
    fn write(&self, id: PropertyId, buf: &mut BytesMut) {
        buf.extend_from_slice(&[id as u8, *self as u8]);
    }
    fn check(&self, id: PropertyId) -> Result<(), EncodeError> {
        if *self == QoS::ExactlyOnce {
            // Absence means 2; the property may only say 0 or 1.
            return Err(EncodeError::InvalidPropertyValue(id));
        }
        Ok(())
    }
}

impl PropValue for u16 {
    type Ref<'a> = Self;
    #[inline]
    fn read_ref<'a>(id: PropertyId, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Self::read(id, r)
    }
    fn from_ref(value: Self) -> Self {
        value
    }
    fn read(id: PropertyId, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = r.u16()?;
        match (id, v) {
            // [MQTT-3.3.2-8] A Topic Alias of 0 is not permitted.
            (PropertyId::TopicAlias, 0) => Err(DecodeError::ZeroTopicAlias),
            // "It is a Protocol Error to include the Receive Maximum value of 0."
            (PropertyId::ReceiveMaximum, 0) => Err(DecodeError::InvalidPropertyValue(id)),
            _ => Ok(v),
        }
    }
    fn wire_len(&self) -> usize {
        2
    }
    fn write(&self, id: PropertyId, buf: &mut BytesMut) {
        let [a, b] = self.to_be_bytes();
        buf.extend_from_slice(&[id as u8, a, b]);
    }
    fn check(&self, id: PropertyId) -> Result<(), EncodeError> {
        if *self == 0 && matches!(id, PropertyId::TopicAlias | PropertyId::ReceiveMaximum) {
            return Err(EncodeError::InvalidPropertyValue(id));
        }
        Ok(())
    }
}

impl PropValue for u32 {
    type Ref<'a> = Self;
    #[inline]
    fn read_ref<'a>(id: PropertyId, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Self::read(id, r)
    }
    fn from_ref(value: Self) -> Self {
        value
    }
    fn read(id: PropertyId, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = r.u32()?;
        // "It is a Protocol Error to include ... the Maximum Packet Size ... [of] zero."
        if id == PropertyId::MaximumPacketSize && v == 0 {
            return Err(DecodeError::InvalidPropertyValue(id));
        }
        Ok(v)
    }
    fn wire_len(&self) -> usize {
        4
    }
    fn write(&self, id: PropertyId, buf: &mut BytesMut) {
        let [a, b, c, d] = self.to_be_bytes();
        buf.extend_from_slice(&[id as u8, a, b, c, d]);
    }
    fn check(&self, id: PropertyId) -> Result<(), EncodeError> {
        if *self == 0 && id == PropertyId::MaximumPacketSize {
            return Err(EncodeError::InvalidPropertyValue(id));
        }
        Ok(())
    }
}

/// Subscription Identifiers are variable byte integers from 1 to 268,435,455.
impl PropValue for NonZeroU32 {
    type Ref<'a> = Self;
    #[inline]
    fn read_ref<'a>(id: PropertyId, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Self::read(id, r)
    }
    fn from_ref(value: Self) -> Self {
        value
    }
    fn read(id: PropertyId, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // "It is a Protocol Error if the Subscription Identifier has a value of 0."
        NonZeroU32::new(r.var_int()?).ok_or(DecodeError::InvalidPropertyValue(id))
    }
    fn wire_len(&self) -> usize {
        var_int_len(self.get() as usize)
    }
    fn write(&self, id: PropertyId, buf: &mut BytesMut) {
        match u8::try_from(self.get()) {
            Ok(small) if small < 0x80 => buf.extend_from_slice(&[id as u8, small]),
            _ => {
                put_u8(buf, id as u8);
                write_var_int(buf, self.get() as usize);
            }
        }
    }
    fn check(&self, _id: PropertyId) -> Result<(), EncodeError> {
        if self.get() > MAX_VARIABLE_INT {
            return Err(EncodeError::SubscriptionIdOutOfRange);
        }
        Ok(())
    }
}

impl PropValue for MqttString {
    type Ref<'a> = &'a str;
    #[inline]
    fn read_ref<'a>(_: PropertyId, r: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
        r.str_ref()
    }
    fn from_ref(value: &str) -> Self {
        MqttString::copy_checked(value)
    }
    fn read(_: PropertyId, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.string()
    }
    fn wire_len(&self) -> usize {
        MqttString::wire_len(self)
    }
    fn write(&self, id: PropertyId, buf: &mut BytesMut) {
        write_field_with_id(buf, id, self.as_bytes());
    }
}

impl PropValue for Bytes {
    type Ref<'a> = &'a [u8];
    #[inline]
    fn read_ref<'a>(_: PropertyId, r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
        r.binary_ref()
    }
    fn from_ref(value: &[u8]) -> Self {
        Bytes::copy_from_slice(value)
    }
    fn read(_: PropertyId, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.binary()
    }
    fn wire_len(&self) -> usize {
        2 + self.len()
    }
    fn write(&self, id: PropertyId, buf: &mut BytesMut) {
        write_field_with_id(buf, id, self);
    }
    fn check(&self, _id: PropertyId) -> Result<(), EncodeError> {
        if self.len() > MAX_FIELD_LEN {
            return Err(EncodeError::BinaryTooLong);
        }
        Ok(())
    }
}

/// Stores `value` in `slot` unless the property was already seen.
fn set_once<T>(slot: &mut Option<T>, value: T, id: PropertyId) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateProperty(id));
    }
    *slot = Some(value);
    Ok(())
}

/// Writes a property identifier and a length-prefixed value: the three
/// fixed bytes in one piece, then the value.
#[inline]
fn write_field_with_id(buf: &mut BytesMut, id: PropertyId, data: &[u8]) {
    let [hi, lo] = (data.len() as u16).to_be_bytes();
    buf.extend_from_slice(&[id as u8, hi, lo]);
    buf.extend_from_slice(data);
}

/// Size of an optional property with its identifier, having checked it.
#[inline(always)]
fn opt_checked_len<T: PropValue>(v: &Option<T>, id: PropertyId) -> Result<usize, EncodeError> {
    match v {
        Some(v) => {
            v.check(id)?;
            Ok(1 + v.wire_len())
        }
        None => Ok(0),
    }
}

/// A property that may appear more than once, kept in order.
trait Repeated {
    const ID: PropertyId;
    type Item: Clone;
    fn read(r: &mut Reader<'_>) -> Result<Self::Item, DecodeError>;
    /// Checks one value as [`read`](Self::read) would, without keeping it.
    fn check_wire(r: &mut Reader<'_>) -> Result<(), DecodeError>;
    /// Wire size of one value (without the identifier).
    fn wire_len(item: &Self::Item) -> usize;
    /// Writes the identifier, then one value.
    fn write(item: &Self::Item, buf: &mut BytesMut);
}

/// Storage for a repeatable property: the decoded block it came in (parsed
/// on demand, so decoding costs no allocation) or a list the user built.
///
/// Two variants, so that the enum fits in a `Bytes` (32 bytes, the tag in
/// the niche of its vtable pointer): a third, "empty" one would add a tag
/// word to every property set and to every PUBLISH (248 bytes would become
/// 264), which costs more in moves than it saves in drops.
#[derive(Clone)]
enum List<I> {
    /// A whole property block that was validated when it was decoded (and
    /// holds at least one entry of this list's property), or an empty one.
    Wire(Bytes),
    Owned(Vec<I>),
}

impl<I> Default for List<I> {
    /// An empty block: building it writes four words and dropping it is
    /// one call that does nothing, cheaper than an empty `Vec`'s drop.
    fn default() -> Self {
        List::Wire(Bytes::new())
    }
}

/// Where the entries of one repeatable property lie within a validated
/// property block: each entry's range, identifier included.
struct WireEntries<'a, R: Repeated> {
    block: &'a Bytes,
    pos: usize,
    _kind: std::marker::PhantomData<R>,
}

impl<'a, R: Repeated> WireEntries<'a, R> {
    fn new(block: &'a Bytes) -> Self {
        WireEntries {
            block,
            pos: 0,
            _kind: std::marker::PhantomData,
        }
    }

    /// A reader positioned at the next entry's value, and the entry's
    /// start; `None` at the end.
    fn next_entry(&mut self) -> Option<(Reader<'a>, usize)> {
        // The block was fully validated when it was decoded, so none of these
        // reads fail; if one did, ending the iteration is the safe answer.
        let mut r = Reader::new(self.block, self.pos, self.block.len());
        while !r.is_empty() {
            let start = r.position();
            let id = read_id(&mut r).ok()?;
            if id == R::ID {
                return Some((r, start));
            }
            skip_value(id, &mut r).ok()?;
        }
        self.pos = r.position();
        None
    }
}

impl<R: Repeated> Iterator for WireEntries<'_, R> {
    /// An entry's range within the block.
    type Item = std::ops::Range<usize>;
    fn next(&mut self) -> Option<Self::Item> {
        let (mut r, start) = self.next_entry()?;
        skip_value(R::ID, &mut r).ok()?;
        self.pos = r.position();
        Some(start..self.pos)
    }
}

/// Iterates over one repeatable property's values within a property block.
struct WireIter<'a, R: Repeated>(WireEntries<'a, R>);

impl<R: Repeated> Iterator for WireIter<'_, R> {
    type Item = R::Item;
    fn next(&mut self) -> Option<R::Item> {
        let (mut r, _) = self.0.next_entry()?;
        let item = R::read(&mut r).ok()?;
        self.0.pos = r.position();
        Some(item)
    }
}

/// Either a wire iterator or a slice iterator, without boxing.
enum ListIter<'a, R: Repeated> {
    Wire(WireIter<'a, R>),
    Owned(std::slice::Iter<'a, R::Item>),
}

impl<R: Repeated> Iterator for ListIter<'_, R> {
    type Item = R::Item;
    fn next(&mut self) -> Option<R::Item> {
        match self {
            ListIter::Wire(w) => w.next(),
            ListIter::Owned(o) => o.next().cloned(),
        }
    }
}

impl<I: Clone> List<I> {
    fn iter<R: Repeated<Item = I>>(&self) -> ListIter<'_, R> {
        match self {
            List::Wire(block) => ListIter::Wire(WireIter(WireEntries::new(block))),
            List::Owned(v) => ListIter::Owned(v.iter()),
        }
    }

    fn push<R: Repeated<Item = I>>(&mut self, item: I) {
        match self {
            List::Wire(_) => {
                let mut v: Vec<I> = self.iter::<R>().collect();
                v.push(item);
                *self = List::Owned(v);
            }
            List::Owned(v) => v.push(item),
        }
    }

    /// How many entries there are (a decoded list's are counted without
    /// being parsed).
    fn len<R: Repeated<Item = I>>(&self) -> usize {
        match self {
            List::Wire(block) => WireEntries::<R>::new(block).count(),
            List::Owned(v) => v.len(),
        }
    }

    #[inline]
    fn is_empty<R: Repeated<Item = I>>(&self) -> bool {
        match self {
            List::Wire(block) if block.is_empty() => true,
            List::Wire(block) => WireEntries::<R>::new(block).next().is_none(),
            List::Owned(v) => v.is_empty(),
        }
    }

    /// Wire size of the entries, identifiers included.
    #[inline]
    fn wire_len<R: Repeated<Item = I>>(&self) -> usize {
        match self {
            // The entries as they came, measured without parsing them.
            List::Wire(block) if block.is_empty() => 0,
            List::Wire(block) => WireEntries::<R>::new(block).map(|e| e.len()).sum(),
            List::Owned(v) => v.iter().map(|i| 1 + R::wire_len(i)).sum(),
        }
    }

    #[inline]
    fn write<R: Repeated<Item = I>>(&self, buf: &mut BytesMut) {
        match self {
            List::Wire(block) if block.is_empty() => {}
            // Copied as they came: they were validated when decoded.
            List::Wire(block) => {
                for entry in WireEntries::<R>::new(block) {
                    buf.extend_from_slice(block.get(entry).unwrap_or_default());
                }
            }
            List::Owned(v) => {
                for item in v {
                    R::write(item, buf);
                }
            }
        }
    }
}

struct UserPair;

impl Repeated for UserPair {
    const ID: PropertyId = PropertyId::UserProperty;
    type Item = (MqttString, MqttString);
    fn read(r: &mut Reader<'_>) -> Result<Self::Item, DecodeError> {
        Ok((r.string()?, r.string()?))
    }
    #[inline]
    fn check_wire(r: &mut Reader<'_>) -> Result<(), DecodeError> {
        r.skip_string()?;
        r.skip_string()
    }
    fn wire_len((k, v): &Self::Item) -> usize {
        k.wire_len() + v.wire_len()
    }
    fn write((k, v): &Self::Item, buf: &mut BytesMut) {
        write_field_with_id(buf, Self::ID, k.as_bytes());
        v.write(buf);
    }
}

struct SubId;

impl Repeated for SubId {
    const ID: PropertyId = PropertyId::SubscriptionIdentifier;
    type Item = NonZeroU32;
    fn read(r: &mut Reader<'_>) -> Result<Self::Item, DecodeError> {
        NonZeroU32::read(PropertyId::SubscriptionIdentifier, r)
    }
    #[inline]
    fn check_wire(r: &mut Reader<'_>) -> Result<(), DecodeError> {
        Self::read(r).map(drop)
    }
    fn wire_len(item: &Self::Item) -> usize {
        PropValue::wire_len(item)
    }
    fn write(item: &Self::Item, buf: &mut BytesMut) {
        PropValue::write(item, Self::ID, buf)
    }
}

/// User Properties (§3.1.2.11.8 and in every packet): name/value pairs, in
/// the order they were sent; a name may appear more than once.
///
/// ```
/// use plover::codec::UserProperties;
///
/// let mut props = UserProperties::new();
/// props.push("unit".try_into().unwrap(), "celsius".try_into().unwrap());
/// props.push("unit".try_into().unwrap(), "kelvin".try_into().unwrap());
/// assert_eq!(props.len(), 2);
/// assert_eq!(props.get("unit").unwrap(), "celsius");
/// let all: Vec<_> = props.iter().map(|(k, v)| format!("{k}={v}")).collect();
/// assert_eq!(all, ["unit=celsius", "unit=kelvin"]);
/// ```
#[derive(Clone, Default)]
pub struct UserProperties(List<(MqttString, MqttString)>);

impl UserProperties {
    /// An empty list.
    pub fn new() -> Self {
        UserProperties::default()
    }

    /// Appends a pair; earlier pairs with the same name are kept.
    pub fn push(&mut self, name: MqttString, value: MqttString) {
        self.0.push::<UserPair>((name, value));
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (MqttString, MqttString)> + '_ {
        self.0.iter::<UserPair>()
    }

    /// The value of the first pair with this name.
    pub fn get(&self, name: &str) -> Option<MqttString> {
        self.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.0.len::<UserPair>()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty::<UserPair>()
    }

    fn from_block(block: Bytes) -> Self {
        UserProperties(List::Wire(block))
    }

    #[inline]
    fn wire_len(&self) -> usize {
        self.0.wire_len::<UserPair>()
    }

    #[inline]
    fn write(&self, buf: &mut BytesMut) {
        self.0.write::<UserPair>(buf)
    }
}

impl fmt::Debug for UserProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for UserProperties {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for UserProperties {}

impl<K, V> FromIterator<(K, V)> for UserProperties
where
    K: Into<MqttString>,
    V: Into<MqttString>,
{
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        UserProperties(List::Owned(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }
}

/// The Subscription Identifiers of a PUBLISH (§3.3.2.3.8): one for each
/// matching subscription that had one, so the receiver can tell which
/// subscriptions a message arrived through.
#[derive(Clone, Default)]
pub struct SubscriptionIdentifiers(List<NonZeroU32>);

impl SubscriptionIdentifiers {
    /// An empty list.
    pub fn new() -> Self {
        SubscriptionIdentifiers::default()
    }

    /// Appends an identifier.
    pub fn push(&mut self, id: NonZeroU32) {
        self.0.push::<SubId>(id);
    }

    /// The identifiers, in the order they were sent.
    pub fn iter(&self) -> impl Iterator<Item = NonZeroU32> + '_ {
        self.0.iter::<SubId>()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len::<SubId>()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty::<SubId>()
    }

    fn from_block(block: Bytes) -> Self {
        SubscriptionIdentifiers(List::Wire(block))
    }

    /// Wire size of the entries, having checked what the type allows but
    /// the wire does not (a decoded list was checked when it was read).
    #[inline]
    fn checked_len(&self) -> Result<usize, EncodeError> {
        if let List::Owned(ids) = &self.0 {
            for id in ids {
                id.check(PropertyId::SubscriptionIdentifier)?;
            }
        }
        Ok(self.0.wire_len::<SubId>())
    }

    #[inline]
    fn write(&self, buf: &mut BytesMut) {
        self.0.write::<SubId>(buf)
    }
}

impl fmt::Debug for SubscriptionIdentifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for SubscriptionIdentifiers {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for SubscriptionIdentifiers {}

impl FromIterator<NonZeroU32> for SubscriptionIdentifiers {
    fn from_iter<T: IntoIterator<Item = NonZeroU32>>(iter: T) -> Self {
        SubscriptionIdentifiers(List::Owned(iter.into_iter().collect()))
    }
}

/// The borrowed type of a property value type (see `PropValue::Ref`),
/// spelled out so that the documentation shows `&str`, not a projection.
macro_rules! ref_ty {
    ($lt:lifetime, MqttString) => { &$lt str };
    ($lt:lifetime, Bytes) => { &$lt [u8] };
    ($lt:lifetime, SubscriptionIdentifiers) => { SubscriptionIdentifiersRef<$lt> };
    ($lt:lifetime, $t:ident) => { $t };
}

/// The entries of one repeatable property in a checked block, borrowed.
struct RefEntries<'a> {
    r: Reader<'a>,
    id: PropertyId,
}

impl<'a> RefEntries<'a> {
    fn new(block: &'a [u8], id: PropertyId) -> Self {
        RefEntries {
            r: Reader::borrowed(block, 0, block.len()),
            id,
        }
    }

    /// A reader positioned at the next entry's value. The block was
    /// checked when it was decoded, so no read here fails; if one did,
    /// ending the iteration is the safe answer.
    fn next_value(&mut self) -> Option<&mut Reader<'a>> {
        while !self.r.is_empty() {
            let id = read_id(&mut self.r).ok()?;
            if id == self.id {
                return Some(&mut self.r);
            }
            skip_value(id, &mut self.r).ok()?;
        }
        None
    }
}

/// [`UserProperties`] as [`decode_slice`](super::decode_slice) gives
/// them: the pairs, borrowed from the checked property block, parsed as
/// they are iterated.
#[derive(Clone, Copy, Default)]
pub struct UserPropertiesRef<'a>(&'a [u8]);

impl<'a> UserPropertiesRef<'a> {
    fn from_block(block: &'a [u8]) -> Self {
        UserPropertiesRef(block)
    }

    /// The (name, value) pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        let mut entries = RefEntries::new(self.0, PropertyId::UserProperty);
        std::iter::from_fn(move || {
            let r = entries.next_value()?;
            Some((r.str_ref().ok()?, r.str_ref().ok()?))
        })
    }

    /// The value of the first pair named `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// An owned copy.
    pub fn to_owned_list(&self) -> UserProperties {
        if self.0.is_empty() {
            return UserProperties::default();
        }
        UserProperties::from_block(Bytes::copy_from_slice(self.0))
    }
}

impl fmt::Debug for UserPropertiesRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for UserPropertiesRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for UserPropertiesRef<'_> {}

/// [`SubscriptionIdentifiers`] as [`decode_slice`](super::decode_slice)
/// gives them, borrowed from the checked property block.
#[derive(Clone, Copy, Default)]
pub struct SubscriptionIdentifiersRef<'a>(&'a [u8]);

impl<'a> SubscriptionIdentifiersRef<'a> {
    fn from_block(block: &'a [u8]) -> Self {
        SubscriptionIdentifiersRef(block)
    }

    /// The identifiers, in order.
    pub fn iter(&self) -> impl Iterator<Item = NonZeroU32> + use<'a> {
        let mut entries = RefEntries::new(self.0, PropertyId::SubscriptionIdentifier);
        std::iter::from_fn(move || SubId::read(entries.next_value()?).ok())
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// An owned copy.
    pub fn to_owned_list(&self) -> SubscriptionIdentifiers {
        if self.0.is_empty() {
            return SubscriptionIdentifiers::default();
        }
        SubscriptionIdentifiers::from_block(Bytes::copy_from_slice(self.0))
    }
}

impl fmt::Debug for SubscriptionIdentifiersRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for SubscriptionIdentifiersRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for SubscriptionIdentifiersRef<'_> {}

/// The properties of a packet [`decode_slice`](super::decode_slice) read:
/// its property block as it lies in the input, checked when the packet was
/// decoded (as [`decode`](super::decode) checks it), and parsed into its
/// typed set `S` (a [`PublishPropertiesRef`], a [`ConnectPropertiesRef`],
/// ...) when [`get`](Self::get) asks for it. Keeping the block instead of
/// the parsed set keeps a borrowed packet small: most carry no properties,
/// and a parsed set is up to 150 bytes of `None`s to write.
#[derive(Clone, Copy)]
pub struct PropertiesRef<'a, S> {
    /// The property length and the properties; empty when there are none.
    block: &'a [u8],
    _set: std::marker::PhantomData<fn() -> S>,
}

/// The borrowed property sets, which a [`PropertiesRef`] parses into.
/// Implemented by the `...PropertiesRef` types of this module only.
pub trait PropertySet<'a>: Sized + Default + sealed::Sealed {
    #[doc(hidden)]
    fn parse_checked(block: &'a [u8]) -> Self;
}

mod sealed {
    pub trait Sealed {}
}

impl<'a, S> PropertiesRef<'a, S> {
    pub(crate) fn new(block: &'a [u8]) -> Self {
        PropertiesRef {
            block,
            _set: std::marker::PhantomData,
        }
    }

    /// True when the packet carried no property (or an empty block).
    pub fn is_empty(&self) -> bool {
        self.block.len() <= 1
    }

    /// The property block as it came: its length, then the properties.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.block
    }
}

impl<'a, S: PropertySet<'a>> PropertiesRef<'a, S> {
    /// The properties, parsed (they were checked when decoded, so this
    /// cannot fail).
    pub fn get(&self) -> S {
        if self.block.is_empty() {
            return S::default();
        }
        S::parse_checked(self.block)
    }
}

impl<S> Default for PropertiesRef<'_, S> {
    fn default() -> Self {
        PropertiesRef::new(&[])
    }
}

impl<'a, S: PropertySet<'a> + fmt::Debug> fmt::Debug for PropertiesRef<'a, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

impl<'a, S: PropertySet<'a> + PartialEq> PartialEq for PropertiesRef<'a, S> {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl<'a, S: PropertySet<'a> + Eq> Eq for PropertiesRef<'a, S> {}

/// Defines a packet's property set: its struct, and reading, sizing,
/// checking and writing it. Fields are `Option`s of a `PropValue` type;
/// user properties are always there; `[repeated]` names an extra repeatable
/// field (PUBLISH's subscription identifiers).
macro_rules! property_set {
    (
        $(#[$meta:meta])*
        $name:ident / $ref_name:ident {
            $( $(#[$fmeta:meta])* $field:ident: $ty:ident = $id:ident, )*
        }
        $( [repeated] $(#[$rmeta:meta])* $rfield:ident: $rty:ident = $rid:ident, )?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
            $( $(#[$rmeta])* pub $rfield: $rty, )?
            /// User Properties, in order.
            pub user_properties: UserProperties,
        }

        impl $name {
            /// An empty set.
            pub fn new() -> Self {
                Self::default()
            }

            /// True when no property is set.
            pub fn is_empty(&self) -> bool {
                true $( && self.$field.is_none() )* $( && self.$rfield.is_empty() )?
                    && self.user_properties.is_empty()
            }

            /// Reads the property length and the properties it covers;
            /// `packet` names the packet in errors.
            // Each property is a local of its own until the struct is built
            // in one expression at the end: with `read` inlined, the
            // compiler then writes the fields straight into the packet
            // being decoded, instead of filling a default struct and
            // copying it (a PUBLISH's set is 176 bytes) once or twice.
            #[inline]
            pub(crate) fn read(r: &mut Reader<'_>, packet: PacketType) -> Result<Self, DecodeError> {
                let (mut pr, start, end) = read_block(r)?;
                $( let mut $field: Option<$ty> = None; )*
                let mut has_users = false;
                // Whether the repeatable property (if the set has one) was seen.
                $( let mut $rfield = false; )?
                while !pr.is_empty() {
                    let id = read_id(&mut pr)?;
                    match id {
                        $( PropertyId::$id => set_once(&mut $field, PropValue::read(id, &mut pr)?, id)?, )*
                        $( PropertyId::$rid => {
                            SubId::check_wire(&mut pr)?;
                            $rfield = true;
                        } )?
                        PropertyId::UserProperty => {
                            // Checked here, kept below as part of the block.
                            UserPair::check_wire(&mut pr)?;
                            has_users = true;
                        }
                        property => {
                            return Err(DecodeError::PropertyNotAllowed { packet, property })
                        }
                    }
                }
                // Lists keep the whole block and pick their entries out when
                // iterated: no copy, no allocation.
                Ok(Self {
                    $( $field, )*
                    $( $rfield: if $rfield {
                        $rty::from_block(r.src_slice(start, end))
                    } else {
                        $rty::default()
                    }, )?
                    user_properties: if has_users {
                        UserProperties::from_block(r.src_slice(start, end))
                    } else {
                        UserProperties::default()
                    },
                })
            }

            /// Size of the properties, without the property length, having
            /// checked each value as it is measured: what the types allow
            /// but the wire does not (what the receiver's `read` would
            /// reject) is refused here, before anything is written. One
            /// walk over the set; encoding then walks it once more, to
            /// write it, with this size in hand.
            #[inline]
            pub(crate) fn checked_len(&self) -> Result<usize, EncodeError> {
                let len = 0 $( + opt_checked_len(&self.$field, PropertyId::$id)? )*
                    $( + self.$rfield.checked_len()? )?;
                Ok(len + self.user_properties.wire_len())
            }

            /// Writes the properties, without the property length, in the
            /// canonical order: single-valued properties in the order of
            /// the struct's fields, then the repeatable ones, user
            /// properties last (see the codec module's documentation).
            #[inline]
            pub(crate) fn write(&self, buf: &mut BytesMut) {
                $( if let Some(v) = &self.$field {
                    PropValue::write(v, PropertyId::$id, buf);
                } )*
                $( self.$rfield.write(buf); )?
                self.user_properties.write(buf);
            }
        }

        #[doc = concat!("[`", stringify!($name), "`] as [`decode_slice`](super::decode_slice) gives it: ")]
        /// the same properties, checked the same way, with strings and
        /// binary values borrowed from the input.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $ref_name<'a> {
            $( $(#[$fmeta])* pub $field: Option<ref_ty!('a, $ty)>, )*
            $( $(#[$rmeta])* pub $rfield: ref_ty!('a, $rty), )?
            /// User Properties, in order.
            pub user_properties: UserPropertiesRef<'a>,
        }

        impl sealed::Sealed for $ref_name<'_> {}

        impl<'a> PropertySet<'a> for $ref_name<'a> {
            fn parse_checked(block: &'a [u8]) -> Self {
                // Checked when decoded; the packet type only names errors.
                Self::read(&mut Reader::borrowed(block, 0, block.len()), PacketType::Connect)
                    .unwrap_or_default()
            }
        }

        impl<'a> $ref_name<'a> {
            /// True when no property is set.
            pub fn is_empty(&self) -> bool {
                true $( && self.$field.is_none() )* $( && self.$rfield.is_empty() )?
                    && self.user_properties.is_empty()
            }

            /// An owned copy.
            pub fn to_owned_set(&self) -> $name {
                $name {
                    $( $field: self.$field.map(<$ty as PropValue>::from_ref), )*
                    $( $rfield: self.$rfield.to_owned_list(), )?
                    user_properties: self.user_properties.to_owned_list(),
                }
            }

            /// [`read`](Self::read), and the block it read (with its length).
            #[inline]
            pub(crate) fn read_block(
                r: &mut Reader<'a>,
                packet: PacketType,
            ) -> Result<(Self, PropertiesRef<'a, Self>), DecodeError> {
                let start = r.position();
                let set = Self::read(r, packet)?;
                Ok((set, PropertiesRef::new(r.data_slice(start, r.position()))))
            }

            /// [`read`]($name::read) without keeping anything but borrowed
            /// slices: the same checks, in the same order, with the same
            /// errors.
            #[inline]
            pub(crate) fn read(r: &mut Reader<'a>, packet: PacketType) -> Result<Self, DecodeError> {
                let (mut pr, start, end) = read_block(r)?;
                $( let mut $field: Option<ref_ty!('a, $ty)> = None; )*
                let mut has_users = false;
                $( let mut $rfield = false; )?
                while !pr.is_empty() {
                    let id = read_id(&mut pr)?;
                    match id {
                        $( PropertyId::$id => set_once(&mut $field, <$ty as PropValue>::read_ref(id, &mut pr)?, id)?, )*
                        $( PropertyId::$rid => {
                            SubId::check_wire(&mut pr)?;
                            $rfield = true;
                        } )?
                        PropertyId::UserProperty => {
                            UserPair::check_wire(&mut pr)?;
                            has_users = true;
                        }
                        property => {
                            return Err(DecodeError::PropertyNotAllowed { packet, property })
                        }
                    }
                }
                let block = r.data_slice(start, end);
                Ok(Self {
                    $( $field, )*
                    $( $rfield: if $rfield { <ref_ty!('a, $rty)>::from_block(block) } else { Default::default() }, )?
                    user_properties: if has_users {
                        UserPropertiesRef::from_block(block)
                    } else {
                        UserPropertiesRef::default()
                    },
                })
            }
        }
    };
}

property_set! {
    /// Properties of CONNECT (§3.1.2.11).
    ConnectProperties / ConnectPropertiesRef {
        /// Seconds the broker keeps the session after the connection closes
        /// (0 or absent: it ends with the connection; `u32::MAX`: never).
        session_expiry_interval: u32 = SessionExpiryInterval,
        /// How many QoS 1/2 PUBLISHes the client will process at once.
        receive_maximum: u16 = ReceiveMaximum,
        /// The largest packet the client will accept.
        maximum_packet_size: u32 = MaximumPacketSize,
        /// The highest topic alias the client accepts from the broker.
        topic_alias_maximum: u16 = TopicAliasMaximum,
        /// Ask the broker for Response Information in CONNACK.
        request_response_information: bool = RequestResponseInformation,
        /// Whether the broker may send reason strings and user properties on
        /// failures (default true).
        request_problem_information: bool = RequestProblemInformation,
        /// Name of the enhanced authentication method.
        authentication_method: MqttString = AuthenticationMethod,
        /// Data for the enhanced authentication method.
        authentication_data: Bytes = AuthenticationData,
    }
}

property_set! {
    /// Properties of the will message, in the CONNECT payload (§3.1.3.2).
    WillProperties / WillPropertiesRef {
        /// Seconds the broker waits after the connection is lost before
        /// publishing the will.
        will_delay_interval: u32 = WillDelayInterval,
        /// Whether the will payload is UTF-8 text.
        payload_format_indicator: PayloadFormat = PayloadFormatIndicator,
        /// Lifetime of the will message in seconds.
        message_expiry_interval: u32 = MessageExpiryInterval,
        /// MIME type of the will payload.
        content_type: MqttString = ContentType,
        /// Topic for a response to the will message.
        response_topic: MqttString = ResponseTopic,
        /// Data that ties a response to this message.
        correlation_data: Bytes = CorrelationData,
    }
}

property_set! {
    /// Properties of CONNACK (§3.2.2.3): the broker's limits and answers.
    ConnAckProperties / ConnAckPropertiesRef {
        /// The session expiry the broker will use, if it differs from ours.
        session_expiry_interval: u32 = SessionExpiryInterval,
        /// How many QoS 1/2 PUBLISHes the broker processes at once (default 65,535).
        receive_maximum: u16 = ReceiveMaximum,
        /// The highest QoS the broker supports, 0 or 1 (absent: 2).
        maximum_qos: QoS = MaximumQoS,
        /// Whether the broker supports retained messages (default true).
        retain_available: bool = RetainAvailable,
        /// The largest packet the broker accepts.
        maximum_packet_size: u32 = MaximumPacketSize,
        /// The client identifier the broker assigned (when ours was empty).
        assigned_client_identifier: MqttString = AssignedClientIdentifier,
        /// The highest topic alias the broker accepts from us (default 0).
        topic_alias_maximum: u16 = TopicAliasMaximum,
        /// Human-readable diagnostics.
        reason_string: MqttString = ReasonString,
        /// Whether wildcard subscriptions are supported (default true).
        wildcard_subscription_available: bool = WildcardSubscriptionAvailable,
        /// Whether subscription identifiers are supported (default true).
        subscription_identifiers_available: bool = SubscriptionIdentifierAvailable,
        /// Whether shared subscriptions are supported (default true).
        shared_subscription_available: bool = SharedSubscriptionAvailable,
        /// The keepalive the broker wants us to use instead of ours.
        server_keep_alive: u16 = ServerKeepAlive,
        /// Basis for response topics, if we asked for it.
        response_information: MqttString = ResponseInformation,
        /// Another server to use.
        server_reference: MqttString = ServerReference,
        /// Name of the enhanced authentication method.
        authentication_method: MqttString = AuthenticationMethod,
        /// Data for the enhanced authentication method.
        authentication_data: Bytes = AuthenticationData,
    }
}

property_set! {
    /// Properties of PUBLISH (§3.3.2.3).
    PublishProperties / PublishPropertiesRef {
        /// Whether the payload is UTF-8 text.
        payload_format_indicator: PayloadFormat = PayloadFormatIndicator,
        /// Lifetime of the message in seconds.
        message_expiry_interval: u32 = MessageExpiryInterval,
        /// Stands in for the topic name (1 to the peer's Topic Alias Maximum).
        topic_alias: u16 = TopicAlias,
        /// Topic name for a response message.
        response_topic: MqttString = ResponseTopic,
        /// Data that ties a response to its request.
        correlation_data: Bytes = CorrelationData,
        /// MIME type of the payload.
        content_type: MqttString = ContentType,
    }
    [repeated]
    /// Identifiers of the subscriptions this message matched (broker to client only).
    subscription_identifiers: SubscriptionIdentifiers = SubscriptionIdentifier,
}

property_set! {
    /// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK,
    /// which all carry the same two.
    AckProperties / AckPropertiesRef {
        /// Human-readable diagnostics.
        reason_string: MqttString = ReasonString,
    }
}

property_set! {
    /// Properties of SUBSCRIBE (§3.8.2.1).
    SubscribeProperties / SubscribePropertiesRef {
        /// Identifier the broker will attach to messages matching these filters.
        subscription_identifier: NonZeroU32 = SubscriptionIdentifier,
    }
}

property_set! {
    /// Properties of UNSUBSCRIBE (§3.10.2.1): user properties only.
    UnsubscribeProperties / UnsubscribePropertiesRef {}
}

property_set! {
    /// Properties of DISCONNECT (§3.14.2.2).
    DisconnectProperties / DisconnectPropertiesRef {
        /// A new session expiry (client to broker only; may not turn 0 into non-zero).
        session_expiry_interval: u32 = SessionExpiryInterval,
        /// Human-readable diagnostics.
        reason_string: MqttString = ReasonString,
        /// Another server to use.
        server_reference: MqttString = ServerReference,
    }
}

property_set! {
    /// Properties of AUTH (§3.15.2.2).
    AuthProperties / AuthPropertiesRef {
        /// Name of the authentication method.
        authentication_method: MqttString = AuthenticationMethod,
        /// Data of this step of the exchange.
        authentication_data: Bytes = AuthenticationData,
        /// Human-readable diagnostics.
        reason_string: MqttString = ReasonString,
    }
}

/// Wire size of a property block including its length prefix.
pub(crate) fn block_len(props_len: usize) -> usize {
    var_int_len(props_len) + props_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_27_distinct_identifiers() {
        let mut bytes: Vec<u8> = PropertyId::ALL.iter().map(|p| *p as u8).collect();
        bytes.dedup();
        assert_eq!(bytes.len(), 27);
        for id in PropertyId::ALL {
            assert_eq!(PropertyId::from_u8(id as u8), Some(id));
        }
        assert_eq!(PropertyId::from_u8(0x04), None);
    }

    #[test]
    fn decoded_user_properties_are_views_into_the_block() {
        // Property length 20, then: user property ("a","1"), reason string
        // "why", user property ("a","2").
        let bytes = Bytes::from_static(&[
            20, 0x26, 0, 1, b'a', 0, 1, b'1', 0x1F, 0, 3, b'w', b'h', b'y', 0x26, 0, 1, b'a', 0, 1,
            b'2',
        ]);
        let mut r = Reader::whole(&bytes);
        let p = AckProperties::read(&mut r, PacketType::SubAck).unwrap();
        assert!(r.is_empty());
        assert_eq!(p.reason_string.as_deref(), Some("why"));
        let pairs: Vec<_> = p.user_properties.iter().collect();
        assert_eq!(pairs.len(), 2);
        assert_eq!(p.user_properties.len(), 2, "counted without parsing");
        assert_eq!((pairs[0].0.as_str(), pairs[0].1.as_str()), ("a", "1"));
        assert_eq!((pairs[1].0.as_str(), pairs[1].1.as_str()), ("a", "2"));
        // Zero-copy: the value "2" points into the input.
        assert_eq!(pairs[1].1.as_ptr(), bytes[20..].as_ptr());
        // Re-encoding puts the single-valued ones first, users after.
        assert_eq!(p.checked_len(), Ok(20));
    }

    #[test]
    fn push_after_decode_keeps_the_decoded_pairs() {
        let bytes = Bytes::from_static(&[7, 0x26, 0, 1, b'k', 0, 1, b'v']);
        let mut p =
            UnsubscribeProperties::read(&mut Reader::whole(&bytes), PacketType::Unsubscribe)
                .unwrap();
        p.user_properties
            .push(MqttString::from_static("k2"), MqttString::from_static("v2"));
        let keys: Vec<_> = p.user_properties.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["k", "k2"]);
    }

    #[test]
    fn duplicates_and_foreign_properties_are_rejected() {
        let dup = Bytes::from_static(&[6, 0x1F, 0, 0, 0x1F, 0, 0]);
        assert_eq!(
            AckProperties::read(&mut Reader::whole(&dup), PacketType::PubAck),
            Err(DecodeError::DuplicateProperty(PropertyId::ReasonString))
        );
        let foreign = Bytes::from_static(&[2, 0x01, 0]);
        assert_eq!(
            AckProperties::read(&mut Reader::whole(&foreign), PacketType::PubAck),
            Err(DecodeError::PropertyNotAllowed {
                packet: PacketType::PubAck,
                property: PropertyId::PayloadFormatIndicator
            })
        );
    }
}
