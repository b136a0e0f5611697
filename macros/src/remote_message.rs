//! `#[derive(RemoteMessage)]`: the attribute's parsing and the generated impls.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{DeriveInput, LitStr, Path, Type};

/// tern's own codecs, which a bare name in `codec = ...` refers to.
const CODECS: [&str; 4] = ["Postcard", "Json", "Prost", "Raw"];

/// What `#[tern(...)]` said.
#[derive(Default)]
struct Args {
    name: Option<LitStr>,
    codec: Option<Path>,
    item: Option<Type>,
    krate: Option<Path>,
}

fn parse_args(input: &DeriveInput) -> syn::Result<Args> {
    let mut args = Args::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("tern")) {
        attr.parse_nested_meta(|meta| {
            let once = |seen: bool| {
                if seen {
                    Err(meta.error("given twice"))
                } else {
                    Ok(())
                }
            };
            if meta.path.is_ident("name") {
                once(args.name.is_some())?;
                let name: LitStr = meta.value()?.parse()?;
                if name.value().trim().is_empty() {
                    return Err(syn::Error::new(name.span(), "the wire name is empty"));
                }
                args.name = Some(name);
            } else if meta.path.is_ident("codec") {
                once(args.codec.is_some())?;
                args.codec = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("item") {
                once(args.item.is_some())?;
                args.item = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("crate") {
                once(args.krate.is_some())?;
                args.krate = Some(meta.value()?.parse()?);
            } else {
                return Err(meta.error(
                    "unknown key: #[tern(...)] takes name = \"...\", codec = ..., item = ... \
                     and crate = ...",
                ));
            }
            Ok(())
        })?;
    }
    Ok(args)
}

/// The impls for `input`, or an error pointing at what is wrong.
pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let args = parse_args(input)?;
    let Some(name) = args.name else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(RemoteMessage)] needs its wire name: #[tern(name = \"app.v1.Message\")]",
        ));
    };
    let krate = args
        .krate
        .map_or_else(|| quote!(::tern), ToTokens::into_token_stream);
    let codec = match args.codec {
        Some(path)
            if path.leading_colon.is_none()
                && path.segments.len() == 1
                && CODECS.iter().any(|c| path.is_ident(c)) =>
        {
            quote!(#krate::remote::#path)
        }
        Some(path) => path.into_token_stream(),
        None => quote!(#krate::remote::Postcard),
    };
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let stream = args.item.map(|item| {
        quote! {
            impl #impl_generics #krate::actors::StreamMessage for #ident #ty_generics #where_clause {
                type Item = #item;
            }
        }
    });
    Ok(quote! {
        impl #impl_generics #krate::remote::RemoteMessage for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
            type Codec = #codec;
        }
        #stream
    })
}
