//! The modules compiled into siprouter. `loadmodule "name"`,
//! `loadmodule "name.so"` and `loadmodule "/any/path/name.so"` of one of
//! these give the in-tree module, whatever the module path says.

use sr_core::InTree;

/// Every in-tree module, by the name `loadmodule` uses.
pub fn in_tree() -> Vec<InTree> {
    vec![("sl", sr_mod_sl::module)]
}
