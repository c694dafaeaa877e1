//! The process pool: `Pool`, `AsyncResult`, map / imap / imap_unordered / starmap / apply.
#![forbid(unsafe_code)]
