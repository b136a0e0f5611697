//! The status page the admin listener serves at `/`: one HTML file with its script
//! inline (no build step, no external resources), reading `/status`, `/components`
//! and `/spans` every two seconds: members, components and their rates, the cluster's
//! components, an ask latency chart (p50, p90, p99) and the last spans. When its
//! first refresh has filled the page, `<body data-ready="1">`.

/// The page.
pub(super) const PAGE: &str = include_str!("status_page.html");

#[cfg(test)]
mod tests {
    use super::PAGE;

    #[test]
    fn the_page_reads_only_the_listener_it_came_from() {
        for path in ["\"/status\"", "\"/components\"", "\"/spans\""] {
            assert!(PAGE.contains(path), "{path}");
        }
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"));
        assert!(PAGE.contains("data-ready"));
    }
}
