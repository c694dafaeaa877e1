pub use multiproc_capi::*;
