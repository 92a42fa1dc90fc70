//! The security integration tests in one binary (in CI every test binary is a release build and
//! link of its own): ACL administration, SCRAM users, and authorization of every API.

#[path = "../common/mod.rs"]
mod common;

mod acls;
mod authorization;
mod scram_users;
