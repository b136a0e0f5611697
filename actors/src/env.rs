//! The container-wide environment.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

/// State shared by every component of one container, keyed by type: a connection
/// pool, a configuration, a cache. It outlives messages and restarts, and lives as long
/// as the runtime.
///
/// # Examples
///
/// ```
/// use tern_actors::Environment;
///
/// # tern_executor::Runtime::new().unwrap().block_on(async {
/// struct Config { greeting: &'static str }
/// let env = Environment::current();
/// env.insert(Config { greeting: "hi" });
/// assert_eq!(env.get::<Config>().unwrap().greeting, "hi");
/// # });
/// ```
#[derive(Default)]
pub struct Environment {
    values: RefCell<BTreeMap<TypeId, Rc<dyn Any>>>,
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("entries", &self.values.borrow().len())
            .finish()
    }
}

impl Environment {
    /// The environment of the current thread's runtime.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[must_use]
    pub fn current() -> Rc<Self> {
        tern_executor::extension(Self::default)
    }

    /// Stores `value`, replacing any earlier value of the same type.
    pub fn insert<T: 'static>(&self, value: T) {
        self.values
            .borrow_mut()
            .insert(TypeId::of::<T>(), Rc::new(value));
    }

    /// The value of type `T`, if one was inserted.
    #[must_use]
    pub fn get<T: 'static>(&self) -> Option<Rc<T>> {
        let v = self.values.borrow().get(&TypeId::of::<T>())?.clone();
        v.downcast::<T>().ok()
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: 'static>(&self) -> Option<Rc<T>> {
        let v = self.values.borrow_mut().remove(&TypeId::of::<T>())?;
        v.downcast::<T>().ok()
    }
}
