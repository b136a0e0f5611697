//! Size limits applied while decoding.

/// Upper bounds a decoder enforces. Defaults suit a header: payloads travel in their
/// own frame and have their own limit at the transport.
///
/// # Examples
///
/// ```
/// use tern_proto::Limits;
///
/// let strict = Limits { max_envelope_bytes: 1024, ..Limits::default() };
/// assert!(strict.max_name_len <= strict.max_envelope_bytes);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded envelope accepted (default 8 KiB).
    pub max_envelope_bytes: usize,
    /// Longest node or component name (default 255 bytes).
    pub max_name_len: usize,
    /// Longest `message_type` (default 255 bytes).
    pub max_message_type_len: usize,
    /// Longest `content_type` (default 127 bytes).
    pub max_content_type_len: usize,
    /// Longest flow name (default 127 bytes).
    pub max_flow_len: usize,
    /// Longest error detail (default 4 KiB).
    pub max_error_detail_len: usize,
    /// Most component names in one control-plane directory (default 4,096).
    pub max_directory_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_envelope_bytes: 8 * 1024,
            max_name_len: 255,
            max_message_type_len: 255,
            max_content_type_len: 127,
            max_flow_len: 127,
            max_error_detail_len: 4 * 1024,
            max_directory_entries: 4096,
        }
    }
}
