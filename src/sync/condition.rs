//! `Condition` is not implemented yet: see the README's status table.
