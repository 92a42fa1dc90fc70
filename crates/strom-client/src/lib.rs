//! strom-client
