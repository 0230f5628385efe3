//! `Signature-Input` and `Signature` (RFC 9421 §4.1, §4.2): two Dictionaries keyed by the same
//! labels, parsed with `sfv` (RFC 8941). A label that appears twice, in one field or across
//! its lines, is refused: RFC 8941 would keep the last, and the two fields could then disagree
//! on which signature a label means.

use http::HeaderMap;
use sfv::visitor::{DictionaryVisitor, EntryVisitor};
use sfv::{BareItem, Dictionary, InnerList, KeyRef, ListEntry, Parser};

/// At most this many signatures are read from one request; more is malformed. A request needs
/// one; the bound keeps the parse small.
pub(crate) const MAX_SIGNATURES: usize = 8;
/// The combined `Signature-Input` or `Signature` field may not exceed this (bytes).
pub(crate) const MAX_FIELD_LEN: usize = 8 * 1024;

/// One labelled signature: its covered components and parameters, and its bytes.
#[derive(Debug, Clone)]
pub(crate) struct Labelled {
    pub(crate) label: String,
    pub(crate) params: InnerList,
    pub(crate) signature: Vec<u8>,
}

/// Why the fields cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldError {
    /// Neither field is present.
    Absent,
    /// Not valid structured fields, labels that do not pair up, or too many or too large.
    Malformed,
}

/// The signatures of a message, in `Signature-Input` order.
pub(crate) fn signatures(headers: &HeaderMap) -> Result<Vec<Labelled>, FieldError> {
    let input = combined(headers, "signature-input")?;
    let signature = combined(headers, "signature")?;
    let (input, signature) = match (input, signature) {
        (None, None) => return Err(FieldError::Absent),
        (Some(input), Some(signature)) => (input, signature),
        _ => return Err(FieldError::Malformed),
    };
    let inputs = unique_dictionary(&input)?;
    let mut signatures = unique_dictionary(&signature)?;
    if inputs.len() != signatures.len() || inputs.len() > MAX_SIGNATURES {
        return Err(FieldError::Malformed);
    }
    inputs
        .into_iter()
        .map(|(label, member)| {
            let ListEntry::InnerList(params) = member else {
                return Err(FieldError::Malformed);
            };
            let bytes = match signatures.swap_remove(label.as_str()) {
                Some(ListEntry::Item(item)) => match item.bare_item {
                    BareItem::ByteSequence(bytes) => bytes,
                    _ => return Err(FieldError::Malformed),
                },
                _ => return Err(FieldError::Malformed),
            };
            Ok(Labelled {
                label: label.as_str().to_owned(),
                params,
                signature: bytes,
            })
        })
        .collect()
}

/// The field's lines joined with `", "` (RFC 9110 §5.3), bounded; `None` when absent.
pub(crate) fn combined(headers: &HeaderMap, name: &str) -> Result<Option<String>, FieldError> {
    let mut out: Option<String> = None;
    for line in headers.get_all(name) {
        let line = line.to_str().map_err(|_| FieldError::Malformed)?;
        let out = out.get_or_insert_with(String::new);
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(line);
        if out.len() > MAX_FIELD_LEN {
            return Err(FieldError::Malformed);
        }
    }
    Ok(out)
}

/// A Dictionary in which no key appears twice, read in one pass.
pub(crate) fn unique_dictionary(value: &str) -> Result<Dictionary, FieldError> {
    Parser::new(value)
        .parse_dictionary_with_visitor(UniqueKeys {
            seen: Vec::new(),
            dictionary: Dictionary::new(),
        })
        .map_err(|_| FieldError::Malformed)
}

/// Builds the Dictionary as `sfv` does, failing on the second sighting of a key.
struct UniqueKeys<'de> {
    seen: Vec<&'de KeyRef>,
    dictionary: Dictionary,
}

#[derive(Debug)]
struct Duplicate;

impl std::fmt::Display for Duplicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("duplicate dictionary key")
    }
}

impl std::error::Error for Duplicate {}

impl<'de> DictionaryVisitor<'de> for UniqueKeys<'de> {
    type Out = Dictionary;
    type Error = Duplicate;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        if self.seen.contains(&key) || self.seen.len() >= 64 {
            return Err(Duplicate);
        }
        self.seen.push(key);
        match DictionaryVisitor::entry(&mut self.dictionary, key) {
            Ok(entry) => Ok(entry),
            Err(never) => match never {},
        }
    }

    fn finish(self) -> Result<Dictionary, Self::Error> {
        Ok(self.dictionary)
    }
}
