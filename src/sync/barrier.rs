//! (Barrier: below.)
