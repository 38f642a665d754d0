//! The routing script engine: compile (`compile`), run (`exec`), and the
//! pieces they share (`ir`, pseudo-variables, transformations, per-worker
//! state).

pub mod compile;
pub mod exec;
pub mod ir;
pub mod pv;
pub mod pv_branch;
pub mod rval;
pub mod state;
pub mod transform;
pub mod transform_params;
pub mod transform_str;
