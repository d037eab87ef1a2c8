//! Random ids for stored records and requests, and the hex digits of digests.

/// `prefix` and 24 random hex digits: 96 bits, so ids never collide in practice.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}{:024x}", rand::random::<u128>() >> 32)
}

/// Lowercase hex digits of `bytes` (a digest's, for keys, versions and client hashes).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_writes_two_lowercase_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(super::hex(&[]), "");
    }

    #[test]
    fn ids_have_the_prefix_and_differ() {
        let (a, b) = (super::random_id("b_"), super::random_id("b_"));
        assert!(a.starts_with("b_") && a.len() == 26, "{a}");
        assert!(a[2..].chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }
}
