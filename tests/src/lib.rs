//! Harness for the end-to-end tests: starts the real components and always cleans up.
