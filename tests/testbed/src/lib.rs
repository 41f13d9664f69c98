//! Test bed: Open vSwitch sandboxes and network namespaces that clean up after themselves.
