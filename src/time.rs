//! Capture time. Every clock in smtpaudit is the capture's: idle timeouts, durations and
//! certificate validity are measured against packet timestamps, never the wall clock.

use std::fmt;

/// A packet timestamp: seconds since the Unix epoch plus nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    pub const fn new(secs: i64, nanos: u32) -> Self {
        // Normalise so that `nanos` is always below one second.
        Timestamp {
            secs: secs + (nanos / 1_000_000_000) as i64,
            nanos: nanos % 1_000_000_000,
        }
    }

    /// Whole seconds elapsed since `earlier`, zero when `earlier` is later.
    pub fn secs_since(&self, earlier: Timestamp) -> u64 {
        let d = self.secs.saturating_sub(earlier.secs);
        if d < 0 {
            0
        } else if d > 0 && self.nanos < earlier.nanos {
            (d - 1) as u64
        } else {
            d as u64
        }
    }

    /// Nanoseconds since the epoch, for arithmetic that must not overflow.
    pub fn as_nanos(&self) -> i128 {
        self.secs as i128 * 1_000_000_000 + self.nanos as i128
    }

    /// RFC 3339 in UTC with microseconds, as the report contract shows
    /// (`2026-01-31T12:00:00.123456Z`).
    pub fn rfc3339(&self) -> String {
        self.to_string()
    }
}

impl Timestamp {
    /// The RFC 3339 form in a fixed buffer, for the years 0-9999 (every report line carries
    /// timestamps: digits into a buffer, one write, no formatting machinery).
    fn fixed(&self) -> Option<[u8; 27]> {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400) as u64;
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) || self.nanos >= 1_000_000_000 {
            return None;
        }
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut v: u64| {
            for i in (at..at + width).rev() {
                if let Some(c) = b.get_mut(i) {
                    *c = b'0' + (v % 10) as u8;
                }
                v /= 10;
            }
        };
        put(0, 4, y as u64);
        put(5, 2, u64::from(m));
        put(8, 2, u64::from(d));
        put(11, 2, rem / 3600);
        put(14, 2, (rem / 60) % 60);
        put(17, 2, rem % 60);
        put(20, 6, u64::from(self.nanos / 1000));
        Some(b)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(b) = self.fixed() {
            return f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?);
        }
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            y,
            m,
            d,
            rem / 3600,
            (rem / 60) % 60,
            rem % 60,
            self.nanos / 1000
        )
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.fixed() {
            Some(b) => match std::str::from_utf8(&b) {
                Ok(text) => s.serialize_str(text),
                Err(_) => s.collect_str(self),
            },
            None => s.collect_str(self),
        }
    }
}

/// Proleptic Gregorian date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_micro() {
        assert_eq!(
            Timestamp::new(0, 0).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::new(1_769_860_800, 123_456_789).to_string(),
            "2026-01-31T12:00:00.123456Z"
        );
        assert_eq!(
            Timestamp::new(951_782_400, 0).to_string(),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn formats_the_edges_of_four_digit_years() {
        for (secs, nanos, text) in [
            (-1, 0, "1969-12-31T23:59:59.000000Z"),
            (-62_167_219_200, 0, "0000-01-01T00:00:00.000000Z"),
            (253_402_300_799, 999_999_999, "9999-12-31T23:59:59.999999Z"),
            (253_402_300_800, 0, "10000-01-01T00:00:00.000000Z"),
            (1_767_225_600, 1_000, "2026-01-01T00:00:00.000001Z"),
        ] {
            assert_eq!(Timestamp::new(secs, nanos).to_string(), text);
        }
    }

    #[test]
    fn normalises_and_subtracts() {
        let a = Timestamp::new(10, 1_500_000_000);
        assert_eq!(a, Timestamp::new(11, 500_000_000));
        assert_eq!(a.secs_since(Timestamp::new(5, 600_000_000)), 5);
        assert_eq!(Timestamp::new(5, 0).secs_since(a), 0);
    }
}
