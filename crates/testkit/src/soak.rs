//! Sizes of the load tests. `make test` runs each load test at a small size that still
//! proves its guarantee; `make soak` runs its `#[ignore]`d soak twin at full size, the
//! size the README's figures come from. An environment variable overrides either.

/// The size a load test runs at: the environment variable `var` when it holds a positive
/// number, else `default`.
///
/// # Panics
/// When `var` is set but is not a positive number: a soak run must not quietly fall back
/// to another size.
pub fn size(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Err(_) => default,
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("{var}={text:?}: expected a positive number"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_is_the_default() {
        assert_eq!(size("COCHL_TESTKIT_SURELY_UNSET_SIZE", 150), 150);
    }
}
