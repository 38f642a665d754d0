//! # sr-abi: modules loaded at run time
//!
//! The stable, versioned C ABI between siprouter and modules built outside
//! the tree, in C or in Rust, and both sides of it:
//!
//! - **host side**: [`loader`] gives the core's `ExternalLoader`. For
//!   `loadmodule "/path/mymod.so"` it reads the library's exported symbols
//!   from the file first (a Kamailio module, recognised by its
//!   `module_version`/`exports` symbols, is refused without running any of
//!   its code), opens it with `RTLD_NOW | RTLD_LOCAL`, checks the
//!   [`Stamp`] (magic, ABI major/minor, sizes) before calling anything,
//!   then turns the module's exports into an ordinary
//!   [`sr_sdk::ModuleDef`]. Libraries are never unloaded.
//! - **C modules** include `include/siprouter/sr_module.h`, write the
//!   seed's `struct module_exports exports`, and call the core through the
//!   `sr_core` services table ([`CoreApi`]) that `MODULE_VERSION` defines
//!   and the loader fills in before `mod_init`.
//! - **Rust modules** are `cdylib`s that build a normal `ModuleDef` and
//!   export it with [`declare_module!`]; the dispatchers in [`guest`] run
//!   it, and no panic ever unwinds into the server.
//!
//! Versioning: a different [`ABI_MAJOR`] is refused; within a major,
//! structs and the services table only grow at the end ([`ABI_MINOR`]),
//! so a module built for an older minor keeps loading, and one built for
//! a newer minor than the running server is refused.
//!
//! `docs/modules/writing-a-module.md` is the guide.

mod c_module;
mod elf;
pub mod guest;
mod load;
mod rust_module;
mod services;
pub mod types;

pub use load::{load_module, C_CORE_SYMBOL, C_EXPORTS_SYMBOL, RUST_ENTRY_SYMBOL, STAMP_SYMBOL};
pub use sr_sdk;
pub use types::{
    ArgV1, CmdV1, CoreApi, ModuleV1, ParamV1, SipMsgOpaque, SrStr, Stamp, StatV1, ABI_MAJOR,
    ABI_MINOR, CORE_VERSION, MAGIC,
};

use sr_sdk::ModuleDef;
use std::path::Path;
use std::sync::Arc;

/// A module loader: the shape of `sr_core::ExternalLoader`.
pub type Loader = Arc<dyn Fn(&Path) -> Result<ModuleDef, String> + Send + Sync>;

/// The loader to install as `sr_core::Options::external`.
pub fn loader() -> Loader {
    Arc::new(load_module)
}

/// Exports a Rust module over the C ABI: give it a function building the
/// module's [`ModuleDef`], in a crate with `crate-type = ["cdylib"]`.
///
/// ```ignore
/// fn module() -> sr_sdk::ModuleDef { sr_sdk::ModuleDef::new("mymod") /* ... */ }
/// sr_abi::declare_module!(module);
/// ```
///
/// It defines the data symbol `sr_module_stamp` (the version stamp the
/// loader checks first) and the function `siprouter_module_v1`, which
/// calls the builder once and returns the descriptor. Handlers, hooks,
/// fixups and setters then run under `catch_unwind`.
#[macro_export]
macro_rules! declare_module {
    ($build:path) => {
        /// The version stamp siprouter checks before loading this module.
        #[allow(non_upper_case_globals)]
        #[no_mangle]
        pub static sr_module_stamp: $crate::Stamp = $crate::Stamp::rust();

        /// Describes this module to siprouter (module ABI 1).
        #[no_mangle]
        pub extern "C" fn siprouter_module_v1(
            api: *const $crate::CoreApi,
        ) -> *const $crate::ModuleV1 {
            $crate::guest::entry(api, $build)
        }
    };
}

#[cfg(test)]
mod tests;
