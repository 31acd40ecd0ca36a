//! A `serde` serializer that writes compact JSON with every object's keys in sorted order,
//! as `serde_json` writes a `Value` (its map is ordered), without building the `Value`.
//!
//! The ECS custom namespace carries the model's records whole (`smtpaudit.smtp`, `.tcp`,
//! `.tls`, capture counters, finding evidence), keys sorted as they always were, so that a
//! field the analyzers add later reaches the SIEM without a change to the mapping. An
//! object's members are written as they come; when it ends they are put in key order with
//! one copy of its bytes. The bookkeeping lives in a [`Pool`] the sink keeps, so a warmed-up
//! run allocates nothing per event here.

use std::fmt::{Display, Write as _};

use serde::Serialize;
use serde::ser::{self, Error as _, Impossible};
use serde_json::Error;

/// Buffers reused from one event to the next.
#[derive(Debug, Default)]
pub struct Pool {
    /// Members of the objects being written, innermost last.
    entries: Vec<Entry>,
    /// Keys of map members (struct members have `&'static` names).
    keys: String,
    /// The bytes of the object being reordered.
    scratch: Vec<u8>,
    /// A value's text before it is escaped.
    text: String,
}

impl Pool {
    /// Lets go of buffers one huge event grew (thousands of AUTH attempts), as the line
    /// buffer does, so they are not pinned for the rest of the run.
    pub fn trim(&mut self) {
        const KEEP: usize = 1 << 20;
        if self.scratch.capacity() > KEEP {
            self.scratch = Vec::new();
        }
        if self.text.capacity() > KEEP {
            self.text = String::new();
        }
        if self.keys.capacity() > KEEP {
            self.keys = String::new();
        }
        if self.entries.capacity() > KEEP / std::mem::size_of::<Entry>() {
            self.entries = Vec::new();
        }
    }

    /// `v`'s text, formatted into a reused buffer.
    pub fn text_of(&mut self, v: &(impl Display + ?Sized)) -> &str {
        self.text.clear();
        // Formatting into a String fails only if `v`'s Display does; its text so far stands.
        let _ = write!(self.text, "{v}");
        &self.text
    }
}

#[derive(Clone, Copy, Debug)]
enum Key {
    Static(&'static str),
    /// A range of [`Pool::keys`].
    Arena(usize, usize),
}

/// One member: its key and the range of its value in the output.
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Key,
    start: usize,
    end: usize,
}

/// Where an object's bytes and members begin.
#[derive(Clone, Copy, Debug)]
struct Frame {
    mark: usize,
    base: usize,
    keys_base: usize,
}

/// Which members of a struct serialised into an [`Object`] are kept.
type Keep<'a> = &'a dyn Fn(&str) -> bool;

/// The serializer: compact JSON into `out`, keys sorted.
pub struct Sorted<'a> {
    pub out: &'a mut Vec<u8>,
    pub pool: &'a mut Pool,
    /// Set by [`Object::fields`]: the next struct's members join that object (filtered, and
    /// without their nulls when the flag says so) instead of opening their own.
    inline: Option<(Frame, Keep<'a>, bool)>,
}

impl<'a> Sorted<'a> {
    pub fn new(out: &'a mut Vec<u8>, pool: &'a mut Pool) -> Self {
        Sorted {
            out,
            pool,
            inline: None,
        }
    }

    fn begin(&self) -> Frame {
        Frame {
            mark: self.out.len(),
            base: self.pool.entries.len(),
            keys_base: self.pool.keys.len(),
        }
    }

    fn push(&mut self, key: Key, start: usize) {
        let end = self.out.len();
        self.pool.entries.push(Entry { key, start, end });
    }

    /// Rewrites the members written since `f` as one object in key order. A key given twice
    /// keeps its last value, as inserting into a map would.
    fn finish(&mut self, f: Frame) {
        let Pool {
            entries,
            keys,
            scratch,
            ..
        } = &mut *self.pool;
        let name = |k: Key| match k {
            Key::Static(s) => s,
            Key::Arena(a, b) => keys.get(a..b).unwrap_or_default(),
        };
        let list = entries.get_mut(f.base..).unwrap_or_default();
        list.sort_unstable_by(|a, b| name(a.key).cmp(name(b.key)).then(a.start.cmp(&b.start)));
        scratch.clear();
        scratch.extend_from_slice(self.out.get(f.mark..).unwrap_or_default());
        self.out.truncate(f.mark);
        self.out.push(b'{');
        let mut first = true;
        for (i, e) in list.iter().enumerate() {
            if list.get(i + 1).is_some_and(|n| name(n.key) == name(e.key)) {
                continue;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            escaped(self.out, name(e.key));
            self.out.push(b':');
            let value = scratch.get(e.start - f.mark..e.end - f.mark);
            self.out.extend_from_slice(value.unwrap_or_default());
        }
        self.out.push(b'}');
        entries.truncate(f.base);
        keys.truncate(f.keys_base);
    }

    /// A scalar, written as `serde_json` writes it.
    fn json<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        v.serialize(&mut serde_json::Serializer::new(&mut *self.out))
    }
}

/// Whether JSON needs an escape in `s`: a control character, a quote or a backslash (what
/// `serde_json` escapes). Eight bytes at a time: each test below is exact as a yes/no (a
/// borrow only spreads into bytes above one that matched), and a yes only sends the string
/// through `serde_json`'s escaping, so it is correct either way.
pub fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let quote = zero_byte(x ^ (ONES * u64::from(b'"')));
        let backslash = zero_byte(x ^ (ONES * u64::from(b'\\')));
        if control | quote | backslash != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// `s` as a JSON string, escaped by `serde_json`.
pub fn escaped(out: &mut Vec<u8>, s: &str) {
    // Most strings (keys, names, fingerprints) have nothing to escape: copied whole.
    if !needs_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
}

/// `v`'s text as a JSON string, escaped by `serde_json`, without an intermediate `String`.
pub fn escaped_display(out: &mut Vec<u8>, v: &(impl Display + ?Sized)) {
    let _ = ser::Serializer::collect_str(&mut serde_json::Serializer::new(out), v);
}

/// An object whose members the caller adds (single values, or the fields of a struct), then
/// written in key order by [`Object::end`].
pub struct Object<'s, 'a> {
    ser: &'s mut Sorted<'a>,
    frame: Frame,
}

impl<'s, 'a> Object<'s, 'a> {
    pub fn begin(ser: &'s mut Sorted<'a>) -> Self {
        let frame = ser.begin();
        Object { ser, frame }
    }

    /// A member `key` written by `f`.
    pub fn entry(
        &mut self,
        key: &'static str,
        f: impl FnOnce(&mut Sorted<'a>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let start = self.ser.out.len();
        f(self.ser)?;
        self.ser.push(Key::Static(key), start);
        Ok(())
    }

    pub fn value<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), Error> {
        self.entry(key, |s| v.serialize(s))
    }

    /// The members of struct `v` whose names `keep` accepts, null ones left out when
    /// `skip_nulls`.
    pub fn fields<T: Serialize + ?Sized>(
        &mut self,
        v: &T,
        keep: &dyn Fn(&str) -> bool,
        skip_nulls: bool,
    ) -> Result<(), Error> {
        let mut inner = Sorted {
            out: &mut *self.ser.out,
            pool: &mut *self.ser.pool,
            inline: Some((self.frame, keep, skip_nulls)),
        };
        v.serialize(&mut inner)?;
        if inner.inline.is_some() {
            return Err(Error::custom("only a struct's fields can join an object"));
        }
        Ok(())
    }

    pub fn end(self) {
        self.ser.finish(self.frame);
    }
}

/// Arrays, tuples and the array of a tuple variant.
pub struct Seq<'s, 'a> {
    ser: &'s mut Sorted<'a>,
    first: bool,
    close: &'static [u8],
}

/// Maps, structs and the object of a struct variant.
pub struct Obj<'s, 'a> {
    ser: &'s mut Sorted<'a>,
    frame: Frame,
    key: Option<Key>,
    /// Members join an [`Object`]: kept by the filter, nulls left out when the flag says so.
    inline: Option<(Keep<'a>, bool)>,
    /// Close the `{"Variant":` of a struct variant.
    variant: bool,
}

impl<'s, 'a> Seq<'s, 'a> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        if !self.first {
            self.ser.out.push(b',');
        }
        self.first = false;
        v.serialize(&mut *self.ser)
    }

    fn close(self) -> Result<(), Error> {
        self.ser.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl<'s, 'a> Obj<'s, 'a> {
    fn member<T: Serialize + ?Sized>(&mut self, key: Key, v: &T) -> Result<(), Error> {
        let start = self.ser.out.len();
        v.serialize(&mut *self.ser)?;
        if let Some((_, true)) = self.inline {
            if self.ser.out.get(start..) == Some(b"null".as_slice()) {
                self.ser.out.truncate(start);
                return Ok(());
            }
        }
        self.ser.push(key, start);
        Ok(())
    }

    fn close(self) -> Result<(), Error> {
        if self.inline.is_none() {
            self.ser.finish(self.frame);
        }
        if self.variant {
            self.ser.out.push(b'}');
        }
        Ok(())
    }
}

impl<'s, 'a> ser::Serializer for &'s mut Sorted<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'s, 'a>;
    type SerializeTuple = Seq<'s, 'a>;
    type SerializeTupleStruct = Seq<'s, 'a>;
    type SerializeTupleVariant = Seq<'s, 'a>;
    type SerializeMap = Obj<'s, 'a>;
    type SerializeStruct = Obj<'s, 'a>;
    type SerializeStructVariant = Obj<'s, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        // As a `Value` holds it: widened to f64.
        self.json(&f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.json(&v)
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        escaped(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.json(v)
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<(), Error> {
        self.serialize_str(v)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        escaped(self.out, variant);
        self.out.push(b':');
        v.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'s, 'a>, Error> {
        self.out.push(b'[');
        Ok(Seq {
            ser: self,
            first: true,
            close: b"]",
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'s, 'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'s, 'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'s, 'a>, Error> {
        self.out.push(b'{');
        escaped(self.out, variant);
        self.out.extend_from_slice(b":[");
        Ok(Seq {
            ser: self,
            first: true,
            close: b"]}",
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Obj<'s, 'a>, Error> {
        let frame = self.begin();
        Ok(Obj {
            ser: self,
            frame,
            key: None,
            inline: None,
            variant: false,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Obj<'s, 'a>, Error> {
        let (frame, inline) = match self.inline.take() {
            Some((frame, keep, skip_nulls)) => (frame, Some((keep, skip_nulls))),
            None => (self.begin(), None),
        };
        Ok(Obj {
            ser: self,
            frame,
            key: None,
            inline,
            variant: false,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Obj<'s, 'a>, Error> {
        self.out.push(b'{');
        escaped(self.out, variant);
        self.out.push(b':');
        let frame = self.begin();
        Ok(Obj {
            ser: self,
            frame,
            key: None,
            inline: None,
            variant: true,
        })
    }
    fn collect_str<T: Display + ?Sized>(self, v: &T) -> Result<(), Error> {
        escaped_display(self.out, v);
        Ok(())
    }
}

impl ser::SerializeSeq for Seq<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTuple for Seq<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Seq<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for Seq<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.element(v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeMap for Obj<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let keys = &mut self.ser.pool.keys;
        let start = keys.len();
        key.serialize(MapKey(keys))?;
        self.key = Some(Key::Arena(start, keys.len()));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error::custom("map value without a key"))?;
        self.member(key, v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeStruct for Obj<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        if let Some((keep, _)) = self.inline {
            if !keep(key) {
                return Ok(());
            }
        }
        self.member(Key::Static(key), v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeStructVariant for Obj<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        self.member(Key::Static(key), v)
    }
    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// A map key, unescaped, as `serde_json` accepts one: a string, or a number, bool or unit
/// variant written as text.
struct MapKey<'k>(&'k mut String);

fn key_must_be_a_string() -> Error {
    Error::custom("key must be a string")
}

impl MapKey<'_> {
    fn text(self, v: impl Display) -> Result<(), Error> {
        write!(self.0, "{v}").map_err(Error::custom)
    }
}

impl ser::Serializer for MapKey<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.text(v)
    }
    fn serialize_f32(self, _: f32) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_f64(self, _: f64) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.0.push(v);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.0.push_str(v);
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<(), Error> {
        self.serialize_str(v)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
}
