//! Bridges to code written for other async runtimes. See `docs/tokio.md`.

#[cfg(feature = "tokio")]
pub mod tokio;

/// `docs/tokio.md`, whose example is compiled and run as a doctest.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../../../docs/tokio.md")]
pub struct TokioGuide;
