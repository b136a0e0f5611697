//! Derive macros for tern, re-exported by the `tern` crate: use them as
//! `tern::RemoteMessage` (or through `tern::remote::prelude`), not from here.
//!
//! `#[derive(RemoteMessage)]` implements `tern::remote::RemoteMessage` from a
//! `#[tern(...)]` attribute:
//!
//! - `name = "..."` (required): the message type's stable wire name, e.g.
//!   `"kv.v1.Put"`. It is what crosses the network, so it must not change when the
//!   Rust type is renamed or moved.
//! - `codec = ...` (default `Postcard`): `Postcard`, `Json`, `Prost` or `Raw` (tern's
//!   codecs), or the path of any type implementing `tern::remote::Codec`.
//! - `item = Type` (optional): the message is also a `tern::actors::StreamMessage`
//!   whose streamed replies are `Type`.
//! - `crate = path` (optional, default `::tern`): where tern is, for code that renames
//!   it.
//!
//! The examples and compile tests are in the `tern` crate's documentation of
//! `tern::RemoteMessage`.

mod remote_message;

use proc_macro::TokenStream;

/// Implements `tern::remote::RemoteMessage` (and, with `item = ...`,
/// `tern::actors::StreamMessage`); see the [crate documentation](crate).
#[proc_macro_derive(RemoteMessage, attributes(tern))]
pub fn derive_remote_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    remote_message::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
