//! JSON text of the report's records into a byte buffer: the bytes `serde_json` writes with
//! the same [`Formatter`], at a fraction of the cost on short records.
//!
//! Every structural byte still comes from the formatter's methods, called in the order
//! `serde_json::Serializer` calls them, so compact lines and the `json` document's indented
//! records keep their exact form. What differs is the strings: `serde_json` looks up each
//! byte of every key and value in its escape table, while the report's strings (field names,
//! addresses, timestamps, fingerprints, cipher names) almost never hold a quote, a backslash
//! or a control character. A word-at-a-time check finds that out and the string is copied
//! whole; the rare string that needs escapes is escaped here as `serde_json` escapes it.
//! Values formatted with `Display` (timestamps) are written straight into the buffer, with
//! no intermediate string.

use std::fmt::Display;
use std::io::Write as _;

use serde::Serialize;
use serde::ser::{self, Error as _, Impossible};
use serde_json::Error;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

type Result<T> = std::result::Result<T, Error>;

/// Appends `v` as compact JSON (`serde_json::to_writer`'s bytes) to `out`.
pub fn compact<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> Result<()> {
    formatted(out, CompactFormatter, v)
}

/// Appends `v` to `out` as `serde_json::Serializer::with_formatter(out, fmt)` writes it.
pub fn formatted<T: Serialize + ?Sized, F: Formatter>(
    out: &mut Vec<u8>,
    fmt: F,
    v: &T,
) -> Result<()> {
    v.serialize(&mut Json { out, fmt })
}

/// Whether `s` holds a byte JSON strings escape: a control character, `"` or `\`.
pub fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // High bit of a byte set where the byte is below 0x20 (bytes of 0x80 and up, UTF-8, have
    // theirs cleared by `!x`), or is `"` or `\`; exact as to whether any byte is.
    fn flags(x: u64) -> u64 {
        let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x;
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let quote = zero_byte(x ^ (ONES * u64::from(b'"')));
        let backslash = zero_byte(x ^ (ONES * u64::from(b'\\')));
        (control | quote | backslash) & HIGH
    }
    fn word(c: &[u8]) -> u64 {
        let mut w = [b' '; 8];
        if let Some(to) = w.get_mut(..c.len()) {
            to.copy_from_slice(c);
        }
        u64::from_le_bytes(w)
    }
    let mut chunks = s.chunks_exact(8);
    // Strings are short: no early exit, one branch at the end.
    let mut any = 0;
    for c in &mut chunks {
        any |= flags(word(c));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // The last eight bytes again when there are that many (no copy of a short tail);
        // else the tail padded with spaces, which need no escape.
        let last = match s.len().checked_sub(8).and_then(|at| s.get(at..)) {
            Some(last) => last,
            None => rest,
        };
        any |= flags(word(last));
    }
    any != 0
}

/// The escape `serde_json` writes for byte `b`, if any.
fn escape_of(b: u8) -> Option<CharEscape> {
    Some(match b {
        b'"' => CharEscape::Quote,
        b'\\' => CharEscape::ReverseSolidus,
        0x08 => CharEscape::Backspace,
        b'\t' => CharEscape::Tab,
        b'\n' => CharEscape::LineFeed,
        0x0c => CharEscape::FormFeed,
        b'\r' => CharEscape::CarriageReturn,
        0x00..=0x1f => CharEscape::AsciiControl(b),
        _ => return None,
    })
}

struct Json<'a, F> {
    out: &'a mut Vec<u8>,
    fmt: F,
}

impl<F: Formatter> Json<'_, F> {
    #[inline]
    fn string(&mut self, s: &str) -> Result<()> {
        self.fmt.begin_string(self.out).map_err(Error::io)?;
        self.contents(s)?;
        self.fmt.end_string(self.out).map_err(Error::io)
    }

    /// A string's contents, split into fragments and escapes as `serde_json` splits them.
    #[inline]
    fn contents(&mut self, s: &str) -> Result<()> {
        if !needs_escape(s.as_bytes()) {
            if !s.is_empty() {
                self.fmt
                    .write_string_fragment(self.out, s)
                    .map_err(Error::io)?;
            }
            return Ok(());
        }
        self.escaped_contents(s)
    }

    #[cold]
    fn escaped_contents(&mut self, s: &str) -> Result<()> {
        let mut run = 0;
        for (i, &b) in s.as_bytes().iter().enumerate() {
            let Some(escape) = escape_of(b) else {
                continue;
            };
            // `i` and `run` sit on ASCII bytes, hence on character boundaries.
            if let Some(fragment) = s.get(run..i).filter(|f| !f.is_empty()) {
                self.fmt
                    .write_string_fragment(self.out, fragment)
                    .map_err(Error::io)?;
            }
            self.fmt
                .write_char_escape(self.out, escape)
                .map_err(Error::io)?;
            run = i + 1;
        }
        if let Some(fragment) = s.get(run..).filter(|f| !f.is_empty()) {
            self.fmt
                .write_string_fragment(self.out, fragment)
                .map_err(Error::io)?;
        }
        Ok(())
    }

    /// `{"variant":` of an enum variant holding data.
    fn open_variant(&mut self, variant: &'static str) -> Result<()> {
        self.fmt.begin_object(self.out).map_err(Error::io)?;
        self.fmt
            .begin_object_key(self.out, true)
            .map_err(Error::io)?;
        self.string(variant)?;
        self.fmt.end_object_key(self.out).map_err(Error::io)?;
        self.fmt.begin_object_value(self.out).map_err(Error::io)
    }

    fn close_variant(&mut self) -> Result<()> {
        self.fmt.end_object_value(self.out).map_err(Error::io)?;
        self.fmt.end_object(self.out).map_err(Error::io)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Opened and closed at once (known to be empty).
    Empty,
    First,
    Rest,
}

pub struct Compound<'s, 'a, F> {
    ser: &'s mut Json<'a, F>,
    state: State,
    /// Close the object around a tuple or struct variant.
    variant: bool,
}

impl<F: Formatter> Compound<'_, '_, F> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let s = &mut *self.ser;
        s.fmt
            .begin_array_value(s.out, self.state == State::First)
            .map_err(Error::io)?;
        self.state = State::Rest;
        v.serialize(&mut *s)?;
        s.fmt.end_array_value(s.out).map_err(Error::io)
    }

    fn end_array(self) -> Result<()> {
        if self.state != State::Empty {
            self.ser.fmt.end_array(self.ser.out).map_err(Error::io)?;
        }
        if self.variant {
            self.ser.close_variant()?;
        }
        Ok(())
    }

    fn key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        let s = &mut *self.ser;
        s.fmt
            .begin_object_key(s.out, self.state == State::First)
            .map_err(Error::io)?;
        self.state = State::Rest;
        key.serialize(MapKey(&mut *s))?;
        s.fmt.end_object_key(s.out).map_err(Error::io)
    }

    fn value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        let s = &mut *self.ser;
        s.fmt.begin_object_value(s.out).map_err(Error::io)?;
        v.serialize(&mut *s)?;
        s.fmt.end_object_value(s.out).map_err(Error::io)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        let s = &mut *self.ser;
        s.fmt
            .begin_object_key(s.out, self.state == State::First)
            .map_err(Error::io)?;
        self.state = State::Rest;
        s.string(key)?;
        s.fmt.end_object_key(s.out).map_err(Error::io)?;
        self.value(v)
    }

    fn end_object(self) -> Result<()> {
        if self.state != State::Empty {
            self.ser.fmt.end_object(self.ser.out).map_err(Error::io)?;
        }
        if self.variant {
            self.ser.close_variant()?;
        }
        Ok(())
    }
}

impl<'s, 'a, F: Formatter> Json<'a, F> {
    fn seq(&'s mut self, len: Option<usize>, variant: bool) -> Result<Compound<'s, 'a, F>> {
        self.fmt.begin_array(self.out).map_err(Error::io)?;
        let state = if len == Some(0) {
            self.fmt.end_array(self.out).map_err(Error::io)?;
            State::Empty
        } else {
            State::First
        };
        Ok(Compound {
            ser: self,
            state,
            variant,
        })
    }

    fn map(&'s mut self, len: Option<usize>, variant: bool) -> Result<Compound<'s, 'a, F>> {
        self.fmt.begin_object(self.out).map_err(Error::io)?;
        let state = if len == Some(0) {
            self.fmt.end_object(self.out).map_err(Error::io)?;
            State::Empty
        } else {
            State::First
        };
        Ok(Compound {
            ser: self,
            state,
            variant,
        })
    }
}

impl<'s, 'a, F: Formatter> ser::Serializer for &'s mut Json<'a, F> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'s, 'a, F>;
    type SerializeTuple = Compound<'s, 'a, F>;
    type SerializeTupleStruct = Compound<'s, 'a, F>;
    type SerializeTupleVariant = Compound<'s, 'a, F>;
    type SerializeMap = Compound<'s, 'a, F>;
    type SerializeStruct = Compound<'s, 'a, F>;
    type SerializeStructVariant = Compound<'s, 'a, F>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.fmt.write_bool(self.out, v).map_err(Error::io)
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.fmt.write_i8(self.out, v).map_err(Error::io)
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.fmt.write_i16(self.out, v).map_err(Error::io)
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.fmt.write_i32(self.out, v).map_err(Error::io)
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.fmt.write_i64(self.out, v).map_err(Error::io)
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.fmt.write_i128(self.out, v).map_err(Error::io)
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.fmt.write_u8(self.out, v).map_err(Error::io)
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.fmt.write_u16(self.out, v).map_err(Error::io)
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.fmt.write_u32(self.out, v).map_err(Error::io)
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.fmt.write_u64(self.out, v).map_err(Error::io)
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.fmt.write_u128(self.out, v).map_err(Error::io)
    }
    fn serialize_f32(self, v: f32) -> Result<()> {
        // As serde_json: NaN and infinities have no JSON number.
        if v.is_finite() {
            self.fmt.write_f32(self.out, v).map_err(Error::io)
        } else {
            self.fmt.write_null(self.out).map_err(Error::io)
        }
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        if v.is_finite() {
            self.fmt.write_f64(self.out, v).map_err(Error::io)
        } else {
            self.fmt.write_null(self.out).map_err(Error::io)
        }
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.fmt.write_byte_array(self.out, v).map_err(Error::io)
    }
    fn serialize_none(self) -> Result<()> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.fmt.write_null(self.out).map_err(Error::io)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<()> {
        self.open_variant(variant)?;
        v.serialize(&mut *self)?;
        self.close_variant()
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq> {
        self.seq(len, false)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple> {
        self.seq(Some(len), false)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        self.seq(Some(len), false)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        self.open_variant(variant)?;
        self.seq(Some(len), true)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap> {
        self.map(len, false)
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Self::SerializeStruct> {
        self.map(Some(len), false)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        self.open_variant(variant)?;
        self.map(Some(len), true)
    }
    fn collect_str<T: Display + ?Sized>(self, v: &T) -> Result<()> {
        self.fmt.begin_string(self.out).map_err(Error::io)?;
        let at = self.out.len();
        write!(self.out, "{v}").map_err(|_| Error::custom("a value could not be formatted"))?;
        if needs_escape(self.out.get(at..).unwrap_or_default()) {
            // Rare: the text goes through the escaping path.
            let raw = self.out.split_off(at);
            let text = String::from_utf8(raw).map_err(Error::custom)?;
            self.contents(&text)?;
        } else if self.out.len() > at {
            // `write_string_fragment` of formatters that write the text as given (all that
            // the report uses; the default method) is the copy already made.
            debug_assert!(fragment_is_plain(&mut self.fmt));
        }
        self.fmt.end_string(self.out).map_err(Error::io)
    }
}

/// Whether `fmt` writes a string fragment as it is (checked in debug builds: text formatted
/// straight into the buffer relies on it).
fn fragment_is_plain<F: Formatter>(fmt: &mut F) -> bool {
    let mut probe = Vec::new();
    fmt.write_string_fragment(&mut probe, "ab").is_ok() && probe == b"ab"
}

impl<F: Formatter> ser::SerializeSeq for Compound<'_, '_, F> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.element(v)
    }
    fn end(self) -> Result<()> {
        self.end_array()
    }
}

impl<F: Formatter> ser::SerializeTuple for Compound<'_, '_, F> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.element(v)
    }
    fn end(self) -> Result<()> {
        self.end_array()
    }
}

impl<F: Formatter> ser::SerializeTupleStruct for Compound<'_, '_, F> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.element(v)
    }
    fn end(self) -> Result<()> {
        self.end_array()
    }
}

impl<F: Formatter> ser::SerializeTupleVariant for Compound<'_, '_, F> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.element(v)
    }
    fn end(self) -> Result<()> {
        self.end_array()
    }
}

impl<F: Formatter> ser::SerializeMap for Compound<'_, '_, F> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<()> {
        self.value(v)
    }
    fn end(self) -> Result<()> {
        self.end_object()
    }
}

impl<F: Formatter> ser::SerializeStruct for Compound<'_, '_, F> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.field(key, v)
    }
    fn end(self) -> Result<()> {
        self.end_object()
    }
}

impl<F: Formatter> ser::SerializeStructVariant for Compound<'_, '_, F> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<()> {
        self.field(key, v)
    }
    fn end(self) -> Result<()> {
        self.end_object()
    }
}

/// A map key as `serde_json` writes one: a string, or an integer or bool inside quotes. The
/// report's maps (finding evidence) have string keys; other keys serde_json would take as
/// text (floats, unit) are refused here.
struct MapKey<'s, 'a, F>(&'s mut Json<'a, F>);

fn key_must_be_a_string() -> Error {
    Error::custom("key must be a string")
}

impl<F: Formatter> MapKey<'_, '_, F> {
    fn quoted(self, write: impl FnOnce(&mut F, &mut Vec<u8>) -> std::io::Result<()>) -> Result<()> {
        let s = self.0;
        s.fmt.begin_string(s.out).map_err(Error::io)?;
        write(&mut s.fmt, s.out).map_err(Error::io)?;
        s.fmt.end_string(s.out).map_err(Error::io)
    }
}

impl<F: Formatter> ser::Serializer for MapKey<'_, '_, F> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.quoted(|f, w| f.write_bool(w, v))
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.quoted(|f, w| f.write_i8(w, v))
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.quoted(|f, w| f.write_i16(w, v))
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.quoted(|f, w| f.write_i32(w, v))
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.quoted(|f, w| f.write_i64(w, v))
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.quoted(|f, w| f.write_i128(w, v))
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.quoted(|f, w| f.write_u8(w, v))
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.quoted(|f, w| f.write_u16(w, v))
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.quoted(|f, w| f.write_u32(w, v))
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.quoted(|f, w| f.write_u64(w, v))
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.quoted(|f, w| f.write_u128(w, v))
    }
    fn serialize_f32(self, _: f32) -> Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_f64(self, _: f64) -> Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.0.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.0.string(v)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<()> {
        self.0.string(v)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<()> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<()> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serde_json::ser::PrettyFormatter;

    fn same_as_serde_json<T: Serialize + ?Sized>(v: &T) {
        let mut ours = Vec::new();
        compact(&mut ours, v).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(v).unwrap()
        );
        let mut ours = Vec::new();
        formatted(&mut ours, PrettyFormatter::new(), v).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string_pretty(v).unwrap()
        );
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        same_as_serde_json(&json!({
            "a": 1, "b": [], "c": {}, "d": [1, -2.5e-7, true, null, "x", u64::MAX, i64::MIN],
            "e": {"f": [{"g": "q\"uo,te:{}[]\\"}, []], "h": {}},
            "s": "tab\t nl\n cr\r bs\x08 ff\x0c nul\0 esc\x1b del\x7f unicode \u{e9} \u{1f600}",
            "k\"ey\n": "", "z": false, "long": "0123456789abcdef\"0123456789abcdef\\"
        }));
        for s in [
            "",
            "a",
            "\"",
            "\\\\",
            "\x01x\x1f",
            "12345678\"",
            "é\"é",
            "\u{2028}",
        ] {
            same_as_serde_json(s);
        }
        same_as_serde_json(&[0.1f64, 1e300, f64::NAN, f64::INFINITY, 0.017095]);
        same_as_serde_json(&[1.5f32, f32::NEG_INFINITY]);
        same_as_serde_json(&'"');
        same_as_serde_json(&(1u8, -2i16, 'c', ()));
    }

    #[derive(Serialize)]
    enum E {
        Unit,
        New(u32),
        Tuple(u8, &'static str),
        Struct { a: Option<u8>, b: Vec<u8> },
        Empty {},
    }

    #[derive(Serialize)]
    struct Skips {
        #[serde(skip_serializing_if = "Option::is_none")]
        a: Option<u8>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        b: Vec<u8>,
    }

    struct Shown(&'static str);

    impl Display for Shown {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            // In two pieces, as a Display may write.
            let (a, b) = self.0.split_at(self.0.len() / 2);
            f.write_str(a)?;
            f.write_str(b)
        }
    }

    impl Serialize for Shown {
        fn serialize<S: ser::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.collect_str(self)
        }
    }

    #[test]
    fn enums_structs_and_displayed_values_match() {
        same_as_serde_json(&[
            E::Unit,
            E::New(7),
            E::Tuple(1, "x"),
            E::Struct {
                a: None,
                b: vec![1, 2],
            },
            E::Empty {},
        ]);
        same_as_serde_json(&[
            Skips { a: None, b: vec![] },
            Skips {
                a: Some(1),
                b: vec![],
            },
        ]);
        same_as_serde_json(&[
            Shown(""),
            Shown("2026-01-31T12:00:00.123456Z"),
            Shown("a\"b\\c\nd"),
        ]);
        let mut ints = std::collections::BTreeMap::new();
        ints.insert(3u16, "three");
        ints.insert(10u16, "ten");
        same_as_serde_json(&ints);
        let mut bools = std::collections::BTreeMap::new();
        bools.insert(true, 1);
        same_as_serde_json(&bools);
        same_as_serde_json(&std::net::IpAddr::from([192, 0, 2, 1]));
        same_as_serde_json(&"2001:db8::1".parse::<std::net::IpAddr>().unwrap());
    }

    #[test]
    fn the_escape_check_finds_every_byte_that_needs_one() {
        for b in 0u8..=255 {
            let serde_escapes =
                serde_json::to_string(&char::from(b)).unwrap().len() > 3 && b < 0x80;
            for at in 0..17 {
                let mut s = vec![b'a'; 17];
                s[at] = b;
                if b >= 0x80 {
                    continue;
                }
                assert_eq!(needs_escape(&s), serde_escapes, "byte {b:#x} at {at}");
            }
        }
        // UTF-8 continuation and lead bytes never look like escapes.
        assert!(!needs_escape("ééééé€€€€😀😀".as_bytes()));
    }
}
