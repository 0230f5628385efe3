//! Small macros that write one shape once for several types: the inner-service accessors of
//! this crate's middleware (as tower-http's `define_inner_service_accessors!`).

/// `get_ref`, `get_mut` and `into_inner` for a middleware whose `inner` field is the wrapped
/// service: put it inside an `impl<S, ...> Type<S, ...>` block.
macro_rules! inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// The inner service, unwrapped.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

pub(crate) use inner_service_accessors;
