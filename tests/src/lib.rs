//! End-to-end tests of monitor live in `tests/`.
