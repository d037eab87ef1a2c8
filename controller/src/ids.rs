//! Random ids for stored records and requests.

/// `prefix` and 24 random hex digits: 96 bits, so ids never collide in practice.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}{:024x}", rand::random::<u128>() >> 32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_have_the_prefix_and_differ() {
        let (a, b) = (super::random_id("b_"), super::random_id("b_"));
        assert!(a.starts_with("b_") && a.len() == 26, "{a}");
        assert!(a[2..].chars().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }
}
