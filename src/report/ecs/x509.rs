//! `tls.server.*`: the server's JA3S and its certificate in ECS's `tls.server.*` and
//! `tls.server.x509.*` fields. The certificate comes as the model's [`CertRecord`] or, for
//! a check of the mapping alone ([`x509_doc`]), as a JSON object under the names the TLS
//! analyzer uses and a few aliases; both go through the one mapping here.

use std::fmt;

use serde_json::{Map, Value};

use super::doc::Doc;
use super::sorted::Pool;
use super::strip_prefix_ci;
use crate::report::model::{CertRecord, detail};

/// Strings of a certificate field: one, a list, or the `CN=` values of a distinguished name.
#[derive(Clone, Copy, Debug)]
pub enum Texts<'a> {
    One(&'a str),
    /// The strings among JSON values.
    Json(&'a [Value]),
    List(&'a [String]),
    CommonNames(&'a str),
}

impl<'a> Texts<'a> {
    fn iter(self) -> impl Iterator<Item = &'a str> {
        let (one, json, list, dn) = match self {
            Texts::One(s) => (Some(s), None, None, None),
            Texts::Json(v) => (None, Some(v), None, None),
            Texts::List(v) => (None, None, Some(v), None),
            Texts::CommonNames(dn) => (None, None, None, Some(dn)),
        };
        one.into_iter()
            .chain(json.into_iter().flatten().filter_map(Value::as_str))
            .chain(list.into_iter().flatten().map(String::as_str))
            .chain(dn.into_iter().flat_map(common_names))
    }

    /// None when there is no string to write.
    fn nonempty(self) -> Option<Self> {
        self.iter().next().map(|_| self)
    }
}

/// The CN values of a distinguished name as x509-parser prints it (`C=US, O=Org, CN=name`).
/// An escaped comma inside a value would split it; CNs of mail servers are host names.
fn common_names(dn: &str) -> impl Iterator<Item = &str> {
    dn.split(',')
        .filter_map(|rdn| strip_prefix_ci(rdn.trim(), "CN=").map(str::trim))
}

/// What the mapping reads from a certificate.
pub trait Cert {
    fn subject(&self) -> Option<&str>;
    fn issuer(&self) -> Option<&str>;
    /// Common names given apart from the distinguished names.
    fn subject_cn(&self) -> Option<Texts<'_>>;
    fn issuer_cn(&self) -> Option<Texts<'_>>;
    fn not_before(&self) -> Option<&str>;
    fn not_after(&self) -> Option<&str>;
    fn alternative_names(&self) -> Option<Texts<'_>>;
    fn key_bits(&self) -> Option<u64>;
    fn key_algorithm(&self) -> Option<&str>;
    fn signature_algorithm(&self) -> Option<&str>;
    fn serial_number(&self) -> Option<&str>;
    fn sha256(&self) -> Option<&str>;
    fn sha1(&self) -> Option<&str>;
}

impl Cert for CertRecord {
    fn subject(&self) -> Option<&str> {
        Some(&self.subject)
    }
    fn issuer(&self) -> Option<&str> {
        Some(&self.issuer)
    }
    fn subject_cn(&self) -> Option<Texts<'_>> {
        None
    }
    fn issuer_cn(&self) -> Option<Texts<'_>> {
        None
    }
    fn not_before(&self) -> Option<&str> {
        Some(&self.not_before)
    }
    fn not_after(&self) -> Option<&str> {
        Some(&self.not_after)
    }
    fn alternative_names(&self) -> Option<Texts<'_>> {
        Texts::List(&self.san).nonempty()
    }
    fn key_bits(&self) -> Option<u64> {
        self.key_bits.map(u64::from)
    }
    fn key_algorithm(&self) -> Option<&str> {
        Some(&self.key_type)
    }
    fn signature_algorithm(&self) -> Option<&str> {
        None
    }
    fn serial_number(&self) -> Option<&str> {
        None
    }
    fn sha256(&self) -> Option<&str> {
        Some(&self.sha256)
    }
    fn sha1(&self) -> Option<&str> {
        None
    }
}

/// First non-null value among `keys`.
fn pick<'a>(m: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| m.get(*k).filter(|v| !v.is_null()))
}

fn pick_str<'a>(m: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    pick(m, keys).and_then(Value::as_str)
}

/// A string, or an array with strings in it.
fn pick_strings<'a>(m: &'a Map<String, Value>, keys: &[&str]) -> Option<Texts<'a>> {
    match pick(m, keys)? {
        Value::String(s) => Some(Texts::One(s)),
        Value::Array(a) => Texts::Json(a).nonempty(),
        _ => None,
    }
}

/// A certificate object by the TLS analyzer's names and their common aliases.
impl Cert for Map<String, Value> {
    fn subject(&self) -> Option<&str> {
        pick_str(self, &["subject", "subject_dn"])
    }
    fn issuer(&self) -> Option<&str> {
        pick_str(self, &["issuer", "issuer_dn"])
    }
    fn subject_cn(&self) -> Option<Texts<'_>> {
        pick_strings(self, &["subject_cn", "common_name", "cn"])
    }
    fn issuer_cn(&self) -> Option<Texts<'_>> {
        pick_strings(self, &["issuer_cn"])
    }
    fn not_before(&self) -> Option<&str> {
        pick_str(self, &["not_before", "valid_from"])
    }
    fn not_after(&self) -> Option<&str> {
        pick_str(self, &["not_after", "valid_until", "valid_to"])
    }
    fn alternative_names(&self) -> Option<Texts<'_>> {
        pick_strings(
            self,
            &[
                "alternative_names",
                "san",
                "sans",
                "subject_alt_names",
                "dns_names",
            ],
        )
    }
    fn key_bits(&self) -> Option<u64> {
        pick(self, &["public_key_size", "key_bits", "key_size"]).and_then(Value::as_u64)
    }
    fn key_algorithm(&self) -> Option<&str> {
        pick_str(self, &["public_key_algorithm", "key_type", "key_algorithm"])
    }
    fn signature_algorithm(&self) -> Option<&str> {
        pick_str(self, &["signature_algorithm"])
    }
    fn serial_number(&self) -> Option<&str> {
        pick_str(self, &["serial_number", "serial"])
    }
    fn sha256(&self) -> Option<&str> {
        pick_str(self, &["sha256", "fingerprint_sha256", "hash_sha256"])
    }
    fn sha1(&self) -> Option<&str> {
        pick_str(self, &["sha1", "fingerprint_sha1", "hash_sha1"])
    }
}

/// A certificate hash as ECS shows it: uppercase hex without separators.
struct UpperHex<'a>(&'a str);

impl fmt::Display for UpperHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0
            .chars()
            .filter(|c| *c != ':')
            .try_for_each(|c| fmt::Write::write_char(f, c.to_ascii_uppercase()))
    }
}

/// The members of `tls.server`, in key order. Lean documents write subject, issuer and
/// validity once, in ECS's `tls.server.*`: the `x509` copies (and the common names inside
/// those names) would repeat them.
pub fn server_fields(d: &mut Doc<'_>, ja3s: Option<&str>, cert: Option<&dyn Cert>) {
    let full = !detail::lean();
    let Some(cert) = cert else {
        if let Some(j) = ja3s {
            d.str("ja3s", j);
        }
        return;
    };
    d.obj("hash", |d| {
        if let Some(h) = cert.sha1() {
            d.display("sha1", &UpperHex(h));
        }
        if let Some(h) = cert.sha256() {
            d.display("sha256", &UpperHex(h));
        }
    });
    let (subject, issuer) = (cert.subject(), cert.issuer());
    let (not_before, not_after) = (cert.not_before(), cert.not_after());
    if let Some(s) = issuer {
        d.str("issuer", s);
    }
    if let Some(j) = ja3s {
        d.str("ja3s", j);
    }
    if let Some(t) = not_after {
        d.str("not_after", t);
    }
    if let Some(t) = not_before {
        d.str("not_before", t);
    }
    if let Some(s) = subject {
        d.str("subject", s);
    }
    d.obj("x509", |d| {
        if let Some(san) = cert.alternative_names() {
            d.strs("alternative_names", san.iter());
        }
        if full {
            name(d, "issuer", issuer, cert.issuer_cn());
            if let Some(t) = not_after {
                d.str("not_after", t);
            }
            if let Some(t) = not_before {
                d.str("not_before", t);
            }
        }
        if let Some(a) = cert.key_algorithm() {
            d.str("public_key_algorithm", a);
        }
        if let Some(bits) = cert.key_bits() {
            d.u64("public_key_size", bits);
        }
        if let Some(s) = cert.serial_number() {
            d.str("serial_number", s);
        }
        if let Some(a) = cert.signature_algorithm() {
            d.str("signature_algorithm", a);
        }
        if full {
            name(d, "subject", subject, cert.subject_cn());
        }
    });
}

/// `x509.subject` or `x509.issuer`: common names (given, else from the DN) and the DN.
fn name(d: &mut Doc<'_>, key: &'static str, dn: Option<&str>, cn: Option<Texts<'_>>) {
    let cn = cn.or_else(|| dn.and_then(|dn| Texts::CommonNames(dn).nonempty()));
    d.obj(key, |d| {
        if let Some(cn) = cn {
            d.strs("common_name", cn.iter());
        }
        if let Some(dn) = dn {
            d.str("distinguished_name", dn);
        }
    });
}

/// The `tls.server.*` fields ECS has for a server certificate object as the TLS record
/// serialises it (`subject`, `issuer`, `not_before`, `not_after`, `alternative_names`/`san`,
/// `public_key_size`/`key_bits`, `sha256`, ...). Public so the mapping can be checked alone.
pub fn x509_doc(cert: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Vec::new();
    let mut pool = Pool::default();
    let mut d = Doc::begin(&mut out, &mut pool);
    d.obj("tls", |d| {
        d.obj("server", |d| server_fields(d, None, Some(cert)))
    });
    match d.end().map(|()| serde_json::from_slice(&out)) {
        Ok(Ok(Value::Object(m))) => m,
        _ => Map::new(),
    }
}
