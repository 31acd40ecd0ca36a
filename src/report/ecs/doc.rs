//! The ECS event writer: one JSON object written straight into the line buffer, its nested
//! objects (`tls.server.x509`, ...) opened by name and written only once a field lands in
//! them, so an object with nothing to say does not appear.
//!
//! Callers write each object's members in sorted key order, the order the events have
//! always had (a sorted map's); the golden files hold them to it, and debug builds check
//! it. The custom namespace's records go through [`Sorted`], which sorts on its own.

use std::fmt::Display;
use std::io;

use serde::Serialize;

use super::sorted::{Object, Pool, Sorted, escaped, needs_escape};

/// Deepest nesting of an ECS path (`tls.server.x509.subject.common_name` is 4 objects deep).
const MAX_DEPTH: usize = 8;

#[derive(Clone, Copy, Debug)]
struct Open {
    key: &'static str,
    /// Its `"key":{` is in the output.
    written: bool,
    /// No member written yet (no comma before the next).
    empty: bool,
    /// The previous member's key, for the order check.
    last: &'static str,
}

const ROOT: Open = Open {
    key: "",
    written: true,
    empty: true,
    last: "",
};

pub struct Doc<'a> {
    out: &'a mut Vec<u8>,
    pool: &'a mut Pool,
    open: [Open; MAX_DEPTH],
    /// Index of the innermost open object (0 is the document).
    depth: usize,
    /// The first error of a serialisation, returned by [`Doc::end`].
    error: Option<serde_json::Error>,
}

impl<'a> Doc<'a> {
    pub fn begin(out: &'a mut Vec<u8>, pool: &'a mut Pool) -> Self {
        out.push(b'{');
        Doc {
            out,
            pool,
            open: [ROOT; MAX_DEPTH],
            depth: 0,
            error: None,
        }
    }

    /// Closes what is open and the document.
    pub fn end(mut self) -> io::Result<()> {
        while self.depth > 0 {
            self.close();
        }
        self.out.push(b'}');
        match self.error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The object `key` holding what `f` writes; absent when `f` writes nothing.
    pub fn obj(&mut self, key: &'static str, f: impl FnOnce(&mut Self)) {
        if self.depth + 1 >= MAX_DEPTH {
            debug_assert!(false, "ECS object nested too deep at {key}");
            return;
        }
        self.depth += 1;
        self.open[self.depth] = Open {
            key,
            written: false,
            empty: true,
            last: "",
        };
        f(self);
        self.close();
    }

    fn close(&mut self) {
        if self.open[self.depth].written {
            self.out.push(b'}');
        }
        self.depth -= 1;
    }

    /// Writes `"key":` in the innermost object, writing the objects around it first if they
    /// are not yet.
    fn key(&mut self, key: &'static str) {
        let first_pending = (1..=self.depth)
            .find(|&i| !self.open[i].written)
            .unwrap_or(self.depth + 1);
        for i in first_pending..=self.depth {
            let name = self.open[i].key;
            self.member(i - 1, name);
            self.out.push(b'{');
            self.open[i].written = true;
        }
        self.member(self.depth, key);
    }

    fn member(&mut self, level: usize, key: &'static str) {
        let o = &mut self.open[level];
        debug_assert!(
            o.empty || o.last < key,
            "ECS keys out of order: {key} after {}",
            o.last
        );
        if !o.empty {
            self.out.push(b',');
        }
        o.empty = false;
        o.last = key;
        // The mapping's own names: nothing to escape.
        debug_assert!(!needs_escape(key.as_bytes()), "{key}");
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    pub fn str(&mut self, key: &'static str, v: &str) {
        self.key(key);
        escaped(self.out, v);
    }

    /// `v`'s text as a string (addresses, timestamps, messages), escaped.
    pub fn display(&mut self, key: &'static str, v: &(impl Display + ?Sized)) {
        self.key(key);
        // Formatted whole, then escaped once (not fragment by fragment).
        escaped(self.out, self.pool.text_of(v));
    }

    pub fn u64(&mut self, key: &'static str, v: u64) {
        self.key(key);
        // Into a Vec: cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, &v);
    }

    pub fn i64(&mut self, key: &'static str, v: i64) {
        self.key(key);
        // Into a Vec: cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, &v);
    }

    pub fn bool(&mut self, key: &'static str, v: bool) {
        self.key(key);
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
    }

    /// An array of strings.
    pub fn strs<'s>(&mut self, key: &'static str, items: impl IntoIterator<Item = &'s str>) {
        self.key(key);
        self.out.push(b'[');
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            escaped(self.out, s);
        }
        self.out.push(b']');
    }

    /// A record of the model as JSON, its objects' keys sorted.
    pub fn record<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) {
        self.key(key);
        let r = v.serialize(&mut Sorted::new(self.out, self.pool));
        self.keep_error(r);
    }

    /// An object of members in any order (fixed members and the fields of records), written
    /// in key order.
    pub fn sorted(
        &mut self,
        key: &'static str,
        f: impl FnOnce(&mut Object<'_, '_>) -> Result<(), serde_json::Error>,
    ) {
        self.key(key);
        let mut ser = Sorted::new(self.out, self.pool);
        let mut o = Object::begin(&mut ser);
        let r = f(&mut o);
        o.end();
        self.keep_error(r);
    }

    fn keep_error(&mut self, r: Result<(), serde_json::Error>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }
}
