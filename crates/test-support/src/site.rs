//! Generated websites served on loopback for crawler tests.
