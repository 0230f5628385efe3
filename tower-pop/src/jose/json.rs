//! Strict JSON for JOSE headers and payloads (RFC 8725 §3.7, RFC 7515 §4): valid UTF-8, bounded
//! depth and width, duplicate member names refused at any depth, nothing after the value.
//!
//! Two readers share these rules: [`parse_json_object`] builds a map (JWK Sets, token claims),
//! [`parse_json_members`] reads only the members a caller names (proofs, JOSE headers). The
//! latter has a fast path for the common shape of a proof ([`simple_members`]), behind that one
//! door; the `json` fuzz target holds both readers equal.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Deepest nesting accepted in a JOSE header or payload.
pub(crate) const MAX_JSON_DEPTH: usize = 8;
/// Most members accepted in one JSON object or array.
pub(crate) const MAX_JSON_WIDTH: usize = 128;

/// One member value read by [`parse_json_members`]: a string (borrowed from the input when it
/// has no escapes), or any other value, checked as [`parse_json_object`] checks it.
pub(crate) enum Member<'de> {
    Str(Cow<'de, str>),
    /// An object, its members in order (names unique), read the same way.
    Object(Vec<(Cow<'de, str>, Self)>),
    Other(Value),
}

impl Member<'_> {
    /// The string, when the member is one.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            Self::Object(_) | Self::Other(_) => None,
        }
    }
}

/// [`parse_json_object`] for a reader that knows which members it wants: the values of `names`
/// (in that order; `None` where absent) without building a map, every other member checked by the
/// same rules and dropped. Same refusals: duplicate names at any depth, depth and width bounds,
/// invalid UTF-8, anything after the object. The verifier reads each proof this way (RFC 9449
/// §4.3 steps 2-4), once per request.
///
/// The door of this room's fast path, [`simple_members`]: it saves about 0.4 us per proof over
/// [`full_members`] alone, 1.0 % of the EdDSA path and 1.9 % of the PS256 one (0.7 % of ES256's;
/// `cargo bench -p tower-pop --bench fast_paths`, `BENCHMARKS.md`).
pub(crate) fn parse_json_members<'de, const N: usize>(
    bytes: &'de [u8],
    names: &[&str; N],
) -> Option<[Option<Member<'de>>; N]> {
    simple_members(bytes, names).or_else(|| full_members(bytes, names))
}

/// [`parse_json_members`] through serde only: the full reader, which decides whatever the fast
/// path leaves to it.
pub(crate) fn full_members<'de, const N: usize>(
    bytes: &'de [u8],
    names: &[&str; N],
) -> Option<[Option<Member<'de>>; N]> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let members = de::Deserializer::deserialize_map(&mut de, MembersVisitor { names }).ok()?;
    de.end().ok()?;
    Some(members)
}

/// The shape nearly every proof has, read without serde: printable ASCII throughout (spaces
/// between tokens), an object whose values are strings without escapes, unsigned integers, or
/// objects of those (two levels at most). `None` means "not this shape, or refused": the
/// caller then asks the full reader, which decides. So this reader never refuses on its own,
/// and what it accepts the full reader reads the same way (the `json` fuzz target checks both).
fn simple_members<'de, const N: usize>(
    bytes: &'de [u8],
    names: &[&str; N],
) -> Option<[Option<Member<'de>>; N]> {
    // One vectorised pass over the whole text, so strings need no check of their own.
    let printable = bytes
        .iter()
        .fold(true, |ok, b| ok & (b.wrapping_sub(0x20) < 0x5f));
    if !printable {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut scan = Scan { text, at: 0 };
    let mut out: [Option<Member<'de>>; N] = std::array::from_fn(|_| None);
    let mut others: Vec<&'de str> = Vec::new();
    scan.members(1, |key, value| {
        match names.iter().position(|n| *n == key) {
            Some(i) if out[i].is_none() => out[i] = Some(value),
            None if !others.contains(&key) => others.push(key),
            _ => return None,
        }
        Some(())
    })?;
    scan.skip_spaces();
    (scan.at == bytes.len()).then_some(out)
}

/// Deepest object [`simple_members`] reads itself; deeper ones go to the full reader.
const SIMPLE_DEPTH: usize = 2;

/// A cursor over JSON text for [`simple_members`].
struct Scan<'de> {
    /// The text, all printable ASCII: a space is the only whitespace it can hold.
    text: &'de str,
    at: usize,
}

impl<'de> Scan<'de> {
    fn bytes(&self) -> &'de [u8] {
        self.text.as_bytes()
    }

    fn skip_spaces(&mut self) {
        while self.bytes().get(self.at) == Some(&b' ') {
            self.at += 1;
        }
    }

    /// The next byte after spaces, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_spaces();
        self.bytes().get(self.at).copied()
    }

    /// Consume `byte` after spaces.
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string of printable ASCII without escapes.
    fn string(&mut self) -> Option<&'de str> {
        self.eat(b'"')?;
        let start = self.at;
        let len = memchr::memchr2(b'"', b'\\', self.bytes().get(start..)?)?;
        // An escape is the full reader's.
        if self.bytes()[start + len] != b'"' {
            return None;
        }
        self.at += len + 1;
        self.text.get(start..start + len)
    }

    /// An unsigned integer of at most 19 digits (so it fits a `u64`), without a fraction or
    /// an exponent.
    fn integer(&mut self) -> Option<u64> {
        let rest = self.bytes().get(self.at..)?;
        let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 || len > 19 || (len > 1 && rest[0] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = rest.get(len) {
            return None;
        }
        let value = std::str::from_utf8(rest.get(..len)?).ok()?.parse().ok()?;
        self.at += len;
        Some(value)
    }

    /// A member value at `depth` (the top-level object's values are at depth 1).
    fn value(&mut self, depth: usize) -> Option<Member<'de>> {
        match self.peek()? {
            b'"' => self.string().map(|s| Member::Str(Cow::Borrowed(s))),
            b'0'..=b'9' => self.integer().map(|n| Member::Other(Value::from(n))),
            b'{' if depth < SIMPLE_DEPTH => {
                let mut members: Vec<(Cow<'de, str>, Member<'de>)> = Vec::with_capacity(4);
                self.members(depth + 1, |key, value| {
                    if members.iter().any(|(k, _)| k == key) {
                        return None;
                    }
                    members.push((Cow::Borrowed(key), value));
                    Some(())
                })?;
                Some(Member::Object(members))
            }
            _ => None,
        }
    }

    /// An object, each member handed to `each` (values read at `depth`).
    fn members(
        &mut self,
        depth: usize,
        mut each: impl FnMut(&'de str, Member<'de>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        for _ in 0..MAX_JSON_WIDTH {
            let key = self.string()?;
            self.eat(b':')?;
            each(key, self.value(depth)?)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
        None
    }
}

struct MembersVisitor<'n, const N: usize> {
    names: &'n [&'n str; N],
}

impl<'de, const N: usize> Visitor<'de> for MembersVisitor<'_, N> {
    type Value = [Option<Member<'de>>; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut out: Self::Value = std::array::from_fn(|_| None);
        // For the duplicate check: a wanted name is seen when its slot is filled; the others
        // are listed, so a proof with only the members it needs costs no allocation here.
        let mut others: Vec<Cow<'de, str>> = Vec::new();
        let mut width = 0;
        while let Some(JsonStr(key)) = access.next_key::<JsonStr<'de>>()? {
            if width >= MAX_JSON_WIDTH {
                return Err(de::Error::custom("too wide"));
            }
            width += 1;
            match self.names.iter().position(|n| *n == key) {
                Some(i) if out[i].is_some() => {
                    return Err(de::Error::custom("duplicate member name"));
                }
                Some(i) => out[i] = Some(access.next_value_seed(MemberSeed { depth: 1 })?),
                None if others.contains(&key) => {
                    return Err(de::Error::custom("duplicate member name"));
                }
                None => {
                    access.next_value_seed(StrictSeed { depth: 1 })?;
                    others.push(key);
                }
            }
        }
        Ok(out)
    }
}

/// A JSON string that borrows from the input when it can.
struct JsonStr<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for JsonStr<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(JsonStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// A member value at `depth`: strings kept as [`Member::Str`], objects as [`Member::Object`]
/// (the rules of [`StrictSeed`]: depth and width bounds, unique names), the rest checked by
/// [`StrictSeed`].
struct MemberSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for MemberSeed {
    type Value = Member<'de>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MemberSeed {
    type Value = Member<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Member::Str(Cow::Owned(v)))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Member::Other(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Member::Other(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Member::Other(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        StrictSeed { depth: self.depth }
            .visit_f64(v)
            .map(Member::Other)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Member::Other(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        StrictSeed { depth: self.depth }
            .visit_seq(seq)
            .map(Member::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(de::Error::custom("too deep"));
        }
        let mut members: Vec<(Cow<'de, str>, Member<'de>)> = Vec::with_capacity(4);
        while let Some(JsonStr(key)) = access.next_key::<JsonStr<'de>>()? {
            if members.len() >= MAX_JSON_WIDTH {
                return Err(de::Error::custom("too wide"));
            }
            if members.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom("duplicate member name"));
            }
            let value = access.next_value_seed(Self {
                depth: self.depth + 1,
            })?;
            members.push((key, value));
        }
        Ok(Member::Object(members))
    }
}

/// Parse a JSON object strictly: valid UTF-8, no duplicate member names at any depth, depth and
/// width bounded, nothing after the value. Returns `None` on any violation.
pub(crate) fn parse_json_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictSeed { depth: 0 }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

struct StrictSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(de::Error::custom("too deep"));
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Self {
            depth: self.depth + 1,
        })? {
            if items.len() >= MAX_JSON_WIDTH {
                return Err(de::Error::custom("too wide"));
            }
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_JSON_DEPTH {
            return Err(de::Error::custom("too deep"));
        }
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.len() >= MAX_JSON_WIDTH {
                return Err(de::Error::custom("too wide"));
            }
            let value = access.next_value_seed(Self {
                depth: self.depth + 1,
            })?;
            if map.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate member name"));
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicate_members_jose_11() {
        assert!(parse_json_object(br#"{"alg":"ES256","alg":"none"}"#).is_none());
        assert!(parse_json_object(br#"{"a":{"b":1,"b":2}}"#).is_none());
        assert!(parse_json_object(br#"{"a":1}"#).is_some());
    }

    #[test]
    fn rejects_deep_wide_and_non_utf8_json() {
        let deep = format!("{}1{}", "{\"a\":".repeat(20), "}".repeat(20));
        assert!(parse_json_object(deep.as_bytes()).is_none());
        let wide: Vec<String> = (0..200).map(|i| format!("\"k{i}\":1")).collect();
        assert!(parse_json_object(format!("{{{}}}", wide.join(",")).as_bytes()).is_none());
        assert!(parse_json_object(b"{\"a\":\"\xff\"}").is_none());
        assert!(parse_json_object(b"{} {}").is_none());
        assert!(parse_json_object(b"[1]").is_none());
    }

    #[test]
    fn member_reader_refuses_what_the_full_parser_refuses_jose_11() {
        let names = ["alg", "jwk"];
        for bad in [
            &br#"{"alg":"ES256","alg":"none"}"#[..],
            br#"{"x":1,"x":2,"alg":"ES256"}"#,
            br#"{"jwk":{"kty":"EC","kty":"RSA"}}"#,
            br#"{"\u0061lg":"a","alg":"b"}"#,
            // Not UTF-8: refused by both readers (JOSE-06).
            b"{\"a\":\"\xff\"}",
            b"{} {}",
            b"[1]",
            b"\"alg\"",
        ] {
            assert!(parse_json_object(bad).is_none());
            assert!(parse_json_members(bad, &names).is_none(), "{bad:?}");
        }
        let deep = format!("{{\"x\":{}1{}}}", "[".repeat(8), "]".repeat(8));
        assert!(parse_json_object(deep.as_bytes()).is_none());
        assert!(parse_json_members(deep.as_bytes(), &names).is_none());
        let wide: Vec<String> = (0..200).map(|i| format!("\"k{i}\":1")).collect();
        let wide = format!("{{{}}}", wide.join(","));
        assert!(parse_json_members(wide.as_bytes(), &names).is_none());
    }

    #[test]
    fn fast_member_reader_reads_the_common_shape_and_leaves_the_rest_jose_11() {
        let names = ["alg", "jwk", "iat"];
        let header = br#" { "typ" : "dpop+jwt", "alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"a","y":"b"} ,  "iat": 1700000000 } "#;
        let [alg, jwk, iat] = simple_members(header, &names).expect("the common shape");
        assert_eq!(alg.as_ref().and_then(Member::as_str), Some("ES256"));
        assert!(
            matches!(jwk, Some(Member::Object(ref m)) if m.len() == 4 && m[3].1.as_str() == Some("b"))
        );
        assert!(matches!(iat, Some(Member::Other(ref v)) if v.as_u64() == Some(1_700_000_000)));
        // Outside the shape, or refused: left to the full reader, which decides.
        for other in [
            &br#"{"alg":"E\u0053256"}"#[..],
            b"{\"alg\":\"\xc3\xa9\"}",
            br#"{"iat":1.5}"#,
            br#"{"iat":1e3}"#,
            br#"{"iat":-1}"#,
            br#"{"iat":01}"#,
            br#"{"iat":18446744073709551616}"#,
            br#"{"x":true}"#,
            br#"{"x":null}"#,
            br#"{"x":[1]}"#,
            br#"{"x":{"y":{"z":1}}}"#,
            br#"{"alg":"a","alg":"b"}"#,
            br#"{"x":1,"x":2}"#,
            br#"{"jwk":{"k":1,"k":2}}"#,
            br#"{"alg":"a",}"#,
            br#"{"alg":"a"} x"#,
            b"{\"alg\":\"a\tb\"}",
            b"{\"alg\":\"a\"\n}",
            b"{\"alg\":\"a\x7f\"}",
            br#"{"alg" "a"}"#,
            br#"{"alg":"a""#,
        ] {
            assert!(simple_members(other, &names).is_none(), "{other:?}");
            // The full route gives the same answer as the full parser.
            assert_eq!(
                parse_json_members(other, &names).is_some(),
                parse_json_object(other).is_some(),
                "{other:?}"
            );
        }
        assert!(simple_members(b"{}", &names).is_some_and(|m| m.iter().all(Option::is_none)));
        let wide: Vec<String> = (0..129).map(|i| format!("\"k{i}\":1")).collect();
        let wide = format!("{{{}}}", wide.join(","));
        assert!(simple_members(wide.as_bytes(), &names).is_none());
        assert!(parse_json_members(wide.as_bytes(), &names).is_none());
    }

    #[test]
    fn member_reader_reads_strings_escaped_or_not() {
        let [alg, jwk, missing] = parse_json_members(
            br#"{"\u0061lg":"E\u0053256","jwk":{"kty":"OKP"},"other":[1,{"a":null}]}"#,
            &["alg", "jwk", "nope"],
        )
        .expect("valid");
        assert_eq!(alg.as_ref().and_then(Member::as_str), Some("ES256"));
        let Some(Member::Object(jwk)) = jwk else {
            panic!("an object")
        };
        assert_eq!(jwk.len(), 1);
        assert_eq!(jwk[0].1.as_str(), Some("OKP"));
        assert!(missing.is_none());
    }
}
