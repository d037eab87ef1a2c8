//! The project's one clock: Unix time in milliseconds.
//!
//! It lives here, in the crate at the bottom of the house that every other crate may import,
//! because its users sit on both sides of a rule: the SQL store stamps rows with it, and the
//! controller's gateway (which never imports the store) stamps the worker records it shares
//! through Redis. Battles are timestamped facts, so a clock is not out of place next to them.

/// Milliseconds since the Unix epoch (0 on a clock set before 1970).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn it_is_now() {
        // 2020-09-13 in milliseconds: any sane clock is past it, and seconds would not be.
        assert!(super::unix_ms() > 1_600_000_000_000);
    }
}
