//! The spec's rules for what a runtime passes in, checked the same way by plugin and agent.

/// Spec rule for container ids: alphanumeric first, then alphanumerics, `_`, `.`, `-`.
pub fn valid_container_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Spec (and kernel) rule for interface names: 1..=15 bytes, not `.`/`..`, no `/`, `:`, spaces.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
}

/// Parses `a.b.c` (missing parts are 0).
pub fn version_tuple(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.');
    let a = it.next()?.parse().ok()?;
    let b = it.next().map_or(Some(0), |x| x.parse().ok())?;
    let c = it.next().map_or(Some(0), |x| x.parse().ok())?;
    if it.next().is_some() {
        return None;
    }
    Some((a, b, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids() {
        assert!(valid_container_id("abc-1.2_3"));
        assert!(!valid_container_id(""));
        assert!(!valid_container_id("-abc"));
        assert!(!valid_container_id("a/b"));
    }

    #[test]
    fn ifnames() {
        assert!(valid_ifname("net1"));
        assert!(valid_ifname(&"a".repeat(15)));
        assert!(!valid_ifname(&"a".repeat(16)));
        for bad in ["", ".", "..", "a/b", "a:b", "a b"] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(version_tuple("1.1.0"), Some((1, 1, 0)));
        assert_eq!(version_tuple("0.4"), Some((0, 4, 0)));
        assert_eq!(version_tuple("1.x"), None);
        assert_eq!(version_tuple("1.0.0.0"), None);
    }
}
