//! End-to-end tests on a lab fabric live in `tests/`.
