//! [`TopicName`] and [`TopicFilter`]: MQTT strings checked once, when they
//! are made, for the rules of what they name.
//!
//! A PUBLISH, a will, a SUBSCRIBE and an UNSUBSCRIBE hold these instead of
//! plain [`MqttString`]s, so a packet cannot carry a name with a wildcard
//! or a filter with a misplaced one, and the mistake is reported where the
//! string is made, not later when the packet is sent. Encoding then has
//! nothing to check: the decoder makes them from what it has just
//! validated, and a user makes them with `try_from`, which validates.

use std::fmt;
use std::ops::Deref;

use super::primitives::MqttString;
use crate::topic::{TopicError, validate_topic_filter, validate_topic_name};

/// Shared `impl`s of the two types: the string views, comparisons with
/// strings and conversions out to an [`MqttString`] or a `String`.
macro_rules! string_newtype {
    ($name:ident, $validate:path) => {
        impl $name {
            /// Wraps a string literal, checking it once.
            ///
            /// # Panics
            ///
            /// If the literal is not valid as this kind of string; this is
            /// meant for literals, use `try_from` for anything else.
            pub fn from_static(s: &'static str) -> Self {
                match $validate(s) {
                    Ok(()) => $name(MqttString::from_static(s)),
                    Err(e) => panic!("invalid {} literal {s:?}: {e}", stringify!($name)),
                }
            }

            /// Wraps a string the decoder (or the caller) has validated.
            #[inline]
            pub(crate) fn from_checked(s: MqttString) -> Self {
                $name(s)
            }

            /// Wire size: two length bytes and the UTF-8 bytes.
            #[inline]
            pub(crate) fn wire_len(&self) -> usize {
                self.0.wire_len()
            }

            /// Writes the two length bytes and the UTF-8 bytes.
            #[inline]
            pub(crate) fn write(&self, buf: &mut bytes::BytesMut) {
                self.0.write(buf);
            }

            /// The string as `&str`.
            #[inline]
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }

            /// The string as an [`MqttString`], sharing its storage.
            #[inline]
            pub fn as_mqtt_string(&self) -> &MqttString {
                &self.0
            }

            /// The underlying [`MqttString`], sharing its storage.
            #[inline]
            pub fn into_inner(self) -> MqttString {
                self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = TopicError;
            fn try_from(s: &str) -> Result<Self, TopicError> {
                $validate(s)?;
                // The check above covers everything an MqttString refuses
                // (length and U+0000), so this cannot fail.
                MqttString::try_from(s)
                    .map($name)
                    .map_err(|_| TopicError::TooLong)
            }
        }

        impl TryFrom<String> for $name {
            type Error = TopicError;
            fn try_from(s: String) -> Result<Self, TopicError> {
                $validate(&s)?;
                MqttString::try_from(s)
                    .map($name)
                    .map_err(|_| TopicError::TooLong)
            }
        }

        impl TryFrom<&String> for $name {
            type Error = TopicError;
            fn try_from(s: &String) -> Result<Self, TopicError> {
                $name::try_from(s.as_str())
            }
        }

        /// Checks the string for the rules of this kind; no copy.
        impl TryFrom<MqttString> for $name {
            type Error = TopicError;
            fn try_from(s: MqttString) -> Result<Self, TopicError> {
                $validate(&s)?;
                Ok($name(s))
            }
        }

        impl Deref for $name {
            type Target = str;
            #[inline]
            fn deref(&self) -> &str {
                self.0.as_str()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.0.as_str()
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self.as_str(), f)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<MqttString> for $name {
            fn eq(&self, other: &MqttString) -> bool {
                self.0 == *other
            }
        }

        impl From<$name> for MqttString {
            fn from(s: $name) -> MqttString {
                s.0
            }
        }

        impl From<$name> for String {
            fn from(s: $name) -> String {
                s.as_str().to_owned()
            }
        }
    };
}

/// A topic name, what a PUBLISH or a will is sent to: an [`MqttString`]
/// of at least one byte with no wildcard (`+` or `#`) in it.
///
/// Checked once, when made; a packet holding one needs no check when it is
/// encoded. The one exception to "at least one byte" is
/// [`TopicName::empty`], for a 5.0 PUBLISH that names its topic by a Topic
/// Alias alone; encoding refuses it without one.
///
/// ```
/// use plover::codec::TopicName;
/// use plover::topic::TopicError;
///
/// let name = TopicName::try_from("home/kitchen/light").unwrap();
/// assert_eq!(name, "home/kitchen/light");
/// assert!(name.starts_with("home/"));
///
/// assert_eq!(TopicName::try_from("home/+/light"), Err(TopicError::WildcardInName));
/// assert_eq!(TopicName::try_from(""), Err(TopicError::Empty));
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicName(MqttString);

string_newtype!(TopicName, validate_topic_name);

impl TopicName {
    /// The zero-length name of a 5.0 PUBLISH that uses a Topic Alias set
    /// earlier on the connection (§3.3.2.3.4). Only valid with a Topic
    /// Alias property; encoding refuses it otherwise.
    pub const fn empty() -> Self {
        TopicName(MqttString::new())
    }
}

/// What [`Client::publish`](crate::Client::publish) takes as its topic: a
/// `&str` or `String`, checked and copied on each call, or a
/// [`TopicName`] made once, which is shared (a reference count) and not
/// checked again. Publishing to the same topic many times a second, make
/// the name once:
///
/// ```no_run
/// # async fn run(client: plover::Client) -> Result<(), plover::ClientError> {
/// use plover::QoS;
/// use plover::codec::TopicName;
///
/// let topic = TopicName::try_from("plant/line-3/vibration").expect("a topic name");
/// for reading in 0..1000u32 {
///     client.publish(&topic, reading.to_string(), QoS::AtMostOnce, false).await?;
/// }
/// # Ok(())
/// # }
/// ```
pub trait IntoTopicName {
    /// The checked topic name.
    fn into_topic_name(self) -> Result<TopicName, TopicError>;
}

impl IntoTopicName for &str {
    fn into_topic_name(self) -> Result<TopicName, TopicError> {
        TopicName::try_from(self)
    }
}

/// For iterating over a list of `&str` topics.
impl IntoTopicName for &&str {
    fn into_topic_name(self) -> Result<TopicName, TopicError> {
        TopicName::try_from(*self)
    }
}

impl IntoTopicName for String {
    fn into_topic_name(self) -> Result<TopicName, TopicError> {
        TopicName::try_from(self)
    }
}

impl IntoTopicName for &String {
    fn into_topic_name(self) -> Result<TopicName, TopicError> {
        TopicName::try_from(self.as_str())
    }
}

/// Checked, not copied: the name shares the string's storage.
impl IntoTopicName for MqttString {
    fn into_topic_name(self) -> Result<TopicName, TopicError> {
        TopicName::try_from(self)
    }
}

impl IntoTopicName for &MqttString {
    fn into_topic_name(self) -> Result<TopicName, TopicError> {
        TopicName::try_from(self.clone())
    }
}

/// The empty name is refused: a `Client` sends every topic in full (it
/// sets up any Topic Alias itself).
impl IntoTopicName for TopicName {
    fn into_topic_name(self) -> Result<TopicName, TopicError> {
        if self.is_empty() {
            return Err(TopicError::Empty);
        }
        Ok(self)
    }
}

impl IntoTopicName for &TopicName {
    fn into_topic_name(self) -> Result<TopicName, TopicError> {
        self.clone().into_topic_name()
    }
}

/// A topic filter, what a SUBSCRIBE or UNSUBSCRIBE names: an
/// [`MqttString`] of at least one byte whose wildcards are where they may
/// be (`#` last and alone in its level, `+` alone in its level), or a
/// shared subscription `$share/{ShareName}/{filter}`.
///
/// Checked once, when made; a packet holding one needs no check when it is
/// encoded.
///
/// ```
/// use plover::codec::TopicFilter;
/// use plover::topic::TopicError;
///
/// let filter = TopicFilter::try_from("home/+/temperature").unwrap();
/// assert!(!filter.is_shared());
/// assert!(TopicFilter::try_from("$share/workers/jobs/#").unwrap().is_shared());
///
/// assert_eq!(
///     TopicFilter::try_from("home/#/x"),
///     Err(TopicError::MisplacedMultiLevelWildcard)
/// );
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicFilter(MqttString);

string_newtype!(TopicFilter, validate_topic_filter);

impl TopicFilter {
    /// Whether this is a shared subscription (`$share/{ShareName}/...`,
    /// 5.0 §4.8.2). A valid filter with that prefix is always one.
    #[inline]
    pub fn is_shared(&self) -> bool {
        self.0.as_bytes().starts_with(b"$share/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_what_a_topic_name_cannot_be() {
        assert_eq!(TopicName::try_from("a/b").unwrap(), "a/b");
        for (bad, err) in [
            ("", TopicError::Empty),
            ("a/+", TopicError::WildcardInName),
            ("#", TopicError::WildcardInName),
            ("a\0b", TopicError::ContainsNul),
        ] {
            assert_eq!(TopicName::try_from(bad), Err(err), "{bad:?}");
            assert_eq!(TopicName::try_from(bad.to_owned()), Err(err), "{bad:?}");
        }
        let long = "a".repeat(65_536);
        assert_eq!(TopicName::try_from(long), Err(TopicError::TooLong));
        assert_eq!(
            TopicName::try_from("a".repeat(65_535)).unwrap().len(),
            65_535
        );
        assert!(TopicName::empty().is_empty());
    }

    #[test]
    fn filters_refuse_misplaced_wildcards_and_know_shares() {
        for good in ["a/+/b", "#", "+", "$SYS/#", "$share/g/a/#"] {
            let f = TopicFilter::try_from(good).unwrap();
            assert_eq!(f, good);
            assert_eq!(f.is_shared(), good.starts_with("$share/"), "{good}");
        }
        for (bad, err) in [
            ("", TopicError::Empty),
            ("a/#/b", TopicError::MisplacedMultiLevelWildcard),
            ("a+", TopicError::MisplacedSingleLevelWildcard),
            ("$share/g", TopicError::MissingSharedFilter),
            ("$share//a", TopicError::InvalidShareName),
        ] {
            assert_eq!(TopicFilter::try_from(bad), Err(err), "{bad:?}");
        }
    }

    #[test]
    fn conversions_keep_the_storage_and_the_text() {
        let s = MqttString::try_from("x/y").unwrap();
        let name = TopicName::try_from(s.clone()).unwrap();
        assert_eq!(name, s);
        assert_eq!(name.as_mqtt_string().as_ptr(), s.as_ptr());
        assert_eq!(MqttString::from(name.clone()), s);
        assert_eq!(String::from(name), "x/y");
        assert_eq!(format!("{:?}", TopicFilter::from_static("a/#")), "\"a/#\"");
        assert_eq!(TopicFilter::from_static("a/#").to_string(), "a/#");
    }

    #[test]
    fn what_publish_takes_as_a_topic() {
        fn name(t: impl IntoTopicName) -> Result<TopicName, TopicError> {
            t.into_topic_name()
        }
        let owned = String::from("a/b");
        for got in [
            name("a/b"),
            // As a loop over a list of topics has them.
            name(["a/b"].iter().next().expect("one")),
            name(owned.clone()),
            name(&owned),
            name(MqttString::from_static("a/b")),
        ] {
            assert_eq!(got.unwrap(), "a/b");
        }
        assert_eq!(name("a/#"), Err(TopicError::WildcardInName));
        assert_eq!(name(""), Err(TopicError::Empty));
        assert_eq!(name(TopicName::empty()), Err(TopicError::Empty));
        // A name (or an MqttString) is shared, not copied.
        let made = TopicName::try_from("x/y").unwrap();
        assert_eq!(name(&made).unwrap().as_ptr(), made.as_ptr());
        assert_eq!(name(made.clone()).unwrap().as_ptr(), made.as_ptr());
        let s = MqttString::try_from("x/y").unwrap();
        assert_eq!(name(&s).unwrap().as_ptr(), s.as_ptr());
    }

    #[test]
    #[should_panic(expected = "invalid TopicName literal")]
    fn from_static_panics_on_a_bad_literal() {
        let _ = TopicName::from_static("a/#");
    }
}
