//! Shared by the fuzz targets (`fuzz_targets/`) and, through `#[path]`, by
//! `tests/fuzz_regressions.rs` and `examples/fuzz_seeds.rs`.

pub mod script;
pub mod targets;
