//! strom-cluster
