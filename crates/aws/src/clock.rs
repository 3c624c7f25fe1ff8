//! The wall clock, read in one place so every timestamp the functions write has the same
//! fixed-width form (`cochl_core::time::format_millis`).

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Seconds since the Unix epoch: what claim leases, in-flight slot leases and TTL
/// attributes are stored in and compared with.
pub fn now_seconds() -> i64 {
    now_millis() / 1000
}

/// Now, as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn now() -> String {
    cochl_core::time::format_millis(now_millis())
}
