//! Topic names and topic filters: validation, wildcard matching, and `$share` parsing.
//!
//! A *topic name* is what a PUBLISH is addressed to; a *topic filter* is what a
//! SUBSCRIBE asks for and may contain the wildcards `+` (exactly one level) and
//! `#` (this level and everything below it). Both are split into levels by `/`,
//! and empty levels are significant: `a/b`, `a//b`, `/a/b` and `a/b/` are four
//! different topics, because the spec forbids the server from normalising them
//! [MQTT-4.7.3-4].
//!
//! The rules are MQTT 3.1.1 §4.7 and MQTT 5.0 §4.7 and §4.8.2 (shared
//! subscriptions, `$share/{ShareName}/{filter}`).

use crate::codec::{has_nul, has_nul_or_wildcard, short_word};

/// Topic level separator.
const SEPARATOR: char = '/';
/// Multi-level wildcard.
const MULTI_LEVEL: &str = "#";
/// Single-level wildcard.
const SINGLE_LEVEL: &str = "+";
/// Prefix that marks a shared subscription (MQTT 5.0 §4.8.2).
const SHARE_PREFIX: &str = "$share/";
/// Largest encoded length of any MQTT UTF-8 string, topic or filter included.
const MAX_LEN: usize = 65_535;

/// Why a topic name or filter is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The topic name or filter is zero bytes long.
    #[error("topic is empty; topic names and filters must be at least one character long")]
    Empty,
    /// The UTF-8 encoding is longer than 65,535 bytes.
    #[error("topic is longer than 65535 bytes when UTF-8 encoded")]
    TooLong,
    /// The string contains the null character U+0000.
    #[error("topic contains the null character U+0000")]
    ContainsNul,
    /// A topic name (as opposed to a filter) contains `+` or `#`.
    #[error("topic name contains a wildcard character ('+' or '#')")]
    WildcardInName,
    /// `#` is not the last character, or is not alone in its level.
    #[error("'#' must be the last character and occupy a whole topic level")]
    MisplacedMultiLevelWildcard,
    /// `+` shares its level with other characters.
    #[error("'+' must occupy a whole topic level")]
    MisplacedSingleLevelWildcard,
    /// The `ShareName` of a `$share/` filter is empty or contains `+` or `#`.
    #[error("shared subscription ShareName must be non-empty and must not contain '/', '+' or '#'")]
    InvalidShareName,
    /// A `$share/{ShareName}` filter has no topic filter after the `ShareName`.
    #[error("shared subscription has no topic filter after the ShareName")]
    MissingSharedFilter,
}

/// Checks that apply to every topic name and topic filter, whatever its kind.
fn validate_common(s: &str) -> Result<(), TopicError> {
    // [MQTT-4.7.3-1] at least one character long.
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    // [MQTT-4.7.3-3] must not encode to more than 65,535 bytes. `str::len`
    // is already the UTF-8 byte length, which is what goes on the wire.
    if s.len() > MAX_LEN {
        return Err(TopicError::TooLong);
    }
    // [MQTT-4.7.3-2] must not include the null character U+0000.
    if has_nul(s.as_bytes()) {
        return Err(TopicError::ContainsNul);
    }
    Ok(())
}

/// Validates a topic name, as carried by PUBLISH (and a Will Topic).
///
/// A topic name is at least one byte, at most 65,535 bytes, free of U+0000,
/// and never contains a wildcard.
///
/// An MQTT 5.0 PUBLISH may carry a zero-length topic name when it uses a Topic
/// Alias; that is a packet-level decision, so this function, which validates a
/// *name*, reports it as [`TopicError::Empty`].
///
/// # Errors
///
/// [`TopicError::Empty`], [`TopicError::TooLong`] or
/// [`TopicError::ContainsNul`] when the string itself is unusable, otherwise
/// [`TopicError::WildcardInName`] when it contains `+` or `#`.
///
/// ```
/// use plover::topic::{validate_topic_name, TopicError};
///
/// assert_eq!(validate_topic_name("sport/tennis/player1"), Ok(()));
/// assert_eq!(validate_topic_name("sport/+"), Err(TopicError::WildcardInName));
/// ```
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    // [MQTT-4.7.3-1] at least one character; [MQTT-4.7.3-3] at most 65,535 bytes.
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_LEN {
        return Err(TopicError::TooLong);
    }
    // [MQTT-4.7.3-2] no U+0000, and [MQTT-3.3.2-2] / [MQTT-4.7.1-1] no
    // wildcards in a topic name: one word-at-a-time pass finds any of the
    // three; only then is it worth telling which (U+0000 is reported first,
    // wherever it is, as the rules are listed).
    if has_nul_or_wildcard(name.as_bytes()) {
        if has_nul(name.as_bytes()) {
            return Err(TopicError::ContainsNul);
        }
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Validates a topic filter, as carried by SUBSCRIBE and UNSUBSCRIBE.
///
/// Besides the length and U+0000 rules shared with topic names, `#` must be
/// the last character and alone in its level, and `+` must be alone in its
/// level. A filter beginning with `$share/` is validated as a shared
/// subscription (see [`SharedFilter::parse`]).
///
/// # Errors
///
/// The first rule broken, checked in this order: [`TopicError::Empty`],
/// [`TopicError::TooLong`], [`TopicError::ContainsNul`]; then for a shared
/// subscription [`TopicError::InvalidShareName`] or
/// [`TopicError::MissingSharedFilter`]; then, left to right through the
/// levels, [`TopicError::MisplacedMultiLevelWildcard`] or
/// [`TopicError::MisplacedSingleLevelWildcard`].
///
/// ```
/// use plover::topic::{validate_topic_filter, TopicError};
///
/// assert_eq!(validate_topic_filter("sport/tennis/+"), Ok(()));
/// assert_eq!(validate_topic_filter("+/tennis/#"), Ok(()));
/// assert_eq!(validate_topic_filter("$share/group/sport/#"), Ok(()));
/// assert_eq!(
///     validate_topic_filter("sport/tennis#"),
///     Err(TopicError::MisplacedMultiLevelWildcard)
/// );
/// assert_eq!(
///     validate_topic_filter("sport+"),
///     Err(TopicError::MisplacedSingleLevelWildcard)
/// );
/// assert_eq!(
///     validate_topic_filter("$share/group"),
///     Err(TopicError::MissingSharedFilter)
/// );
/// ```
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    // The length and U+0000 limits apply to the string as sent, so a shared
    // subscription is measured including its `$share/{ShareName}/` prefix.
    validate_common(filter)?;
    match SharedFilter::parse_checked(filter)? {
        Some(_) => Ok(()),
        None => validate_filter_levels(filter.as_bytes()),
    }
}

/// Validates a topic filter that is already a valid MQTT string (no U+0000,
/// at most 65,535 bytes, as every [`MqttString`](crate::codec::MqttString)
/// is): the same result as [`validate_topic_filter`], without scanning for
/// what the string type already excludes. Returns whether the filter is a
/// shared subscription, so the codec parses the `$share/` prefix once.
///
/// Inlined into the SUBSCRIBE and UNSUBSCRIBE loops: for an ordinary
/// filter it is one word-at-a-time pass with no call, which is most of
/// what encoding a SUBSCRIBE costs.
#[inline(always)]
pub(crate) fn validate_filter_of_mqtt_string(filter: &str) -> Result<bool, TopicError> {
    debug_assert!(filter.len() <= MAX_LEN && !has_nul(filter.as_bytes()));
    match filter.as_bytes().first() {
        None => Err(TopicError::Empty),
        // Most filters do not start with `$`, so are not shared; those
        // that do take the slower path out of line.
        Some(b'$') => validate_dollar_filter(filter),
        Some(_) => validate_filter_levels(filter.as_bytes()).map(|()| false),
    }
}

/// [`validate_filter_of_mqtt_string`] out of line, for decoding: a
/// SUBSCRIBE or UNSUBSCRIBE read is one arm of the decoder's dispatch,
/// which stays small (and the PUBLISH path next to it inlined as it was)
/// with a call here.
#[inline(never)]
pub(crate) fn validate_read_filter(filter: &str) -> Result<bool, TopicError> {
    validate_filter_of_mqtt_string(filter)
}

/// [`validate_filter_of_mqtt_string`] for a filter starting with `$`:
/// a shared subscription, or an ordinary filter such as `$SYS/#`.
#[inline(never)]
fn validate_dollar_filter(filter: &str) -> Result<bool, TopicError> {
    if SharedFilter::parse_checked(filter)?.is_some() {
        return Ok(true);
    }
    validate_filter_levels(filter.as_bytes()).map(|()| false)
}

/// Checks the wildcard placement rules of a (non-shared) topic filter.
///
/// Only the level structure is checked here; the caller has already applied
/// [`validate_common`].
///
/// The rules are about levels, but a level can only be wrong through a
/// wildcard in it, and a wildcard is in the right place exactly when its
/// neighbours are separators (or the ends): `#` after `/` or at the start,
/// and last; `+` between `/`s or the ends. So only the wildcards are looked
/// at, found eight bytes at a time; a filter with none costs a few
/// instructions per eight bytes, one with a wildcard a few more for each.
/// The first wildcard out of place is in the first level that breaks a
/// rule, which is the one reported (see [`misplaced_wildcard`]).
#[inline(always)]
fn validate_filter_levels(bytes: &[u8]) -> Result<(), TopicError> {
    // `+` and `#` are ASCII, so they never occur inside a multi-byte
    // character: looking at bytes is exact.
    let Some(last) = bytes.last_chunk::<8>() else {
        // Shorter than a word: padded with zero bytes, which are not
        // wildcards.
        return check_wildcards(bytes, 0, short_word(bytes, 0));
    };
    let (words, tail) = bytes.as_chunks::<8>();
    let mut at = 0;
    for word in words {
        check_wildcards(bytes, at, u64::from_le_bytes(*word))?;
        at += 8;
    }
    if tail.is_empty() {
        return Ok(());
    }
    // The last eight bytes, less the lanes the loop has seen already
    // (shifted out: they are not wildcards for this word's purposes).
    let seen = 8 * (8 - tail.len()) as u32;
    let word = u64::from_le_bytes(*last) >> seen;
    check_wildcards(bytes, bytes.len() - tail.len(), word)
}

/// For the decoder: whether `raw`, a topic filter as read off the wire
/// (its UTF-8 not yet checked), is valid and not shared as far as
/// anything but UTF-8 goes: not empty, not starting with `$`, no U+0000,
/// every wildcard in place. Inlined where the filter is read, this is
/// the U+0000 scan and the wildcard scan back to back, without the calls
/// (and the second look at the string's length and first byte) of
/// checking a string and then a filter.
///
/// `false` says only that the full checks must run: they find the
/// precise error, if there is one (a `$` filter may well be valid).
/// Wildcards are ASCII, never part of a multi-byte character, so bytes
/// that turn out not to be UTF-8 do not make this wrong.
#[inline]
pub(crate) fn is_plain_valid_filter(raw: &[u8]) -> bool {
    match raw.first() {
        None | Some(b'$') => return false,
        Some(_) => {}
    }
    raw.len() <= MAX_LEN && !has_nul(raw) && validate_filter_levels(raw).is_ok()
}

/// Checks each wildcard among the bytes of `word`, which are the bytes of
/// `bytes` from `at` on (lanes past the end hold no wildcard).
#[inline(always)]
fn check_wildcards(bytes: &[u8], at: usize, word: u64) -> Result<(), TopicError> {
    let mut found = wildcard_lanes(word);
    while found != 0 {
        let i = at + (found.trailing_zeros() / 8) as usize;
        // [MQTT-4.7.1-2] `#` must be a whole level, and the last one;
        // [MQTT-4.7.1-3] `+` must be a whole level. So: a separator (or
        // the start) before either, and after a `+` a separator or the
        // end; after a `#` nothing.
        let starts_level = i == 0 || bytes.get(i.wrapping_sub(1)) == Some(&b'/');
        let ends_level = match bytes.get(i + 1) {
            None => true,
            Some(&next) => next == b'/' && bytes.get(i) == Some(&b'+'),
        };
        if !(starts_level && ends_level) {
            return Err(misplaced_wildcard(bytes, i));
        }
        found &= found - 1;
    }
    Ok(())
}

/// Where the ShareName at the start of `rest` (what follows `$share/`)
/// ends: at its first `/`, or at the end of `rest` if it has none. Found
/// eight bytes at a time, together with any wildcard before that point,
/// which makes the ShareName invalid.
#[inline]
fn share_name_end(rest: &[u8]) -> Result<usize, TopicError> {
    let mut at = 0;
    loop {
        let tail = rest.get(at..).unwrap_or_default();
        // Past the end, zero bytes: neither `/` nor a wildcard.
        let word = match tail.first_chunk::<8>() {
            Some(word) => u64::from_le_bytes(*word),
            None => short_word(tail, 0),
        };
        let wildcards = wildcard_lanes(word);
        let slashes = byte_lanes(word, b'/');
        // The lanes before the first `/` (all of them if there is none).
        let before = match slashes.trailing_zeros() {
            64 => u64::MAX,
            bit => (1u64 << (bit & !7)) - 1,
        };
        if wildcards & before != 0 {
            return Err(TopicError::InvalidShareName);
        }
        if slashes != 0 {
            return Ok(at + (slashes.trailing_zeros() / 8) as usize);
        }
        if tail.len() <= 8 {
            return Ok(rest.len());
        }
        at += 8;
    }
}

/// The high bit of each byte of `word` that is `byte`.
#[inline(always)]
fn byte_lanes(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let x = word ^ u64::from_ne_bytes([byte; 8]);
    !((((x & LOW7) + LOW7) | x) | LOW7)
}

/// The high bit of each byte of `word` that is `+` (0x2B) or `#` (0x23):
/// they differ only in bit 3, so one exact zero-byte test of `word` with
/// that bit cleared, against 0x23, finds both.
#[inline(always)]
fn wildcard_lanes(word: u64) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let x = (word & !0x0808_0808_0808_0808) ^ 0x2323_2323_2323_2323;
    // A lane of `x` is zero exactly when its high bit ends up set here
    // (no carries cross lanes, unlike the cheaper "has a zero" test).
    !((((x & LOW7) + LOW7) | x) | LOW7)
}

/// The error for the wildcard at `bytes[i]`, the first one out of place.
///
/// Its level is the first that breaks a rule. A level-by-level check
/// names a misplaced `#` if that level has one (`#` is checked first
/// within a level), and a misplaced `+` otherwise; a `#` in the level of
/// a misplaced `+` can only be after it (one before it would have been
/// found first).
#[cold]
fn misplaced_wildcard(bytes: &[u8], i: usize) -> TopicError {
    let rest = bytes.get(i..).unwrap_or_default();
    let level = rest.split(|&b| b == b'/').next().unwrap_or_default();
    if level.contains(&b'#') {
        TopicError::MisplacedMultiLevelWildcard
    } else {
        TopicError::MisplacedSingleLevelWildcard
    }
}

/// Returns `true` when the topic filter contains a wildcard (`+` or `#`).
///
/// Filters without wildcards match exactly one topic name, which lets a
/// router use a plain lookup for them.
///
/// ```
/// use plover::topic::is_wildcard;
///
/// assert!(is_wildcard("sport/+/player1"));
/// assert!(!is_wildcard("sport/tennis"));
/// ```
#[must_use]
pub fn is_wildcard(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

/// Returns `true` when the topic `name` matches the topic `filter`.
///
/// Levels are separated by `/` and compared exactly (no normalisation, so
/// empty levels count). `+` matches exactly one level, which may be empty;
/// `#` matches its parent level and any number of child levels, so
/// `sport/#` matches `sport`. A filter beginning with a wildcard does not
/// match a name beginning with `$` (such as `$SYS/...`). For a shared
/// subscription `$share/{ShareName}/{filter}`, matching uses the inner
/// `{filter}`.
///
/// Both arguments are assumed to be valid (see [`validate_topic_filter`] and
/// [`validate_topic_name`]); on invalid input the result is unspecified but
/// the function never panics. It does not allocate.
///
/// ```
/// use plover::topic::matches;
///
/// assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
/// assert!(matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
/// assert!(matches("sport/+", "sport/"));
/// assert!(!matches("sport/+", "sport"));
/// assert!(!matches("#", "$SYS/uptime"));
/// assert!(matches("$SYS/#", "$SYS/uptime"));
/// assert!(matches("$share/workers/jobs/+", "jobs/42"));
/// ```
#[must_use]
pub fn matches(filter: &str, name: &str) -> bool {
    let filter = match filter.strip_prefix(SHARE_PREFIX) {
        // Shared subscriptions route on the filter after `{ShareName}/`
        // (MQTT 5.0 §4.8.2); the ShareName only selects the group.
        Some(rest) => match rest.split_once(SEPARATOR) {
            Some((_group, inner)) => inner,
            // `$share/{ShareName}` with no filter is invalid and matches nothing.
            None => return false,
        },
        None => filter,
    };

    // [MQTT-4.7.2-1] a filter starting with a wildcard must not match a topic
    // name starting with `$`; those are reserved for server-specific topics.
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }

    let mut filter_levels = filter.split(SEPARATOR);
    let mut name_levels = name.split(SEPARATOR);
    loop {
        match (filter_levels.next(), name_levels.next()) {
            // `#` matches whatever is left, including nothing at all: it
            // covers the parent level too, so `sport/#` matches `sport`.
            (Some(MULTI_LEVEL), _) => return true,
            // `+` matches exactly one level, whatever it holds (even "").
            (Some(SINGLE_LEVEL), Some(_)) => {}
            (Some(f), Some(n)) if f == n => {}
            // Both ran out together: every level matched.
            (None, None) => return true,
            // A differing level, or one side has levels the other lacks.
            _ => return false,
        }
    }
}

/// A parsed shared subscription `$share/{group}/{filter}` (MQTT 5.0 §4.8.2).
///
/// Both fields borrow from the string that was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    /// The `ShareName`: which group of subscribers the messages are shared among.
    pub group: &'a str,
    /// The topic filter that the group subscribes to.
    pub filter: &'a str,
}

impl<'a> SharedFilter<'a> {
    /// A shared subscription of `group` to `filter`, checked: the group
    /// name must be non-empty without `/`, `+` or `#`, and the filter valid.
    /// Its `Display` is the `$share/{group}/{filter}` string to subscribe
    /// with; messages arrive on their ordinary topics.
    ///
    /// ```
    /// use plover::topic::SharedFilter;
    ///
    /// let shared = SharedFilter::new("workers", "jobs/+/new").unwrap();
    /// assert_eq!(shared.to_string(), "$share/workers/jobs/+/new");
    /// assert!(shared.matches("jobs/42/new"));
    /// assert!(SharedFilter::new("bad/group", "jobs/#").is_err());
    /// // Subscribe with it: client.subscribe(&shared.to_string(), QoS::AtLeastOnce)
    /// ```
    pub fn new(group: &'a str, filter: &'a str) -> Result<Self, TopicError> {
        // [MQTT-4.8.2-2] The ShareName MUST NOT contain "/", "+" or "#".
        if group.is_empty() || group.contains(['/', '+', '#']) || group.contains('\0') {
            return Err(TopicError::InvalidShareName);
        }
        if filter.is_empty() {
            return Err(TopicError::MissingSharedFilter);
        }
        validate_topic_filter(filter)?;
        if filter.starts_with(SHARE_PREFIX) {
            // A shared subscription cannot itself be shared.
            return Err(TopicError::InvalidShareName);
        }
        let shared = SharedFilter { group, filter };
        if shared.to_string().len() > MAX_LEN {
            return Err(TopicError::TooLong);
        }
        Ok(shared)
    }

    /// Whether a message published to `topic` belongs to this subscription.
    pub fn matches(&self, topic: &str) -> bool {
        matches(self.filter, topic)
    }

    /// Parses and validates a shared subscription.
    ///
    /// Returns `Ok(None)` when `filter` is not a shared subscription, i.e. it
    /// does not start with `$share/` (so `$share` alone and `$sharex/a` are
    /// ordinary filters). Returns `Err` when it starts with `$share/` but is
    /// malformed: the `ShareName` is empty or contains `+` or `#`, there is no
    /// filter after it, or that filter is itself invalid.
    ///
    /// # Errors
    ///
    /// Only for strings starting with `$share/`: the same errors, in the same
    /// order, as [`validate_topic_filter`] reports for them.
    ///
    /// ```
    /// use plover::topic::{SharedFilter, TopicError};
    ///
    /// assert_eq!(
    ///     SharedFilter::parse("$share/workers/jobs/#"),
    ///     Ok(Some(SharedFilter { group: "workers", filter: "jobs/#" }))
    /// );
    /// assert_eq!(SharedFilter::parse("jobs/#"), Ok(None));
    /// assert_eq!(SharedFilter::parse("$share//jobs"), Err(TopicError::InvalidShareName));
    /// assert_eq!(SharedFilter::parse("$share/workers"), Err(TopicError::MissingSharedFilter));
    /// ```
    pub fn parse(filter: &'a str) -> Result<Option<Self>, TopicError> {
        if !filter.starts_with(SHARE_PREFIX) {
            return Ok(None);
        }
        // A returned `SharedFilter` is promised valid, so the whole-string
        // rules apply here too, not only in `validate_topic_filter`.
        validate_common(filter)?;
        Self::parse_checked(filter)
    }

    /// [`SharedFilter::parse`] for a string that has already passed
    /// [`validate_common`].
    fn parse_checked(filter: &'a str) -> Result<Option<Self>, TopicError> {
        let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
            return Ok(None);
        };
        // The ShareName ends at the next `/`, so it cannot contain one.
        // Byte positions of ASCII `/` are character boundaries.
        // [MQTT-4.8.2-1] the ShareName is at least one character long.
        // [MQTT-4.8.2-2] the ShareName must not contain `/`, `+` or `#`.
        let (group, inner) = match share_name_end(rest.as_bytes())? {
            0 => return Err(TopicError::InvalidShareName),
            at if at < rest.len() => (&rest[..at], Some(&rest[at + 1..])),
            _ => (rest, None),
        };
        // [MQTT-4.8.2-2] the ShareName must be followed by `/` and then a
        // topic filter; an empty filter would fail [MQTT-4.7.3-1].
        let inner = match inner {
            Some(inner) if !inner.is_empty() => inner,
            _ => return Err(TopicError::MissingSharedFilter),
        };
        // The inner filter is an ordinary filter: `$share/a/$share/b/c` shares
        // the literal topic filter `$share/b/c`, it does not nest.
        validate_filter_levels(inner.as_bytes())?;
        Ok(Some(SharedFilter {
            group,
            filter: inner,
        }))
    }
}

impl std::fmt::Display for SharedFilter<'_> {
    /// The filter to subscribe with: `$share/{group}/{filter}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SHARE_PREFIX}{}/{}", self.group, self.filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_validation() {
        let cases: &[(&str, Result<(), TopicError>)] = &[
            ("sport/tennis/player1", Ok(())),
            ("sport", Ok(())),
            ("/", Ok(())),
            ("//", Ok(())),
            ("/finance", Ok(())),
            ("sport/", Ok(())),
            ("$SYS/broker/uptime", Ok(())),
            ("$share/group/topic", Ok(())),
            ("spaces are fine", Ok(())),
            ("Ünïcødé/トピック", Ok(())),
            ("", Err(TopicError::Empty)),
            ("a\0b", Err(TopicError::ContainsNul)),
            ("\0", Err(TopicError::ContainsNul)),
            ("sport/+", Err(TopicError::WildcardInName)),
            ("sport/#", Err(TopicError::WildcardInName)),
            ("+", Err(TopicError::WildcardInName)),
            ("#", Err(TopicError::WildcardInName)),
            ("sport+", Err(TopicError::WildcardInName)),
            ("a#b", Err(TopicError::WildcardInName)),
        ];
        for (name, expected) in cases {
            assert_eq!(validate_topic_name(name), *expected, "name {name:?}");
        }
    }

    #[test]
    fn topic_filter_validation() {
        let cases: &[(&str, Result<(), TopicError>)] = &[
            // Valid, from the spec's examples in §4.7.1.
            ("sport/tennis/player1/#", Ok(())),
            ("sport/#", Ok(())),
            ("#", Ok(())),
            ("+", Ok(())),
            ("+/tennis/#", Ok(())),
            ("sport/+/player1", Ok(())),
            ("/+", Ok(())),
            ("+/+", Ok(())),
            ("+/", Ok(())),
            ("/#", Ok(())),
            ("//", Ok(())),
            ("a//b", Ok(())),
            ("$SYS/#", Ok(())),
            ("$share", Ok(())),
            ("$sharex/a/b", Ok(())),
            ("$SHARE/a", Ok(())),
            ("plain/topic", Ok(())),
            // `#` misplaced [MQTT-4.7.1-2].
            (
                "sport/tennis#",
                Err(TopicError::MisplacedMultiLevelWildcard),
            ),
            (
                "sport/tennis/#/ranking",
                Err(TopicError::MisplacedMultiLevelWildcard),
            ),
            ("#/", Err(TopicError::MisplacedMultiLevelWildcard)),
            ("##", Err(TopicError::MisplacedMultiLevelWildcard)),
            ("#/#", Err(TopicError::MisplacedMultiLevelWildcard)),
            ("a/#b", Err(TopicError::MisplacedMultiLevelWildcard)),
            ("+#", Err(TopicError::MisplacedMultiLevelWildcard)),
            // `+` misplaced [MQTT-4.7.1-3].
            ("sport+", Err(TopicError::MisplacedSingleLevelWildcard)),
            (
                "sport/+tennis",
                Err(TopicError::MisplacedSingleLevelWildcard),
            ),
            ("++", Err(TopicError::MisplacedSingleLevelWildcard)),
            ("a/b+/c", Err(TopicError::MisplacedSingleLevelWildcard)),
            // Common rules.
            ("", Err(TopicError::Empty)),
            ("a/\0/b", Err(TopicError::ContainsNul)),
            // Shared subscriptions.
            ("$share/group/sport/#", Ok(())),
            ("$share/group/+", Ok(())),
            ("$share/group/#", Ok(())),
            ("$share/group//", Ok(())),
            ("$share/group/$share/other/x", Ok(())),
            ("$share/group", Err(TopicError::MissingSharedFilter)),
            ("$share/group/", Err(TopicError::MissingSharedFilter)),
            ("$share/", Err(TopicError::InvalidShareName)),
            ("$share//x", Err(TopicError::InvalidShareName)),
            ("$share/gr+up/x", Err(TopicError::InvalidShareName)),
            ("$share/+/x", Err(TopicError::InvalidShareName)),
            ("$share/#/x", Err(TopicError::InvalidShareName)),
            ("$share/#", Err(TopicError::InvalidShareName)),
            (
                "$share/group/sport+",
                Err(TopicError::MisplacedSingleLevelWildcard),
            ),
            (
                "$share/group/#/x",
                Err(TopicError::MisplacedMultiLevelWildcard),
            ),
            ("$share/gr\0up/x", Err(TopicError::ContainsNul)),
        ];
        for (filter, expected) in cases {
            assert_eq!(
                validate_topic_filter(filter),
                *expected,
                "filter {filter:?}"
            );
        }
    }

    /// The level rules as the spec states them, one level at a time (the
    /// implementation before the one-pass scan), to check the scan against.
    fn reference_filter_levels(filter: &str) -> Result<(), TopicError> {
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            let is_last = levels.peek().is_none();
            if level.contains('#') {
                if level != "#" || !is_last {
                    return Err(TopicError::MisplacedMultiLevelWildcard);
                }
            } else if level.contains('+') && level != "+" {
                return Err(TopicError::MisplacedSingleLevelWildcard);
            }
        }
        Ok(())
    }

    fn reference_filter(filter: &str) -> Result<(), TopicError> {
        validate_common(filter)?;
        let Some(rest) = filter.strip_prefix(SHARE_PREFIX) else {
            return reference_filter_levels(filter);
        };
        let (group, inner) = match rest.split_once('/') {
            Some((group, inner)) => (group, Some(inner)),
            None => (rest, None),
        };
        if group.is_empty() || group.contains(['+', '#']) {
            return Err(TopicError::InvalidShareName);
        }
        match inner {
            Some(inner) if !inner.is_empty() => reference_filter_levels(inner),
            _ => Err(TopicError::MissingSharedFilter),
        }
    }

    #[test]
    fn one_pass_filter_scan_agrees_with_the_level_by_level_rules() {
        // Every string of up to 6 characters over the bytes that matter
        // (and `'`, a bit away from `#` as `+` is), bare and
        // after a `$share/` prefix (valid or not); then longer random ones,
        // so that every byte position of the eight-byte words is tried.
        let alphabet = ['a', '/', '+', '#', '\0', 'é', '\''];
        let mut strings = vec![String::new()];
        let mut all = Vec::new();
        for _ in 0..6 {
            let mut next = Vec::new();
            for s in &strings {
                for c in alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            all.extend(next.iter().cloned());
            strings = next;
        }
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let s: String = (0..len)
                .map(|i| {
                    let pick = (seed >> (i % 60)) as usize;
                    // Mostly letters, so that levels are long enough to
                    // span words; wildcards and separators now and then.
                    if pick.is_multiple_of(4) {
                        alphabet[(pick / 4) % alphabet.len()]
                    } else {
                        'x'
                    }
                })
                .collect();
            all.push(s);
        }
        for s in &all {
            for prefix in ["", "$share/", "$share/g/", "$share/g", "$share"] {
                let f = format!("{prefix}{s}");
                let want = reference_filter(&f);
                assert_eq!(validate_topic_filter(&f), want, "filter {f:?}");
                // The decoder's quick check: exactly the valid filters
                // that neither start with `$` nor contain U+0000.
                let plain = want.is_ok() && !f.starts_with('$') && !f.contains('\0');
                assert_eq!(is_plain_valid_filter(f.as_bytes()), plain, "filter {f:?}");
                if !f.contains('\0') {
                    let shared = f.starts_with(SHARE_PREFIX);
                    assert_eq!(
                        validate_filter_of_mqtt_string(&f),
                        want.map(|()| shared),
                        "filter {f:?}"
                    );
                }
                let name_want = validate_common(&f).and_then(|()| {
                    if f.contains(['+', '#']) {
                        Err(TopicError::WildcardInName)
                    } else {
                        Ok(())
                    }
                });
                assert_eq!(validate_topic_name(&f), name_want, "name {f:?}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(4096))]

        /// The word-at-a-time checks (the wildcard scan, the ShareName
        /// scan) against the rules level by level, on arbitrary strings
        /// built from the bytes that matter, bare and behind every kind
        /// of `$share` prefix, and with a filter written by the codec.
        #[test]
        fn fast_filter_checks_agree_with_the_level_by_level_rules(
            prefix in proptest::sample::select(vec![
                "", "$", "$share", "$share/", "$share//", "$share/g", "$share/g/",
                "$share/group-name-longer-than-a-word/", "$share/g+/", "$share/#",
                "$SYS/", "$sharex/g/",
            ]),
            body in "[a/+#$é\\x00]{0,40}",
        ) {
            let f = format!("{prefix}{body}");
            let want = reference_filter(&f);
            proptest::prop_assert_eq!(validate_topic_filter(&f), want, "filter {:?}", f);
            let plain = want.is_ok() && !f.starts_with('$') && !f.contains('\0');
            proptest::prop_assert_eq!(is_plain_valid_filter(f.as_bytes()), plain, "filter {:?}", f);
            if !f.contains('\0') {
                let shared = f.starts_with(SHARE_PREFIX);
                proptest::prop_assert_eq!(
                    validate_filter_of_mqtt_string(&f),
                    want.map(|()| shared),
                    "filter {:?}", f
                );
                // The codec's filter type makes the same decision, and
                // what it accepts is written and reads back.
                let made = crate::codec::TopicFilter::try_from(f.as_str());
                proptest::prop_assert_eq!(made.as_ref().map(|_| ()), want.as_ref().map(|_| ()));
                if let Ok(filter) = made {
                    proptest::prop_assert_eq!(filter.is_shared(), shared);
                    let mut buf = bytes::BytesMut::new();
                    let packet = crate::codec::Packet::Subscribe(crate::codec::Subscribe::new(
                        std::num::NonZeroU16::MIN,
                        filter,
                        crate::codec::SubscriptionOptions::default(),
                    ));
                    packet
                        .encode(crate::codec::ProtocolVersion::V311, &mut buf)
                        .expect("a TopicFilter is always written");
                    let read = crate::codec::decode(
                        &mut buf,
                        crate::codec::ProtocolVersion::V311,
                        1 << 20,
                    );
                    proptest::prop_assert_eq!(read, Ok(Some(packet)));
                }
            }
        }
    }

    #[test]
    fn length_limit_is_in_utf8_bytes() {
        let longest = "a".repeat(MAX_LEN);
        assert_eq!(validate_topic_name(&longest), Ok(()));
        assert_eq!(validate_topic_filter(&longest), Ok(()));

        let too_long = "a".repeat(MAX_LEN + 1);
        assert_eq!(validate_topic_name(&too_long), Err(TopicError::TooLong));
        assert_eq!(validate_topic_filter(&too_long), Err(TopicError::TooLong));

        // 32,768 two-byte characters: few characters, but 65,536 bytes.
        let wide = "é".repeat(32_768);
        assert_eq!(wide.chars().count(), 32_768);
        assert_eq!(validate_topic_name(&wide), Err(TopicError::TooLong));
        assert_eq!(validate_topic_filter(&wide), Err(TopicError::TooLong));

        // The `$share/{ShareName}/` prefix counts towards the limit.
        let shared = format!("$share/g/{}", "a".repeat(MAX_LEN - "$share/g/".len()));
        assert_eq!(shared.len(), MAX_LEN);
        assert_eq!(validate_topic_filter(&shared), Ok(()));
        let shared_too_long = format!("{shared}a");
        assert_eq!(
            validate_topic_filter(&shared_too_long),
            Err(TopicError::TooLong)
        );
        assert_eq!(
            SharedFilter::parse(&shared_too_long),
            Err(TopicError::TooLong)
        );
    }

    /// (filter, name, expected)
    const MATCH_CASES: &[(&str, &str, bool)] = &[
        // §4.7.1.2: `sport/tennis/player1/#`.
        ("sport/tennis/player1/#", "sport/tennis/player1", true),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking",
            true,
        ),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
            true,
        ),
        ("sport/tennis/player1/#", "sport/tennis/player2", false),
        ("sport/tennis/player1/#", "sport/tennis", false),
        ("sport/#", "sport", true),
        ("sport/#", "sport/", true),
        ("sport/#", "sports", false),
        ("#", "sport/tennis/player1", true),
        ("#", "/", true),
        ("#", "a", true),
        // §4.7.1.3: `+`.
        ("sport/tennis/+", "sport/tennis/player1", true),
        ("sport/tennis/+", "sport/tennis/player2", true),
        ("sport/tennis/+", "sport/tennis/player1/ranking", false),
        ("sport/+", "sport", false),
        ("sport/+", "sport/", true),
        ("+/+", "/finance", true),
        ("/+", "/finance", true),
        ("+", "/finance", false),
        ("+", "finance", true),
        ("+/tennis/#", "sport/tennis/player1/ranking", true),
        ("+/tennis/#", "sport/tennis", true),
        ("+/tennis/#", "sport/football", false),
        ("sport/+/player1", "sport/tennis/player1", true),
        ("sport/+/player1", "sport/tennis/player2", false),
        ("sport/+/#", "sport", false),
        ("sport/+/#", "sport/tennis", true),
        // Empty levels are levels; no normalisation [MQTT-4.7.3-4].
        ("a//b", "a//b", true),
        ("a//b", "a/b", false),
        ("a/+/b", "a//b", true),
        ("a/b", "a/b/", false),
        ("a/b/", "a/b", false),
        ("/a", "a", false),
        ("+/a", "/a", true),
        ("+", "", true),
        ("//", "//", true),
        ("+/+/+", "//", true),
        // Exact, case-sensitive literal matching.
        ("sport/tennis", "sport/tennis", true),
        ("sport/tennis", "Sport/Tennis", false),
        ("sport/tennis", "sport/tennis/player1", false),
        ("sport/tennis/player1", "sport/tennis", false),
        // `$` topics [MQTT-4.7.2-1].
        ("#", "$SYS/monitor/Clients", false),
        ("#", "$SYS", false),
        ("+/monitor/Clients", "$SYS/monitor/Clients", false),
        ("+", "$SYS", false),
        ("$SYS/#", "$SYS/monitor/Clients", true),
        ("$SYS/#", "$SYS", true),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
        ("$SYS", "$SYS", true),
        ("/#", "/$SYS", true),
        ("+/$x", "a/$x", true),
        // Shared subscriptions match on the inner filter.
        ("$share/group/sport/#", "sport/tennis", true),
        ("$share/group/sport/+", "sport/tennis", true),
        ("$share/group/sport/+", "sport", false),
        ("$share/group/#", "anything/at/all", true),
        ("$share/group/#", "$SYS/x", false),
        ("$share/group/+/monitor", "$SYS/monitor", false),
        ("$share/group/$SYS/#", "$SYS/x", true),
        ("$share/group/a", "group/a", false),
        ("$share/group", "group", false),
        ("$share/group", "$share/group", false),
        // Not a shared subscription, so literal.
        ("$share", "$share", true),
        ("$sharex/g/a", "$sharex/g/a", true),
        ("$sharex/g/a", "a", false),
    ];

    #[test]
    fn matching_table() {
        assert!(MATCH_CASES.len() >= 30);
        for (filter, name, expected) in MATCH_CASES {
            assert_eq!(
                matches(filter, name),
                *expected,
                "matches({filter:?}, {name:?})"
            );
        }
    }

    #[test]
    fn matching_table_inputs_are_valid() {
        // `matches` is only specified for valid input, so the table must not
        // be testing unspecified behaviour by accident.
        for (filter, name, _) in MATCH_CASES {
            if filter
                .strip_prefix(SHARE_PREFIX)
                .is_some_and(|rest| !rest.contains('/'))
            {
                continue; // deliberately malformed shared filter
            }
            if name.is_empty() {
                continue; // deliberately empty name
            }
            assert_eq!(validate_topic_filter(filter), Ok(()), "filter {filter:?}");
            assert_eq!(validate_topic_name(name), Ok(()), "name {name:?}");
        }
    }

    #[test]
    fn shared_prefix_does_not_change_matching() {
        for (filter, name, _) in MATCH_CASES {
            if filter.starts_with('$') {
                continue;
            }
            let shared = format!("$share/g/{filter}");
            assert_eq!(
                matches(&shared, name),
                matches(filter, name),
                "{shared:?} vs {filter:?} on {name:?}"
            );
        }
    }

    #[test]
    fn matching_never_panics_on_invalid_input() {
        let odd = [
            "",
            "/",
            "#",
            "+",
            "##",
            "#/#",
            "#/a",
            "a/#/b",
            "++",
            "+#",
            "$",
            "$share",
            "$share/",
            "$share//",
            "$share/g",
            "$share/g/",
            "\0",
            "é/+/#",
            "////",
        ];
        // Pin a few results so the loop is not only a panic check.
        assert!(!matches("$share/", "x"));
        assert!(!matches("$share/g", "g"));
        assert!(matches("$share//x", "x"));
        for filter in odd {
            for name in odd {
                let _ = matches(filter, name);
            }
        }
    }

    #[test]
    fn is_wildcard_cases() {
        let cases = [
            ("sport/tennis", false),
            ("sport/+", true),
            ("sport/#", true),
            ("#", true),
            ("+", true),
            ("$share/g/a/b", false),
            ("$share/g/a/+", true),
            ("", false),
        ];
        for (filter, expected) in cases {
            assert_eq!(is_wildcard(filter), expected, "filter {filter:?}");
        }
    }

    #[test]
    fn shared_filter_parse() {
        type Expected = Result<Option<SharedFilter<'static>>, TopicError>;
        let shared = |group, filter| Ok(Some(SharedFilter { group, filter }));
        let cases: &[(&str, Expected)] = &[
            (
                "$share/group/sport/tennis/+",
                shared("group", "sport/tennis/+"),
            ),
            ("$share/g/#", shared("g", "#")),
            ("$share/g/+", shared("g", "+")),
            ("$share/g//", shared("g", "/")),
            ("$share/g/$share/h/x", shared("g", "$share/h/x")),
            (
                "$share/consumer1/sport/tennis/+",
                shared("consumer1", "sport/tennis/+"),
            ),
            ("$share/Ünï/a", shared("Ünï", "a")),
            // Not shared subscriptions.
            ("sport/tennis", Ok(None)),
            ("$share", Ok(None)),
            ("$sharex/g/a", Ok(None)),
            ("$SHARE/g/a", Ok(None)),
            ("/$share/g/a", Ok(None)),
            ("", Ok(None)),
            // Malformed shared subscriptions.
            ("$share/", Err(TopicError::InvalidShareName)),
            ("$share//", Err(TopicError::InvalidShareName)),
            ("$share//x", Err(TopicError::InvalidShareName)),
            ("$share/g+/x", Err(TopicError::InvalidShareName)),
            ("$share/g#/x", Err(TopicError::InvalidShareName)),
            ("$share/group", Err(TopicError::MissingSharedFilter)),
            ("$share/group/", Err(TopicError::MissingSharedFilter)),
            ("$share/g/a+", Err(TopicError::MisplacedSingleLevelWildcard)),
            ("$share/g/#/a", Err(TopicError::MisplacedMultiLevelWildcard)),
            ("$share/g/a\0", Err(TopicError::ContainsNul)),
        ];
        for (filter, expected) in cases {
            assert_eq!(SharedFilter::parse(filter), *expected, "filter {filter:?}");
        }
    }

    #[test]
    fn shared_filter_borrows_from_input() {
        let owned = String::from("$share/group/a/b");
        let parsed = SharedFilter::parse(&owned);
        let Ok(Some(parsed)) = parsed else {
            panic!("expected a shared filter, got {parsed:?}");
        };
        // The fields are sub-slices of the input, not copies.
        assert_eq!(parsed.group.as_ptr(), owned["$share/".len()..].as_ptr());
        assert_eq!(
            parsed.filter.as_ptr(),
            owned["$share/group/".len()..].as_ptr()
        );
    }

    #[test]
    fn parse_agrees_with_validate_topic_filter() {
        let filters = [
            "$share/g/a",
            "$share/g",
            "$share//a",
            "$share/g/a+",
            "$share/g+/a",
            "a/b",
            "a+",
        ];
        for filter in filters {
            let via_parse = SharedFilter::parse(filter).map(|_| ());
            if filter.starts_with(SHARE_PREFIX) {
                assert_eq!(
                    validate_topic_filter(filter),
                    via_parse,
                    "filter {filter:?}"
                );
            } else {
                assert_eq!(via_parse, Ok(()), "filter {filter:?}");
            }
        }
    }

    #[test]
    fn error_messages_are_distinct() {
        let all = [
            TopicError::Empty,
            TopicError::TooLong,
            TopicError::ContainsNul,
            TopicError::WildcardInName,
            TopicError::MisplacedMultiLevelWildcard,
            TopicError::MisplacedSingleLevelWildcard,
            TopicError::InvalidShareName,
            TopicError::MissingSharedFilter,
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(!a.to_string().is_empty());
            for b in all.iter().skip(i + 1) {
                assert_ne!(a.to_string(), b.to_string(), "{a:?} vs {b:?}");
            }
        }
    }
}
