//! Names for local components.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::actor::Actor;
use crate::addr::Addr;
use crate::error::RegistryError;

struct Entry {
    id: u64,
    type_name: &'static str,
    addr: Rc<dyn Any>,
}

#[derive(Default)]
struct Registry {
    names: RefCell<BTreeMap<String, Entry>>,
}

fn registry() -> Rc<Registry> {
    tern_executor::extension(Registry::default)
}

/// Registers `addr` under `name` in this container.
///
/// A name is released when its component stops for good.
///
/// # Errors
///
/// [`RegistryError::NameTaken`] if a live component holds the name.
pub fn register<A: Actor>(name: &str, addr: &Addr<A>) -> Result<(), RegistryError> {
    let reg = registry();
    let mut names = reg.names.borrow_mut();
    if names.contains_key(name) {
        return Err(RegistryError::NameTaken(name.to_owned()));
    }
    names.insert(
        name.to_owned(),
        Entry {
            id: addr.id(),
            type_name: std::any::type_name::<A>(),
            addr: Rc::new(addr.clone()),
        },
    );
    Ok(())
}

/// Finds the component registered under `name`.
///
/// # Errors
///
/// [`RegistryError::NotFound`] or [`RegistryError::WrongType`].
///
/// # Examples
///
/// ```
/// use tern_actors::{Actor, RegistryError, build, lookup};
///
/// struct Db;
/// impl Actor for Db {}
///
/// # tern_executor::Runtime::new().unwrap().block_on(async {
/// let db = build(|| Db).spawn_named("db").unwrap();
/// assert_eq!(lookup::<Db>("db").unwrap(), db);
/// assert!(matches!(lookup::<Db>("nope"), Err(RegistryError::NotFound(_))));
/// # });
/// ```
pub fn lookup<A: Actor>(name: &str) -> Result<Addr<A>, RegistryError> {
    let reg = registry();
    let names = reg.names.borrow();
    let entry = names
        .get(name)
        .ok_or_else(|| RegistryError::NotFound(name.to_owned()))?;
    entry
        .addr
        .downcast_ref::<Addr<A>>()
        .cloned()
        .ok_or_else(|| RegistryError::WrongType {
            name: name.to_owned(),
            expected: std::any::type_name::<A>(),
            actual: entry.type_name,
        })
}

/// Releases every name held by component `id`.
pub(crate) fn release(id: u64) {
    registry().names.borrow_mut().retain(|_, e| e.id != id);
}

/// Whether any component holds `name`.
pub(crate) fn lookup_any(name: &str) -> bool {
    registry().names.borrow().contains_key(name)
}
